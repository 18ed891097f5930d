package rpc

import (
	stderrors "errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/printable"
)

// Code classifies a call error. Codes travel on the wire as these strings
// and are stable: clients may branch on them.
type Code string

// The call error codes.
const (
	CodeNotFound         Code = "not_found"         // the object does not exist (or the caller may not know it does)
	CodePermissionDenied Code = "permission_denied" // the caller may not do this
	CodeInvalidArgument  Code = "invalid_argument"  // the request is malformed
	CodeInternal         Code = "internal"          // the server failed
	CodeCanceled         Code = "canceled"          // the call was canceled by the client or the session ended
	CodeUnimplemented    Code = "unimplemented"     // no such method
	CodeUnavailable      Code = "unavailable"       // the server is shutting down
)

// maxPeerMessage bounds the message of an error the peer sent, as the
// client keeps and shows it (a CLOSE reason is bounded by maxCloseLen).
const maxPeerMessage = 4096

// Error is a call-level error: the call failed, the session goes on.
// Handlers return it to choose the code the client sees; any other error
// reaches the client as CodeInternal with the error's text.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Error returns the message followed by the code, e.g.
// `dataset "tank/x" does not exist (not_found)`.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// fromPeer returns e, which the peer sent, safe to print: the peer chose
// its text, and a terminal takes control characters as commands (see
// package printable); the message is bounded by maxPeerMessage.
func (e *Error) fromPeer() *Error {
	return &Error{
		Code:    Code(printable.Bounded(string(e.Code), 64)),
		Message: printable.Bounded(e.Message, maxPeerMessage),
	}
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of the first *Error in err's chain, "" for nil,
// and CodeInternal for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// toCallError converts any error a handler produced into the *Error sent on the wire.
func toCallError(err error) *Error {
	var e *Error
	if stderrors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// Session-level errors. Use errors.Is to recognise them.
var (
	// ErrPeerGone: the peer closed the connection without an orderly CLOSE,
	// or the connection broke.
	ErrPeerGone = stderrors.New("peer closed the connection")
	// ErrIdleTimeout: the server saw no frame between calls for Config.IdleTimeout.
	ErrIdleTimeout = stderrors.New("session idle timeout")
	// ErrPeerUnresponsive: the peer answered no PING within Config.PingTimeout.
	ErrPeerUnresponsive = stderrors.New("peer answered no ping")
	// ErrClosed: the session was closed locally.
	ErrClosed = stderrors.New("session closed")
	// ErrHandshake: the handshake failed (not a zrep peer, timeout, bad HELLO).
	ErrHandshake = stderrors.New("rpc handshake failed")
)

// ProtocolError is a violation of the wire format. It ends the session,
// like http2's ConnectionError; Reason says exactly what was wrong.
type ProtocolError struct {
	Reason string
	Err    error // optional cause, e.g. io.ErrUnexpectedEOF for a truncated frame
}

func (e *ProtocolError) Error() string { return "rpc protocol error: " + e.Reason }

// Unwrap returns the cause.
func (e *ProtocolError) Unwrap() error { return e.Err }

func protocolErrorf(format string, args ...any) *ProtocolError {
	return &ProtocolError{Reason: fmt.Sprintf(format, args...)}
}

// VersionMismatchError reports that the peers speak different protocol versions.
type VersionMismatchError struct {
	Local, Remote  uint16
	RemoteSoftware string
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("rpc protocol version mismatch: this side speaks version %d, the peer (%s) speaks version %d; install matching zrep versions on both hosts",
		e.Local, e.RemoteSoftware, e.Remote)
}

// Is makes errors.Is(err, ErrHandshake) true.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrHandshake }

// PeerClosedError reports that the peer ended the session with CLOSE.
type PeerClosedError struct {
	Reason string
}

func (e *PeerClosedError) Error() string {
	if e.Reason == "" {
		return "peer closed the session"
	}
	return "peer closed the session: " + e.Reason
}

// connLostError is an I/O failure of the underlying stream; it matches ErrPeerGone.
type connLostError struct {
	op  string
	err error
}

func (e *connLostError) Error() string {
	if e.err == io.EOF {
		return "peer closed the connection while " + e.op
	}
	return fmt.Sprintf("connection lost while %s: %v", e.op, e.err)
}

func (e *connLostError) Unwrap() error        { return e.err }
func (e *connLostError) Is(target error) bool { return target == ErrPeerGone }

// ioError classifies an I/O error of the underlying stream: the usual ways a
// peer vanishes become a connLostError (errors.Is ErrPeerGone), others stay as they are.
func ioError(op string, err error) error {
	switch {
	case stderrors.Is(err, io.EOF), stderrors.Is(err, io.ErrUnexpectedEOF), stderrors.Is(err, io.ErrClosedPipe),
		stderrors.Is(err, syscall.EPIPE), stderrors.Is(err, syscall.ECONNRESET),
		stderrors.Is(err, os.ErrClosed), stderrors.Is(err, net.ErrClosed):
		return &connLostError{op: op, err: err}
	}
	return errors.Wrap(err, op)
}
