package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/internal/printable"
)

// role says which side of the session a conn is.
type role int

const (
	roleClient role = iota
	roleServer
)

func (r role) String() string {
	if r == roleServer {
		return "server"
	}
	return "client"
}

// readBufferSize is the bufio size in front of the stream. It is small on
// purpose: frame headers and small messages come out of it, while large
// DATA payloads bypass it and are read straight into a pool buffer.
const readBufferSize = 16 << 10

// dataBuffers is how many DATA payloads the readLoop may hold for a consumer
// that has not taken them yet.
const dataBuffers = 4

// conn is one side of a session: the framed stream plus the goroutines that
// keep it alive. It is shared by Client and Server.
//
// Reading: a single goroutine (readLoop) reads every frame. Control frames
// (PING, PONG, CANCEL) are handled there and never block on the consumer.
// Message frames are validated against the message state machine and passed
// to the consumer as events. A DATA payload is read straight into a buffer
// from a small pool and handed over whole; the consumer writes it on (or
// copies it out) and returns the buffer. The pool bounds how far the
// readLoop runs ahead of a slow consumer, and so the memory a peer can make
// us hold: dataBuffers × MaxFramePayload.
//
// Writing: every frame is written with a single Write under wmu. PINGs and
// PONGs are sent by controlLoop, so that no reader ever blocks on a write.
type conn struct {
	cfg  Config
	role role
	log  *zap.Logger
	rwc  io.ReadWriteCloser
	br   *bufio.Reader

	wmu     sync.Mutex
	scratch []byte // frame assembly buffer for small frames, guarded by wmu

	peer       hello
	sendMax    int // largest payload we put in a frame: min(ours, the peer's)
	peerHeader int // the peer's MaxHeaderBytes

	events    chan event
	free      chan []byte        // DATA buffers the consumer gave back
	allocated int                // DATA buffers made so far; readLoop only
	pongs     chan [pingLen]byte // PONGs for controlLoop to send, coalesced
	pings     chan [pingLen]byte // PINGs for controlLoop to send, coalesced

	// expect is set while this side waits for a message from the peer; a
	// HEADERS frame that starts a message when it is not set is a protocol error.
	expect   atomic.Bool
	lastRecv atomic.Int64 // unix nanoseconds of the last bytes received
	// firstByte is closed when the first bytes arrive.
	firstByte chan struct{}
	pingSent  atomic.Int64 // unix nanoseconds of the outstanding PING, 0 if none

	// cancelCall, set by the server while a call runs, is invoked on CANCEL,
	// on the peer's CLOSE and when the connection fails.
	cancelCall atomic.Pointer[context.CancelCauseFunc]
	// cancelPending records a CANCEL that may belong to the request the
	// readLoop delivered last, whose call may not have stored cancelCall
	// yet; the readLoop clears it when it delivers the next request.
	cancelPending atomic.Bool

	done     chan struct{}
	failOnce sync.Once
	err      error // why the conn ended; valid once done is closed
}

type eventKind int

const (
	evMessage  eventKind = iota // a complete message header
	evData                      // a DATA frame: the consumer must read n bytes
	evEnd                       // the body ended
	evReset                     // the body was aborted
	evClose                     // the peer sent CLOSE
	evCloseAck                  // the peer acknowledged our CLOSE
)

func (k eventKind) String() string {
	return [...]string{"message", "DATA", "END", "RESET", "CLOSE", "CLOSE_ACK"}[k]
}

// event is what the readLoop passes to the consumer.
type event struct {
	kind    eventKind
	header  []byte // evMessage: the JSON header
	hasBody bool   // evMessage: a body follows
	data    []byte // evData: the payload, in a pool buffer to give back with putBuffer
	err     *Error // evReset: why the body was aborted
	reason  string // evClose
}

// ChunkSizer is implemented by streams that move data best in writes of
// one size, such as a pipe (its capacity). When the stream given to
// ServeConn or NewClient implements it, DATA frames are sized so that a
// whole frame, header included, fills one chunk: a frame one header larger
// than the pipe would make every write wait for the reader twice.
type ChunkSizer interface {
	ChunkSize() int
}

// dataBufferSize is the size of the buffer DATA frames are sent from:
// header plus the largest payload, trimmed to the stream's chunk size.
func (c *conn) dataBufferSize() int {
	size := FrameHeaderLen + c.sendMax
	if cs, ok := c.rwc.(ChunkSizer); ok {
		if chunk := cs.ChunkSize(); chunk > FrameHeaderLen+MinFramePayload/4 && chunk < size {
			size = chunk
		}
	}
	return size
}

