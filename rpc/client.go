package rpc

import (
	"context"
	"encoding/json"
	"io"
	"sync"

	"github.com/pkg/errors"
)

// Client makes calls over one session. One call is in flight at a time:
// a call (and its response body, until read to the end or closed) holds the
// session, and concurrent calls wait for it. Methods are safe for concurrent use.
type Client struct {
	c         *conn
	slot      chan struct{} // holds a token while a call is in flight
	closeOnce sync.Once
	closeErr  error
}

// NewClient performs the handshake over rwc as the side that connects and
// makes the calls, and returns a Client. The Client owns rwc from then on
// and closes it in Close. ctx bounds the handshake only.
func NewClient(ctx context.Context, rwc io.ReadWriteCloser, cfg Config) (*Client, error) {
	s, err := Initiate(ctx, rwc, cfg, false)
	if err != nil {
		return nil, err
	}
	return s.Client()
}

// PeerSoftware is the software version the server announced.
func (cl *Client) PeerSoftware() string { return cl.c.peer.Software }

// Err returns why the session ended, or nil while it is usable.
func (cl *Client) Err() error { return cl.c.failed() }

// Call invokes method with req and decodes the result into resp (a
// pointer, or nil to ignore it). Errors returned by the handler are *Error;
// use CodeOf to branch on the code. If the server unexpectedly attaches a
// body, it is canceled and drained.
func (cl *Client) Call(ctx context.Context, method string, req, resp any) error {
	body, err := cl.CallStream(ctx, method, req, resp)
	if body != nil {
		_ = body.Close()
	}
	return err
}

// CallStream is Call for methods that stream a body. The body is nil when the
// handler sent none. The caller must read the body to EOF or Close it; until
// then the session is busy. Read returns io.EOF only when the whole body
// arrived; a body aborted by the server returns its *Error. Closing early
// cancels the call on the server.
func (cl *Client) CallStream(ctx context.Context, method string, req, resp any) (io.ReadCloser, error) {
	if err := cl.acquire(ctx); err != nil {
		return nil, err
	}
	b, err := cl.call(ctx, method, req, resp)
	if b == nil {
		cl.release()
		return nil, err
	}
	return b, err
}

func (cl *Client) call(ctx context.Context, method string, req, resp any) (*body, error) {
	c := cl.c
	if err := c.failed(); err != nil {
		return nil, errors.WithMessagef(err, "%s: session unusable", method)
	}
	if err := ctx.Err(); err != nil { // do not start work that nobody waits for
		return nil, errors.WithMessagef(err, "%s", method)
	}
	params, err := json.Marshal(req)
	if err != nil {
		return nil, errors.Wrapf(err, "%s: encoding the request", method)
	}
	hdr, err := json.Marshal(requestHeader{Method: method, Params: params})
	if err != nil {
		return nil, errors.Wrapf(err, "%s: encoding the request", method)
	}
	if len(hdr) > c.peerHeader {
		return nil, errors.Errorf("%s: request header of %d bytes exceeds the server's limit of %d", method, len(hdr), c.peerHeader)
	}
	c.expect.Store(true)
	if err := c.writeMessage(hdr, false); err != nil {
		return nil, errors.WithMessagef(err, "%s: sending the request", method)
	}

	ev, err := cl.next(ctx, waitPeer)
	if err != nil {
		if ctx.Err() != nil && c.failed() == nil {
			// Canceled while the server works: tell it, then wait for and
			// drop its answer, so that the session stays in step.
			if werr := c.writeFrame(FrameCancel, 0, nil); werr == nil {
				if derr := cl.drainResponse(method); derr != nil {
					return nil, derr
				}
			}
		}
		return nil, errors.WithMessagef(err, "%s: waiting for the response", method)
	}
	if ev.kind != evMessage {
		err := protocolErrorf("unexpected %s while waiting for a response", ev.kind)
		c.fail(err)
		return nil, err
	}
	var rh responseHeader
	if err := json.Unmarshal(ev.header, &rh); err != nil || (rh.Error == nil) == (rh.Result == nil) {
		err := protocolErrorf("response header is not a valid JSON response: %q", truncateUTF8(string(ev.header), 64))
		c.fail(err)
		return nil, err
	}
	b := &body{cl: cl, c: c, ctx: ctx, method: method}
	if rh.Error != nil {
		if ev.hasBody {
			if err := cl.drain(method); err != nil {
				return nil, err
			}
		}
		return nil, rh.Error.fromPeer()
	}
	if resp != nil {
		if err := json.Unmarshal(rh.Result, resp); err != nil {
			if ev.hasBody {
				if err := b.cancelAndDrain(); err != nil {
					return nil, err
				}
			}
			return nil, errors.Wrapf(err, "%s: decoding the result", method)
		}
	}
	if !ev.hasBody {
		return nil, nil
	}
	return b, nil
}

// next is conn.next; the readLoop answers a server's CLOSE itself, so a
// CLOSE_ACK is the only teardown event a call can see, and it is out of place.
func (cl *Client) next(ctx context.Context, mode waitMode) (event, error) {
	ev, err := cl.c.next(ctx, mode)
	if err == nil && (ev.kind == evCloseAck || ev.kind == evClose) {
		err = protocolErrorf("CLOSE_ACK without a CLOSE")
		cl.c.fail(err)
	}
	return ev, err
}

// drainResponse waits for the response of a canceled call and drops it.
func (cl *Client) drainResponse(method string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cl.c.cfg.CloseTimeout)
	defer cancel()
	ev, err := cl.next(ctx, waitQuiet)
	if err != nil {
		return cl.drainFailed(ctx, method, err)
	}
	if ev.kind != evMessage {
		err := protocolErrorf("unexpected %s while waiting for a response", ev.kind)
		cl.c.fail(err)
		return err
	}
	if ev.hasBody {
		return cl.drain(method)
	}
	return nil
}

// drain discards the current body until its END or RESET, within CloseTimeout.
func (cl *Client) drain(method string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cl.c.cfg.CloseTimeout)
	defer cancel()
	for {
		ev, err := cl.next(ctx, waitQuiet)
		if err != nil {
			return cl.drainFailed(ctx, method, err)
		}
		switch ev.kind {
		case evData:
			cl.c.putBuffer(ev.data)
		case evEnd, evReset:
			return nil
		default:
			err := protocolErrorf("unexpected %s inside a body", ev.kind)
			cl.c.fail(err)
			return err
		}
	}
}

func (cl *Client) drainFailed(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		err = errors.Errorf("%s: the server did not end the canceled call within %s; session ended", method, cl.c.cfg.CloseTimeout)
		cl.c.fail(err)
	}
	return err
}

func (cl *Client) acquire(ctx context.Context) error {
	select {
	case cl.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-cl.c.done:
		return errors.WithMessage(cl.c.err, "session unusable")
	}
}

func (cl *Client) release() { <-cl.slot }

// Close ends the session in order: CLOSE, wait for CLOSE_ACK, close the
// stream. If a call is still in flight, the stream is closed at once
// instead. Calling Close again does nothing and returns nil.
func (cl *Client) Close() error {
	cl.closeOnce.Do(func() {
		if cl.c.failed() != nil {
			return
		}
		select {
		case cl.slot <- struct{}{}:
			cl.closeErr = cl.c.closeSession("client done")
		default:
			cl.c.fail(ErrClosed)
		}
	})
	return cl.closeErr
}
