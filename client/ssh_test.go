package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// The tests in this file run a fake ssh: a shell script standing in for the
// binary. They do not run in parallel: exec'ing a file just written while
// another test forks can fail with ETXTBSY.

// fastTiming keeps the lifecycle tests short.
var fastTiming = &timing{close: 300 * time.Millisecond, term: 300 * time.Millisecond, diagnose: 2 * time.Second}

// patientTiming is for tests whose ssh exits by itself once its stdin is
// closed: Close returns as soon as it does, and a slow machine (an emulated
// one, under load) may need more than fastTiming's 300 ms to get there.
var patientTiming = &timing{close: 10 * time.Second, term: time.Second, diagnose: 10 * time.Second}

// fakeSSH returns an SSH whose binary is a /bin/sh script with body script.
func fakeSSH(t *testing.T, script string) *SSH {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ssh")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &SSH{Destination: "backup@host", Bin: bin, Log: zaptest.NewLogger(t), timing: fastTiming}
}

// dialSSH dials s and closes the connection at the end of the test.
func dialSSH(t *testing.T, ctx context.Context, s *SSH) *sshConn {
	t.Helper()
	c, err := s.Dial(ctx)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*sshConn)
}

// readToEnd reads until an error and returns what it read and the error.
func readToEnd(c io.Reader) (string, error) {
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String(), err
		}
	}
}

// assertGone fails unless process pid is reaped and no live process is
// left in its process group. Zombies do not count: an orphan reparented to
// an init that does not reap (as in some containers) stays one forever.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("ssh (pid %d) is still there (running or not reaped)", pid)
	}
	if _, err := os.ReadDir("/proc"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// A member that was just sent SIGKILL may take a moment to die.
	deadline := time.Now().Add(2 * time.Second)
	left := groupMembers(pid)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = groupMembers(pid)
	}
	for _, m := range left {
		t.Errorf("process %s of ssh's group %d is still running", m, pid)
	}
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			out = append(out, e.Name()+" ("+strings.TrimSpace(string(b))+")")
		}
	}
	return out
}

func TestDialStream(t *testing.T) {
	c := dialSSH(t, context.Background(), fakeSSH(t, "exec cat"))
	// More than the pipes hold, in both directions at once.
	want := make([]byte, 8<<20)
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes read differ from bytes written")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Close took %v for an ssh that exits on EOF", d)
	}
	assertGone(t, c.pid)
}

func TestDialEnvironmentArgsAndProcessGroup(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/tmp/zrep-test-agent.sock")
	s := fakeSSH(t, `echo "$SSH_AUTH_SOCK"; echo "$$ $(cut -d' ' -f5 /proc/$$/stat)"; echo "$@"`)
	s.Port = 2222
	c := dialSSH(t, context.Background(), s)
	out, err := readToEnd(c)
	if err != io.EOF {
		t.Fatalf("Read: %v", err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("output %q, want three lines", out)
	}
	if lines[0] != "/tmp/zrep-test-agent.sock" {
		t.Errorf("SSH_AUTH_SOCK = %q in ssh's environment, want it kept", lines[0])
	}
	if want := fmt.Sprintf("%d %d", c.pid, c.pid); lines[1] != want {
		t.Errorf("pid and process group %q, want %q (its own group)", lines[1], want)
	}
	args, _ := s.Args()
	if want := strings.Join(args, " "); lines[2] != want {
		t.Errorf("ssh got args %q, want %q", lines[2], want)
	}
}

func TestDialErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ssh  SSH
		ctx  context.Context
		want string
	}{
		{name: "missing binary", ssh: SSH{Destination: "backup@host", Bin: "/nonexistent/ssh"}, ctx: context.Background(),
			want: "ssh backup@host: starting /nonexistent/ssh: fork/exec /nonexistent/ssh: no such file or directory"},
		{name: "invalid destination", ssh: SSH{Destination: "-x"}, ctx: context.Background(),
			want: `ssh destination "-x": must not start with '-'`},
		{name: "canceled context", ssh: SSH{Destination: "backup@host", Bin: "/bin/true"}, ctx: canceled,
			want: "ssh backup@host: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.ssh.Dial(tt.ctx)
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Dial: %q, want %q", err, tt.want)
			}
		})
	}
}