// newConn wraps rwc; its role is settled by the handshake.
func newConn(rwc io.ReadWriteCloser, cfg Config) *conn {
	c := &conn{
		cfg:    cfg,
		log:    cfg.Logger,
		rwc:    rwc,
		events: make(chan event, dataBuffers+4),
		free:   make(chan []byte, dataBuffers),
		pongs:  make(chan [pingLen]byte, 1),
		pings:  make(chan [pingLen]byte, 1),
		done:   make(chan struct{}),

		firstByte: make(chan struct{}),
	}
	c.br = bufio.NewReaderSize(activityReader{r: rwc, last: &c.lastRecv, first: c.firstByte}, readBufferSize)
	return c
}

// activityReader records when bytes last arrived: any bytes, not only
// frame headers, prove the peer alive (a 1 MiB frame on a slow link takes
// long to arrive, and a PONG queues behind it).
type activityReader struct {
	r     io.Reader
	last  *atomic.Int64
	first chan struct{} // closed at the first bytes
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		if a.last.Swap(time.Now().UnixNano()) == 0 {
			close(a.first)
		}
	}
	return n, err
}

// fail ends the conn with err (the first error wins), cancels the running
// call and closes the stream, which unblocks any pending Read or Write.
func (c *conn) fail(err error) {
	c.failOnce.Do(func() {
		c.err = err
		close(c.done)
		c.cancelCurrent(err)
		_ = c.rwc.Close()
	})
}

// cancelCurrent cancels the server's running call, if any, with cause.
func (c *conn) cancelCurrent(cause error) {
	if cancel := c.cancelCall.Load(); cancel != nil {
		(*cancel)(cause)
	}
}

var errCanceledByClient = errors.New("canceled by the client")

// failed returns the conn's terminal error, or nil while it is alive.
func (c *conn) failed() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// --- writing -----------------------------------------------------------------

// writeFrame writes one frame with a small payload in a single Write.
func (c *conn) writeFrame(t FrameType, f Flags, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.failed(); err != nil {
		return err
	}
	b := c.scratch[:0]
	b = append(b, make([]byte, FrameHeaderLen)...)
	putFrameHeader(b, FrameHeader{Type: t, Flags: f, Length: uint32(len(payload))})
	b = append(b, payload...)
	c.scratch = b[:0]
	return c.writeLocked(t, b)
}

// writePrepared writes a frame whose header the caller left room for in the
// first FrameHeaderLen bytes of buf; used for DATA so the payload is not copied.
func (c *conn) writePrepared(h FrameHeader, buf []byte) error {
	putFrameHeader(buf, h)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.failed(); err != nil {
		return err
	}
	return c.writeLocked(h.Type, buf)
}

func (c *conn) writeLocked(t FrameType, b []byte) error {
	if _, err := c.rwc.Write(b); err != nil {
		// If the conn already ended (the peer's CLOSE, a timeout), that is
		// the better explanation of the failed write.
		c.fail(ioError(fmt.Sprintf("writing a %s frame", t), err))
		return c.err
	}
	return nil
}

