package rpc

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/pkg/errors"
)

// Session is a connection whose handshake is done: both sides know who
// makes calls and who serves them. Usually the side that connects (the
// initiator, which sends the first HELLO) makes the calls; in a push, it
// serves them instead, and the side it connected to makes them (PROTOCOL.md
// §2, role inversion). Exactly one of Client, (*Server).Serve or Refuse
// takes the Session over.
type Session struct {
	c    *conn
	used atomic.Bool
}

// Initiate performs the handshake as the side that connects. With serve,
// it asks the peer to invert the roles: this side will serve calls and the
// peer will make them.
func Initiate(ctx context.Context, rwc io.ReadWriteCloser, cfg Config, serve bool) (*Session, error) {
	return handshake(ctx, rwc, cfg, true, serve)
}

// Accept performs the handshake as the side connected to. It takes the role
// the peer leaves it: usually the server's; Serves is false when the peer
// asked to serve (a push). A side that does not want that role says why
// with Refuse.
func Accept(ctx context.Context, rwc io.ReadWriteCloser, cfg Config) (*Session, error) {
	return handshake(ctx, rwc, cfg, false, false)
}

func handshake(ctx context.Context, rwc io.ReadWriteCloser, cfg Config, initiator, serve bool) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		_ = rwc.Close()
		return nil, err
	}
	c := newConn(rwc, cfg.withDefaults())
	if err := c.handshake(ctx, initiator, serve); err != nil {
		return nil, err
	}
	return &Session{c: c}, nil
}

// Serves reports whether this side serves calls (and the peer makes them).
func (s *Session) Serves() bool { return s.c.role == roleServer }

// PeerSoftware is the software version the peer announced.
func (s *Session) PeerSoftware() string { return s.c.peer.Software }

// CloseReason is the reason the peer gave when it closed the session, once
// it has ("" otherwise): a server learns from it why its client left.
func (s *Session) CloseReason() string {
	var pc *PeerClosedError
	if errors.As(s.c.failed(), &pc) {
		return pc.Reason
	}
	return ""
}

// take marks the session as taken over; only the first taker may run it.
func (s *Session) take() error {
	if s.used.Swap(true) {
		return errors.New("rpc session already in use")
	}
	return nil
}

// Client returns the Client that makes this side's calls; an error if this
// side serves.
func (s *Session) Client() (*Client, error) {
	if err := s.take(); err != nil {
		return nil, err
	}
	if s.Serves() {
		s.c.fail(ErrClosed)
		return nil, errors.New("rpc session: this side serves calls, it cannot make them")
	}
	s.c.start()
	return &Client{c: s.c, slot: make(chan struct{}, 1)}, nil
}

// Refuse ends the session without serving or making a call: the peer is
// sent CLOSE with reason, which its calls (or its server's CloseReason)
// report. The returned error is a failure of the teardown.
func (s *Session) Refuse(reason string) error {
	if err := s.take(); err != nil {
		return err
	}
	// A client may have sent its first request already: that is no
	// protocol error while the session winds down.
	s.c.expect.Store(true)
	s.c.start()
	return s.c.closeSession(reason)
}

// start runs the goroutines that keep a handshaken conn alive.
func (c *conn) start() {
	if c.role == roleServer {
		c.expect.Store(true)
	}
	go c.readLoop()
	go c.controlLoop()
}