func TestCloseKillsSSHThatDoesNotExit(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{name: "exits on SIGTERM", script: "exec sleep 60"},
		{name: "ignores SIGTERM, has a child", script: "trap '' TERM; while :; do sleep 0.05; done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialSSH(t, context.Background(), fakeSSH(t, tt.script))
			time.Sleep(50 * time.Millisecond) // let the trap be set
			err := c.Close()
			if want := "ssh backup@host: still running 300ms after its stdin was closed; killed"; err == nil || err.Error() != want {
				t.Errorf("Close: %v, want %q", err, want)
			}
			if err2 := c.Close(); err2 != err {
				t.Errorf("second Close: %v, want the first's %v", err2, err)
			}
			assertGone(t, c.pid)
			// Close killed it: nothing for Diagnose to blame on ssh.
			if got := c.Diagnose(io.EOF); got != io.EOF {
				t.Errorf("Diagnose after Close killed ssh: %v, want io.EOF unchanged", got)
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	s := fakeSSH(t, "exec sleep 60") // never writes, ignores its stdin
	s.timing = &timing{close: 2 * time.Second, term: time.Second, diagnose: time.Second}
	c := dialSSH(t, context.Background(), s)
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read: %v, want os.ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Read still blocked 1s after Close started")
	}
	if err := <-closed; err == nil {
		t.Error("Close: nil, want an error saying ssh was killed")
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	assertGone(t, c.pid)
}

func TestCloseConcurrent(t *testing.T) {
	s := fakeSSH(t, "exec cat")
	s.timing = patientTiming
	c := dialSSH(t, context.Background(), s)
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- c.Close() }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	assertGone(t, c.pid)
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantOut    string // stdout before EOF
		wantKind   SSHFailure
		wantCode   int
		wantError  string
		wantStderr string // suffix of SSHError.Stderr
	}{
		{
			name:      "host key",
			script:    `echo 'No ED25519 host key is known for host and you have requested strict checking.' >&2; echo 'Host key verification failed.' >&2; exit 255`,
			wantKind:  HostKeyUnknown,
			wantCode:  255,
			wantError: "ssh backup@host: host key verification failed (exit status 255): Host key verification failed.",
		},
		{
			name:      "auth",
			script:    `echo 'backup@host: Permission denied (publickey).' >&2; exit 255`,
			wantKind:  AuthRefused,
			wantCode:  255,
			wantError: "ssh backup@host: authentication refused (exit status 255): backup@host: Permission denied (publickey).",
		},
		{
			name:      "remote command missing",
			script:    `echo 'bash: line 1: zrep-stdinserver: command not found' >&2; exit 127`,
			wantKind:  RemoteCommandFailed,
			wantCode:  127,
			wantError: "ssh backup@host: remote command failed (exit status 127): bash: line 1: zrep-stdinserver: command not found",
		},
		{
			name:      "output, then the remote command exits",
			script:    `echo partial; exit 0`,
			wantOut:   "partial\n",
			wantKind:  RemoteCommandFailed,
			wantCode:  0,
			wantError: "ssh backup@host: remote command exited (exit status 0): EOF",
		},
		{
			name:      "killed by someone else",
			script:    `echo 'about to die' >&2; kill -KILL $$`,
			wantKind:  Unknown,
			wantCode:  -1,
			wantError: "ssh backup@host: failed (killed by a signal): about to die",
		},
		{
			name: "stderr beyond the tail",
			script: `i=0; while [ $i -lt 3000 ]; do echo "remote noise line $i"; i=$((i+1)); done >&2
echo 'Connection reset by 192.0.2.7 port 22' >&2; exit 255`,
			wantKind:   ConnectionClosed,
			wantCode:   255,
			wantError:  "ssh backup@host: connection closed (exit status 255): Connection reset by 192.0.2.7 port 22",
			wantStderr: "remote noise line 2999\nConnection reset by 192.0.2.7 port 22\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialSSH(t, context.Background(), fakeSSH(t, tt.script))
			out, err := readToEnd(c)
			if err != io.EOF || out != tt.wantOut {
				t.Fatalf("read %q, %v; want %q, EOF", out, err, tt.wantOut)
			}
			derr := c.Diagnose(err)
			var se *SSHError
			if !errors.As(derr, &se) {
				t.Fatalf("Diagnose: %v (%T), want *SSHError", derr, derr)
			}
			if se.Kind != tt.wantKind || se.ExitCode != tt.wantCode || se.Destination != "backup@host" {
				t.Errorf("kind %v, exit %d, destination %q; want %v, %d, backup@host", se.Kind, se.ExitCode, se.Destination, tt.wantKind, tt.wantCode)
			}
			if derr.Error() != tt.wantError {
				t.Errorf("Error():\n got %q\nwant %q", derr.Error(), tt.wantError)
			}
			if !errors.Is(derr, io.EOF) {
				t.Error("the SSHError does not wrap the stream error")
			}
			if len(se.Stderr) > stderrTail || !strings.HasSuffix(se.Stderr, tt.wantStderr) {
				t.Errorf("Stderr (%d bytes) ends with %q, want %q", len(se.Stderr), se.Stderr[max(0, len(se.Stderr)-80):], tt.wantStderr)
			}
			// Diagnosing twice does not wrap twice.
			if again := c.Diagnose(derr); again != derr {
				t.Errorf("Diagnose(SSHError) = %v, want it unchanged", again)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close after ssh exited: %v", err)
			}
			assertGone(t, c.pid)
		})
	}
}

