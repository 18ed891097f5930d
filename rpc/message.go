package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/pkg/errors"
	"go.uber.org/zap"
)

// requestHeader is the JSON header of a request message.
type requestHeader struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// responseHeader is the JSON header of a response message: exactly one of
// Result and Error is set.
type responseHeader struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// --- handshake ---------------------------------------------------------------

// handshake exchanges HELLO frames: the initiator speaks first, the
// acceptor answers even when the versions differ, so both sides can report
// the mismatch. The initiator asks to serve calls (a push) with
// helloInverted; the acceptor takes the other role and echoes the flag.
// Roles are settled when handshake returns.
func (c *conn) handshake(ctx context.Context, initiator, serve bool) error {
	done := make(chan struct{})
	clock := make(chan struct{})
	go func() {
		defer close(clock)
		c.handshakeClock(done)
	}()
	stop := context.AfterFunc(ctx, func() { c.fail(ctx.Err()) })
	err := c.exchangeHellos(initiator, serve)
	stop()
	close(done)
	<-clock
	if ferr := c.failed(); ferr != nil {
		return ferr // a timeout or cancellation caused the I/O error
	}
	if err != nil {
		c.fail(err)
		return err
	}
	c.sendMax = min(c.cfg.MaxFramePayload, int(c.peer.MaxFramePayload))
	c.peerHeader = int(c.peer.MaxHeaderBytes)
	c.log.Debug("rpc handshake done", zap.String("role", c.role.String()), zap.Stringer("peer", c.peer))
	return nil
}

// handshakeClock fails the conn when the handshake takes too long: with
// FirstByteTimeout, first when no byte arrives within it, then when the
// HELLO is not complete HandshakeTimeout after the first byte; without,
// HandshakeTimeout after the start. It returns when done is closed.
func (c *conn) handshakeClock(done <-chan struct{}) {
	since := ""
	if first := c.cfg.FirstByteTimeout; first > 0 {
		t := time.NewTimer(first)
		select {
		case <-done:
			t.Stop()
			return
		case <-c.firstByte:
			t.Stop()
			since = " of its first byte"
		case <-t.C:
			c.fail(errors.Wrapf(ErrHandshake, "nothing from the peer within %s (the transport did not come up)", first))
			return
		}
	}
	t := time.NewTimer(c.cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.fail(errors.Wrapf(ErrHandshake, "no HELLO from the peer within %s%s", c.cfg.HandshakeTimeout, since))
	}
}

func (c *conn) exchangeHellos(initiator, serve bool) error {
	var flags uint16
	if initiator {
		if serve {
			flags = helloInverted
		}
		if err := c.writeHello(flags); err != nil {
			return err
		}
	}
	peer, err := c.readHello()
	if err != nil {
		return err
	}
	if !initiator {
		flags = peer.Flags & helloInverted
		if err := c.writeHello(flags); err != nil {
			return err
		}
	}
	if peer.Version != ProtocolVersion {
		return &VersionMismatchError{Local: ProtocolVersion, Remote: peer.Version, RemoteSoftware: peer.Software}
	}
	if err := peer.checkLimits(); err != nil {
		return err
	}
	if peer.Flags != flags {
		return protocolErrorf("the peer answered a HELLO with flags %#04x with flags %#04x", flags, peer.Flags)
	}
	inverted := flags&helloInverted != 0
	c.role = roleClient
	if initiator == inverted {
		c.role = roleServer
	}
	c.peer = peer
	return nil
}

func (c *conn) writeHello(flags uint16) error {
	h := hello{
		Version:         ProtocolVersion,
		Flags:           flags,
		MaxFramePayload: uint32(c.cfg.MaxFramePayload),
		MaxHeaderBytes:  uint32(c.cfg.MaxHeaderBytes),
		Software:        c.cfg.SoftwareVersion,
	}
	return c.writeFrame(FrameHello, 0, h.appendTo(nil))
}

// readHello reads the peer's first frame. Anything but a well-formed HELLO
// is reported with the bytes the peer sent, which usually tells the operator
// what is on the other end (a shell banner, an error from a wrong command).
func (c *conn) readHello() (hello, error) {
	var hbuf [FrameHeaderLen]byte
	n, err := io.ReadFull(c.br, hbuf[:])
	if err == io.EOF {
		return hello{}, &connLostError{op: "waiting for the peer's HELLO", err: io.EOF}
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		return hello{}, ioError("waiting for the peer's HELLO", err)
	}
	h, perr := parseFrameHeader(hbuf[:], helloMaxLen)
	if err != nil || perr != nil || h.Type != FrameHello {
		return hello{}, c.notZrep(hbuf[:n])
	}
	p, err := readPayload(c.br, h)
	if err != nil {
		return hello{}, errors.Wrap(err, "reading the peer's HELLO")
	}
	peer, err := parseHello(p)
	if err != nil {
		return hello{}, errors.Wrapf(ErrHandshake, "bad HELLO from the peer: %v", err)
	}
	return peer, nil
}

