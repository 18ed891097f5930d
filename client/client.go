// Package client is the puller's side of zrep: it opens byte streams to zrep
// endpoints, over which package rpc then runs a session.
//
// The transport is the system ssh (type SSH): the user's ssh configuration,
// agent, ProxyJump and ControlMaster all apply, and the endpoint is sshd with
// a forced command that runs `zrep-stdinserver serve`. When a session fails,
// Conn.Diagnose turns the bare stream error (EOF, broken pipe) into an
// *SSHError that says what went wrong with the transport.
package client

import (
	"context"
	"io"
	"time"

	"github.com/zrep/zrep/rpc"
)

// Dialer opens a byte stream to a zrep endpoint.
type Dialer interface {
	// Dial starts a new stream. ctx bounds the whole life of the stream, not
	// only its setup: canceling it tears the stream down.
	Dial(ctx context.Context) (Conn, error)
}

// Conn is the stream plus what explains its failures.
type Conn interface {
	io.ReadWriteCloser
	// Diagnose turns an error seen on the stream (EOF, broken pipe, a failed
	// rpc handshake) into one that says what went wrong with the transport:
	// it waits (at most ~2 s) for ssh to exit, and returns an *SSHError
	// carrying ssh's exit status and the tail of its stderr, wrapping err; if
	// ssh is still running it returns err unchanged.
	Diagnose(err error) error
}

// SetupTimer is implemented by Conns whose transport takes a while to come
// up after Dial returns (an ssh connection and login).
type SetupTimer interface {
	// SetupTimeout is how long the peer's first byte may take.
	SetupTimeout() time.Duration
}

// ConfigFor returns cfg for a session over conn: when conn is a
// SetupTimer, the handshake waits SetupTimeout for the peer's first byte
// before its HandshakeTimeout starts (unless cfg sets FirstByteTimeout), so
// that a slow login is not counted against the peer's HELLO.
func ConfigFor(conn io.ReadWriteCloser, cfg rpc.Config) rpc.Config {
	if st, ok := conn.(SetupTimer); ok && cfg.FirstByteTimeout == 0 {
		cfg.FirstByteTimeout = st.SetupTimeout()
	}
	return cfg
}
