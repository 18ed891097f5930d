package rpc

import (
	"context"
	"io"
	"sync"

	"github.com/pkg/errors"
)

// ErrBodyClosed is returned by Read after the caller closed a body early.
var ErrBodyClosed = errors.New("rpc: response body closed")

// body is the client's view of a streamed response body. Read returns io.EOF
// only after the server's END frame; a RESET from the server, a broken
// connection or a canceled context make Read fail, so a truncated stream
// never looks complete.
type body struct {
	cl      *Client
	c       *conn
	ctx     context.Context
	method  string
	cur     []byte // unread part of the current DATA payload
	buf     []byte // the pool buffer cur lies in, given back when used up
	read    int64  // bytes of the body delivered so far, for messages
	err     error  // terminal: io.EOF, ErrBodyClosed, or the failure
	release sync.Once
}

var _ io.WriterTo = (*body)(nil)

// Read copies body bytes into p.
func (b *body) Read(p []byte) (int, error) {
	if len(p) == 0 && b.err == nil {
		return 0, nil
	}
	if err := b.fill(); err != nil {
		return 0, err
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	b.read += int64(n)
	return n, nil
}

// WriteTo writes each DATA payload to w as it arrives, without copying it,
// so that io.Copy neither copies nor chops the stream into 32 KiB pieces.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := b.fill(); err == io.EOF {
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := w.Write(b.cur)
		b.cur = b.cur[n:]
		b.read += int64(n)
		total += int64(n)
		if err != nil {
			_ = b.Close()
			return total, err
		}
	}
}

// fill makes cur non-empty, or returns the body's terminal error.
func (b *body) fill() error {
	for len(b.cur) == 0 {
		if b.err != nil {
			return b.err
		}
		b.c.putBuffer(b.buf)
		b.buf = nil
		if err := b.nextFrame(); err != nil {
			return err
		}
	}
	return nil
}

// nextFrame waits for the next DATA, END or RESET of this body.
func (b *body) nextFrame() error {
	ev, err := b.cl.next(b.ctx, waitPeer)
	if err != nil {
		if b.ctx.Err() != nil && b.c.failed() == nil {
			if derr := b.cancelAndDrain(); derr != nil {
				err = derr
			}
		}
		return b.finish(b.interrupted(err))
	}
	switch ev.kind {
	case evData:
		b.cur, b.buf = ev.data, ev.data
		return nil
	case evEnd:
		return b.finish(io.EOF)
	case evReset:
		return b.finish(ev.err)
	}
	err = protocolErrorf("unexpected %s event inside a body", ev.kind)
	b.c.fail(err)
	return b.finish(err)
}

func (b *body) interrupted(err error) error {
	return errors.WithMessagef(err, "%s: response body interrupted after %d bytes", b.method, b.read)
}

// finish records the body's terminal state and frees the call slot.
func (b *body) finish(err error) error {
	b.c.putBuffer(b.buf)
	b.cur, b.buf = nil, nil
	b.err = err
	b.release.Do(b.cl.release)
	return err
}

// Close ends the body. Closing before EOF cancels the call: the rest of the
// body is drained (the server stops producing it), and the session stays
// usable. If the server does not end the body within CloseTimeout, the
// session is ended and Close returns why.
func (b *body) Close() error {
	if b.err != nil {
		return nil
	}
	err := b.cancelAndDrain()
	b.finish(ErrBodyClosed)
	return err
}

// cancelAndDrain sends CANCEL and discards the body until its END or RESET.
func (b *body) cancelAndDrain() error {
	b.c.putBuffer(b.buf)
	b.cur, b.buf = nil, nil
	if err := b.c.writeFrame(FrameCancel, 0, nil); err != nil {
		return err
	}
	return b.cl.drain(b.method)
}