// notZrep builds the error for a peer whose first bytes are not a HELLO.
func (c *conn) notZrep(first []byte) error {
	more, _ := c.br.Peek(min(c.br.Buffered(), 120))
	seen := append(append([]byte(nil), first...), more...)
	return errors.Wrapf(ErrHandshake, "the peer is not a zrep endpoint: it sent %q instead of a HELLO frame (is the remote command `zrep-stdinserver serve`?)", seen)
}

// --- messages ----------------------------------------------------------------

// writeMessage sends a JSON header as HEADERS frames of at most sendMax bytes.
func (c *conn) writeMessage(header []byte, hasBody bool) error {
	for {
		n := min(len(header), c.sendMax)
		chunk, rest := header[:n], header[n:]
		var f Flags
		if len(rest) == 0 {
			f = FlagEndHeaders
			if hasBody {
				f |= FlagBody
			} else {
				c.beforeFinalFrame()
			}
		}
		if err := c.writeFrame(FrameHeaders, f, chunk); err != nil {
			return err
		}
		if len(rest) == 0 {
			return nil
		}
		header = rest
	}
}

// beforeFinalFrame runs before the last frame of a server's response: from
// then on the next request may arrive, so it must be expected already.
func (c *conn) beforeFinalFrame() {
	if c.role == roleServer {
		c.expect.Store(true)
	}
}

// maxZeroReads bounds a body reader that returns (0, nil) forever.
const maxZeroReads = 100

// sendBody streams body as DATA frames and ends it with END, or with RESET
// when reading the body fails or ctx is canceled. The returned error is a
// failure of the connection only; the body's own failure goes to the peer.
func (c *conn) sendBody(ctx context.Context, body io.Reader, buf []byte) error {
	zeroReads := 0
	for {
		if ctx.Err() != nil {
			return c.resetBody(Errorf(CodeCanceled, "call canceled: %v", context.Cause(ctx)))
		}
		n, rerr := c.safeRead(body, buf[FrameHeaderLen:])
		if n > 0 {
			zeroReads = 0
			if err := c.writePrepared(FrameHeader{Type: FrameData, Length: uint32(n)}, buf[:FrameHeaderLen+n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			c.beforeFinalFrame()
			return c.writeFrame(FrameEnd, 0, nil)
		case rerr != nil:
			if ctx.Err() != nil {
				return c.resetBody(Errorf(CodeCanceled, "call canceled: %v", context.Cause(ctx)))
			}
			return c.resetBody(toCallError(rerr))
		case n == 0:
			if zeroReads++; zeroReads > maxZeroReads {
				return c.resetBody(Errorf(CodeInternal, "body reader returned no data and no error %d times", maxZeroReads))
			}
		}
	}
}

// resetBody aborts the body being sent with e.
func (c *conn) resetBody(e *Error) error {
	c.beforeFinalFrame()
	return c.writeFrame(FrameReset, 0, encodeReset(e))
}

// safeRead calls r.Read, turning a panic into an error (and a log entry
// with the stack): a faulty body must not crash the process.
func (c *conn) safeRead(r io.Reader, p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("panic while producing a body", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			n, err = 0, Errorf(CodeInternal, "internal error while producing the body (panic: %v)", v)
		}
	}()
	return r.Read(p)
}

// encodeReset renders the RESET payload, shortening the message to fit.
func encodeReset(e *Error) []byte {
	return encodeFitting(e, maxResetLen, func(e Error) any { return e })
}

// encodeFitting renders e (wrapped by wrap) as JSON of at most limit bytes,
// halving the message until it fits: escaping can make JSON several times
// longer than the text, so the limit is checked on the encoded form.
func encodeFitting(e *Error, limit int, wrap func(Error) any) []byte {
	msg := e.Message
	for {
		p, _ := json.Marshal(wrap(Error{Code: e.Code, Message: msg}))
		if len(p) <= limit || msg == "" {
			return p
		}
		msg = truncateUTF8(msg, len(msg)/2) + "…"
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// parseReset decodes a RESET payload.
func parseReset(p []byte) (*Error, error) {
	var e Error
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		return nil, protocolErrorf("RESET payload is not a JSON error object: %q", truncateUTF8(string(p), 64))
	}
	if e.Code == "" || len(e.Code) > 64 {
		return nil, protocolErrorf("RESET payload has an empty or oversized code")
	}
	return e.fromPeer(), nil
}

// decodeStrict decodes one JSON value from p into v, refusing unknown
// fields and trailing data.
func decodeStrict(p []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
