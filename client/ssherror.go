package client

import (
	"fmt"
	"strings"
	"sync"

	"github.com/zrep/zrep/internal/printable"
)

// stderrTail is how much of ssh's stderr a connection keeps.
const stderrTail = 32 << 10

// SSHFailure classifies why an ssh session failed.
type SSHFailure int

// The failure kinds, recognised from the messages of OpenSSH 9.x. Only an
// exit status of 255 (ssh's own failure) or death by a signal is matched
// against ssh's messages; any other status is RemoteCommandFailed.
const (
	// Unknown is a failure of ssh that none of the other kinds matches.
	Unknown SSHFailure = iota
	// HostKeyUnknown: known_hosts has no key for the host and
	// StrictHostKeyChecking (or BatchMode) forbids asking.
	HostKeyUnknown
	// HostKeyChanged: the host presented a key other than the one in known_hosts.
	HostKeyChanged
	// AuthRefused: the server accepted none of our keys.
	AuthRefused
	// ConnectionRefused: nothing listens on the port.
	ConnectionRefused
	// HostUnresolved: the host name did not resolve.
	HostUnresolved
	// HostUnreachable: no route to the host or its network.
	HostUnreachable
	// Timeout: connecting timed out, or the server stopped answering keepalives.
	Timeout
	// ConnectionClosed: the server or the network closed or reset the connection.
	ConnectionClosed
	// RemoteCommandFailed: the session worked but the remote command exited
	// (with a status other than 255), e.g. because it is not installed.
	RemoteCommandFailed
)

var failureNames = [...]string{
	Unknown:             "failed",
	HostKeyUnknown:      "host key verification failed",
	HostKeyChanged:      "host key changed",
	AuthRefused:         "authentication refused",
	ConnectionRefused:   "connection refused",
	HostUnresolved:      "could not resolve host name",
	HostUnreachable:     "host unreachable",
	Timeout:             "timed out",
	ConnectionClosed:    "connection closed",
	RemoteCommandFailed: "remote command failed",
}

// String describes the kind in a few words, e.g. "host key changed".
func (f SSHFailure) String() string {
	if f < 0 || int(f) >= len(failureNames) {
		return fmt.Sprintf("SSHFailure(%d)", int(f))
	}
	return failureNames[f]
}

// failurePatterns are substrings of OpenSSH's messages, by kind, in the
// order they are tried on each line.
var failurePatterns = []struct {
	kind SSHFailure
	subs []string
}{
	{HostKeyChanged, []string{"REMOTE HOST IDENTIFICATION HAS CHANGED", "has changed and you have requested strict checking"}},
	{HostKeyUnknown, []string{"Host key verification failed", "host key is known for"}},
	{AuthRefused, []string{"Permission denied (", "Too many authentication failures"}},
	{HostUnresolved, []string{"Could not resolve hostname"}},
	{ConnectionRefused, []string{"Connection refused"}},
	{HostUnreachable, []string{"No route to host", "Network is unreachable"}},
	{Timeout, []string{"Connection timed out", "Operation timed out", "Timeout, server"}},
	{ConnectionClosed, []string{"Connection closed by", "Connection reset"}},
}

// matchLine returns the kind of an ssh message line, or Unknown.
func matchLine(line string) SSHFailure {
	for _, p := range failurePatterns {
		for _, sub := range p.subs {
			if strings.Contains(line, sub) {
				return p.kind
			}
		}
	}
	return Unknown
}

// classify returns the kind of failure for ssh's exit code (-1 for death by
// a signal) and stderr. ssh writes its fatal message last, so lines are
// tried from the last one back. A changed host key also ends with "Host key
// verification failed.", after the warning banner that tells it apart.
func classify(exitCode int, stderr string) SSHFailure {
	if exitCode >= 0 && exitCode != 255 {
		return RemoteCommandFailed
	}
	lines := strings.Split(stderr, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		kind := matchLine(lines[i])
		if kind == Unknown {
			continue
		}
		if kind == HostKeyUnknown {
			for _, l := range lines[:i] {
				if matchLine(l) == HostKeyChanged {
					return HostKeyChanged
				}
			}
		}
		return kind
	}
	return Unknown
}

// SSHError is a failed ssh session: how ssh exited, what it said, and what
// that means.
type SSHError struct {
	Destination string     // the SSH.Destination dialed
	ExitCode    int        // ssh's exit status; -1 if a signal killed it
	Stderr      string     // the last 32 KiB of ssh's stderr, from a line start
	Kind        SSHFailure // what went wrong
	Err         error      // the error seen on the stream
}

// newSSHError classifies a failure; exitCode is -1 for death by a signal.
func newSSHError(dest string, exitCode int, stderr string, err error) *SSHError {
	return &SSHError{
		Destination: dest,
		ExitCode:    exitCode,
		Stderr:      stderr,
		Kind:        classify(exitCode, stderr),
		Err:         err,
	}
}

// Error returns the kind, the exit status and ssh's most telling message,
// e.g. "ssh backup@host: host key verification failed (exit status 255):
// Host key verification failed." The message is the last stderr line of the
// error's kind, else the last stderr line, else the stream error.
func (e *SSHError) Error() string {
	var b strings.Builder
	kind := e.Kind.String()
	if e.Kind == RemoteCommandFailed && e.ExitCode == 0 {
		kind = "remote command exited"
	}
	fmt.Fprintf(&b, "ssh %s: %s", e.Destination, kind)
	if e.ExitCode >= 0 {
		fmt.Fprintf(&b, " (exit status %d)", e.ExitCode)
	} else {
		b.WriteString(" (killed by a signal)")
	}
	if line := e.message(); line != "" {
		b.WriteString(": ")
		b.WriteString(line)
	} else if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the error seen on the stream.
func (e *SSHError) Unwrap() error { return e.Err }

// maxMessage bounds the stderr line quoted by Error.
const maxMessage = 512

// message returns the stderr line that Error quotes, cleaned of control
// characters (the remote side may write anything there).
func (e *SSHError) message() string {
	lines := strings.Split(e.Stderr, "\n")
	pick := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if pick == "" {
			pick = l
		}
		if e.Kind != Unknown && e.Kind != RemoteCommandFailed && matchLine(l) == e.Kind {
			pick = l
			break
		}
	}
	return printable.Bounded(pick, maxMessage)
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	cut bool // bytes were dropped from the front
}

// Write appends p, dropping the oldest bytes beyond stderrTail.
func (t *tailBuffer) Write(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= stderrTail {
		t.b = append(t.b[:0], p[len(p)-stderrTail:]...)
		t.cut = true
		return
	}
	if over := len(t.b) + len(p) - stderrTail; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	t.b = append(t.b, p...)
}

// String returns the kept bytes; once some were dropped, it starts after
// the first newline, so that it never begins with a partial line.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.b)
	if t.cut {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}