// controlLoop writes PINGs and PONGs, so that neither the readLoop nor a
// waiting consumer ever blocks on a write the peer is not reading.
func (c *conn) controlLoop() {
	for {
		var err error
		select {
		case p := <-c.pongs:
			err = c.writeFrame(FramePong, 0, p[:])
		case p := <-c.pings:
			err = c.writeFrame(FramePing, 0, p[:])
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// queueControl queues a control frame without blocking; a frame of the same
// kind already waiting makes this one redundant.
func queueControl(ch chan [pingLen]byte, p [pingLen]byte) {
	select {
	case ch <- p:
	default:
	}
}

// --- reading -----------------------------------------------------------------

type inState int

const (
	stIdle    inState = iota // between messages
	stHeaders                // inside a header block
	stBody                   // inside a body
)

// readLoop reads frames until the conn ends or the peer closes the session.
func (c *conn) readLoop() {
	if err := c.readFrames(); err != nil {
		c.fail(err)
	}
}

func (c *conn) readFrames() error {
	var (
		hbuf  [FrameHeaderLen]byte
		state inState
		block []byte // the header block being assembled
		max   = uint32(c.cfg.MaxFramePayload)
	)
	for {
		h, err := readFrameHeader(c.br, &hbuf, max)
		if err != nil {
			if err == io.EOF {
				return &connLostError{op: "waiting for a frame", err: io.EOF}
			}
			if _, ok := err.(*ProtocolError); ok {
				return err
			}
			return ioError("reading a frame header", err)
		}
		switch h.Type {
		case FramePing:
			var p [pingLen]byte
			if err := readFull(c.br, p[:], h); err != nil {
				return err
			}
			queueControl(c.pongs, p) // one pending PONG answers any number of PINGs
		case FramePong:
			if n, err := c.br.Discard(int(h.Length)); err != nil {
				return truncatedFrame(h.Type, n, int(h.Length))
			}
		case FrameCancel:
			// Between calls (the call ended while the CANCEL was on its way)
			// there is nothing to cancel, and that is not an error.
			c.cancelPending.Store(true)
			c.cancelCurrent(errCanceledByClient)
		case FrameClose, FrameCloseAck:
			if state != stIdle {
				return protocolErrorf("%s frame inside a message", h.Type)
			}
			p, err := readPayload(c.br, h)
			if err != nil {
				return err
			}
			ev := event{kind: evCloseAck}
			if h.Type == FrameClose {
				ev = event{kind: evClose, reason: printable.Bounded(string(p), maxCloseLen)}
				if c.role == roleClient {
					// Nothing on the client needs to finish first (the server
					// ended any body before its CLOSE): acknowledge at once.
					c.ackClose(ev)
					return nil
				}
				c.cancelCurrent(errors.New("the peer closed the session"))
			}
			// The peer sends nothing after CLOSE or CLOSE_ACK: stop reading
			// without failing the conn; the consumer finishes the teardown.
			c.deliver(ev)
			return nil
		case FrameHello:
			return protocolErrorf("HELLO frame after the handshake")
		case FrameHeaders:
			switch state {
			case stIdle:
				if !c.expect.Load() {
					return protocolErrorf("HEADERS frame while no message is expected (a %s may have only one call in flight)", c.role)
				}
				block = nil
				state = stHeaders
			case stBody:
				return protocolErrorf("HEADERS frame before the previous body ended")
			}
			if len(block)+int(h.Length) > c.cfg.MaxHeaderBytes {
				return protocolErrorf("message header exceeds the limit of %d bytes", c.cfg.MaxHeaderBytes)
			}
			start := len(block)
			block = append(block, make([]byte, h.Length)...)
			if err := readFull(c.br, block[start:], h); err != nil {
				return err
			}
			if h.Flags.Has(FlagEndHeaders) {
				c.expect.Store(false)
				c.cancelPending.Store(false) // a CANCEL read so far was for an earlier call
				hasBody := h.Flags.Has(FlagBody)
				if !c.deliver(event{kind: evMessage, header: block, hasBody: hasBody}) {
					return nil
				}
				state = stIdle
				if hasBody {
					state = stBody
				}
			}
		case FrameData, FrameEnd, FrameReset:
			if state != stBody {
				where := "outside a message body"
				if state == stHeaders {
					where = "inside a header block"
				}
				return protocolErrorf("%s frame %s", h.Type, where)
			}
			switch h.Type {
			case FrameData:
				buf := c.getBuffer()
				if buf == nil {
					return nil
				}
				buf = buf[:h.Length]
				if err := readFull(c.br, buf, h); err != nil {
					return err
				}
				if !c.deliver(event{kind: evData, data: buf}) {
					return nil
				}
			case FrameEnd:
				state = stIdle
				if !c.deliver(event{kind: evEnd}) {
					return nil
				}
			case FrameReset:
				p, err := readPayload(c.br, h)
				if err != nil {
					return err
				}
				e, err := parseReset(p)
				if err != nil {
					return err
				}
				state = stIdle
				if !c.deliver(event{kind: evReset, err: e}) {
					return nil
				}
			}
		}
	}
}

// deliver passes ev to the consumer; false if the conn ended first.
func (c *conn) deliver(ev event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.done:
		return false
	}
}

// waitMode selects what a consumer's wait guards against.
type waitMode int

const (
	// waitPeer: we expect the peer to send something (a response, body
	// data); PING it when quiet and fail when it answers nothing.
	waitPeer waitMode = iota
	// waitRequest: a server between calls; end the session after IdleTimeout.
	waitRequest
	// waitQuiet: no liveness rule; the caller's context bounds the wait.
	waitQuiet
)

// next returns the next event from the readLoop, keeping the liveness rules
// of mode while it waits.
func (c *conn) next(ctx context.Context, mode waitMode) (event, error) {
	start := time.Now().UnixNano()
	timer := time.NewTimer(c.wakeAfter(mode, start))
	defer timer.Stop()
	for {
		select {
		case ev := <-c.events:
			return ev, nil
		case <-c.done:
			// What arrived before the end is still delivered, in order.
			select {
			case ev := <-c.events:
				return ev, nil
			default:
				return event{}, c.err
			}
		case <-ctx.Done():
			return event{}, ctx.Err()
		case <-timer.C:
			if err := c.checkLiveness(mode, start); err != nil {
				return event{}, err
			}
			timer.Reset(c.wakeAfter(mode, start))
		}
	}
}

// lastActivity is the later of the last frame received and start: time spent
// not waiting (for example while the consumer wrote to a slow disk) is not
// counted against the peer.
func (c *conn) lastActivity(start int64) int64 {
	return max(c.lastRecv.Load(), start)
}

func (c *conn) wakeAfter(mode waitMode, start int64) time.Duration {
	now := time.Now().UnixNano()
	switch mode {
	case waitQuiet:
		return time.Duration(1<<62 - 1)
	case waitRequest:
		return time.Duration(c.lastActivity(start)+int64(c.cfg.IdleTimeout)-now) + time.Millisecond
	}
	if ps := c.pingSent.Load(); ps != 0 && c.lastRecv.Load() < ps {
		return time.Duration(ps+int64(c.cfg.PingTimeout)-now) + time.Millisecond
	}
	return time.Duration(c.lastActivity(start)+int64(c.cfg.PingInterval)-now) + time.Millisecond
}

// checkLiveness runs when a wait timer fires.
func (c *conn) checkLiveness(mode waitMode, start int64) error {
	now := time.Now().UnixNano()
	switch mode {
	case waitQuiet:
		return nil
	case waitRequest:
		if now-c.lastActivity(start) >= int64(c.cfg.IdleTimeout) {
			return ErrIdleTimeout
		}
		return nil
	}
	if ps := c.pingSent.Load(); ps != 0 && c.lastRecv.Load() < ps {
		if now-ps >= int64(c.cfg.PingTimeout) {
			err := errors.Wrapf(ErrPeerUnresponsive, "nothing received within %s of a PING", c.cfg.PingTimeout)
			c.fail(err)
			return err
		}
		return nil
	}
	if now-c.lastActivity(start) >= int64(c.cfg.PingInterval) {
		c.pingSent.Store(now)
		var p [pingLen]byte
		binary.BigEndian.PutUint64(p[:], uint64(now))
		queueControl(c.pings, p)
	}
	return nil
}

// getBuffer returns a DATA buffer, waiting for the consumer to give one
// back when all are in use; nil when the conn ended meanwhile.
func (c *conn) getBuffer() []byte {
	select {
	case b := <-c.free:
		return b
	default:
	}
	if c.allocated < dataBuffers {
		c.allocated++
		return make([]byte, c.cfg.MaxFramePayload)
	}
	select {
	case b := <-c.free:
		return b
	case <-c.done:
		return nil
	}
}

// putBuffer gives a DATA buffer back to the readLoop.
func (c *conn) putBuffer(b []byte) {
	if cap(b) == 0 {
		return
	}
	select {
	case c.free <- b[:cap(b)]:
	default:
	}
}

// closeSession is the initiator's side of the teardown: send CLOSE, wait for
// CLOSE_ACK (or the peer's own CLOSE) for at most CloseTimeout, then close
// the stream. Frames that crossed the CLOSE on the wire are dropped.
func (c *conn) closeSession(reason string) error {
	defer c.fail(ErrClosed)
	// A peer that stopped reading would block the CLOSE (or the write
	// holding wmu) forever: the timeout starts before the write.
	timer := time.AfterFunc(c.cfg.CloseTimeout, func() {
		c.fail(errors.Errorf("the session did not close within %s", c.cfg.CloseTimeout))
	})
	defer timer.Stop()
	if err := c.writeFrame(FrameClose, 0, []byte(reason)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CloseTimeout)
	defer cancel()
	for {
		ev, err := c.next(ctx, waitQuiet)
		var crossed *PeerClosedError
		if errors.As(err, &crossed) {
			return nil // both sides closed at once: each CLOSE acknowledges the other
		}
		if err != nil {
			if ctx.Err() != nil {
				return errors.Errorf("the peer did not acknowledge CLOSE within %s", c.cfg.CloseTimeout)
			}
			return errors.Wrap(err, "waiting for CLOSE_ACK")
		}
		switch ev.kind {
		case evCloseAck, evClose:
			return nil
		case evData:
			c.putBuffer(ev.data)
		}
	}
}

// ackClose answers the peer's CLOSE and ends the conn.
func (c *conn) ackClose(ev event) {
	_ = c.writeFrame(FrameCloseAck, 0, nil)
	c.fail(&PeerClosedError{Reason: ev.reason})
}