func TestDiagnoseWhileRunning(t *testing.T) {
	s := fakeSSH(t, "exec cat")
	s.timing = &timing{close: time.Second, term: time.Second, diagnose: 100 * time.Millisecond}
	c := dialSSH(t, context.Background(), s)
	if err := c.Diagnose(nil); err != nil {
		t.Errorf("Diagnose(nil) = %v", err)
	}
	sentinel := errors.New("rpc handshake: bad magic")
	start := time.Now()
	if got := c.Diagnose(sentinel); got != sentinel {
		t.Errorf("Diagnose while ssh runs: %v, want the error unchanged", got)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > time.Second {
		t.Errorf("Diagnose took %v, want about the 100ms wait", d)
	}
	// The stream still works.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestContextCancelKillsSSH(t *testing.T) {
	cause := errors.New("replication job stopped")
	tests := []struct {
		name   string
		script string
	}{
		{name: "exits on SIGTERM", script: "exec sleep 60"},
		{name: "needs SIGKILL", script: "trap '' TERM; while :; do sleep 0.05; done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			c := dialSSH(t, ctx, fakeSSH(t, tt.script))
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			cancel(cause)
			_, err := readToEnd(c)
			if err != io.EOF {
				t.Fatalf("Read after cancel: %v, want EOF", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("ssh took %v to die after cancel", d)
			}
			derr := c.Diagnose(err)
			if !errors.Is(derr, cause) {
				t.Errorf("Diagnose: %v, want it to wrap the context's cause", derr)
			}
			if want := "ssh backup@host: killed on cancellation (stream: EOF): replication job stopped"; derr.Error() != want {
				t.Errorf("Diagnose: %q, want %q", derr, want)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			assertGone(t, c.pid)
		})
	}
}

func TestContextCancelAfterExit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := dialSSH(t, ctx, fakeSSH(t, "echo 'Host key verification failed.' >&2; exit 255"))
	_, err := readToEnd(c)
	<-c.exited
	cancel()
	var se *SSHError
	if derr := c.Diagnose(err); !errors.As(derr, &se) || se.Kind != HostKeyUnknown {
		t.Errorf("Diagnose: %v, want the host key failure, not the later cancellation", derr)
	}
}

func TestStderrIsLoggedNotPrinted(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s := fakeSSH(t, `echo 'first line' >&2; printf 'no newline' >&2; exit 255`)
	s.Log = zap.New(core)
	c := dialSSH(t, context.Background(), s)
	_, err := readToEnd(c)
	_ = c.Diagnose(err)
	var got []string
	for _, e := range logs.FilterMessage("ssh stderr").All() {
		if e.Level != zapcore.DebugLevel {
			t.Errorf("stderr logged at %v, want debug", e.Level)
		}
		if d := e.ContextMap()["destination"]; d != "backup@host" {
			t.Errorf("stderr line logged with destination %v", d)
		}
		got = append(got, e.ContextMap()["line"].(string))
	}
	if want := []string{"first line", "no newline"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("logged stderr lines %q, want %q", got, want)
	}
}

func TestLineLogger(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{name: "lines split across writes", writes: []string{"ab", "c\nd", "e\n"}, want: []string{"abc", "de"}},
		{name: "CRLF and empty lines", writes: []string{"a\r\n\n\nb\n"}, want: []string{"a", "b"}},
		{name: "unterminated last line", writes: []string{"a\nb"}, want: []string{"a", "b"}},
		{name: "long line in pieces", writes: []string{strings.Repeat("x", maxLogLine+10) + "\n"}, want: []string{strings.Repeat("x", maxLogLine), strings.Repeat("x", 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			l := lineLogger{log: zap.New(core)}
			for _, w := range tt.writes {
				l.Write([]byte(w))
			}
			l.Flush()
			var got []string
			for _, e := range logs.All() {
				got = append(got, e.ContextMap()["line"].(string))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiagnoseWithStderrHeldOpen: a grandchild of ssh (a ProxyCommand, say)
// that keeps stderr open after ssh exited neither hides ssh's last words
// nor holds Diagnose for long.
func TestDiagnoseWithStderrHeldOpen(t *testing.T) {
	c := dialSSH(t, context.Background(), fakeSSH(t, `sleep 30 >&2 &
echo 'kex_exchange_identification: Connection closed by remote host' >&2; exit 255`))
	t.Cleanup(func() { _ = syscall.Kill(-c.pid, syscall.SIGKILL) })
	_, err := readToEnd(c)
	derr := c.Diagnose(err)
	var se *SSHError
	if !errors.As(derr, &se) || se.Kind != ConnectionClosed || !strings.Contains(se.Stderr, "Connection closed by remote host") {
		t.Fatalf("Diagnose: %v", derr)
	}
	select {
	case <-c.stderrDone: // the reader stopped on the quiet pipe, not Diagnose on its bound
	default:
		t.Error("the stderr reader still waits for the grandchild")
	}
}
