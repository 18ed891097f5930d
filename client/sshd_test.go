package client

// Tests against the real OpenSSH client, and a real sshd started by
// internal/testenv. Without ssh or sshd they skip, unless
// ZREP_REQUIRE_SSHD=1, which makes them fail instead.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap/zaptest"

	"github.com/zrep/zrep/internal/testenv"
)

// requireSSH skips (or fails) the test when the ssh client is missing.
func requireSSH(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("ssh")
	testenv.Require(t, testenv.RequireSSHDEnv, err == nil, "ssh is not installed (apt-get install openssh-client)")
}

// sshdFixture is a real sshd with one authorized client key.
type sshdFixture struct {
	sshd *testenv.SSHD
	key  string // the authorized private key
	dir  string
	user string
}

// startFixture starts sshd with a fresh client key whose forced command is forced.
func startFixture(t *testing.T, forced string) *sshdFixture {
	t.Helper()
	requireSSH(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, pub := testenv.NewClientKey(t, dir)
	s := testenv.StartSSHD(t, fmt.Sprintf("command=\"%s\",restrict %s\n", forced, pub))
	return &sshdFixture{sshd: s, key: key, dir: dir, user: u.Username}
}

// client returns an SSH for the fixture's server with the given options
// (the server's SSHOptions when nil).
func (f *sshdFixture) client(t *testing.T, options []string) *SSH {
	if options == nil {
		options = f.sshd.SSHOptions()
	}
	return &SSH{
		Destination: f.user + "@127.0.0.1",
		Port:        f.sshd.Port,
		Identity:    f.key,
		Options:     options,
		Log:         zaptest.NewLogger(t),
	}
}

// replaceOption returns options with the value of key replaced.
func replaceOption(options []string, key, value string) []string {
	out := make([]string, 0, len(options))
	for _, o := range options {
		if strings.HasPrefix(o, key+"=") {
			o = key + "=" + value
		}
		out = append(out, o)
	}
	return out
}

func TestRealSSHSession(t *testing.T) {
	t.Parallel()
	// The forced command wins over RemoteCommand, which sshd passes on in
	// SSH_ORIGINAL_COMMAND.
	f := startFixture(t, `echo $SSH_ORIGINAL_COMMAND; exec cat`)
	c := dialSSH(t, context.Background(), f.client(t, nil))

	want := make([]byte, 4<<20)
	if _, err := rand.Read(want); err != nil {
		t.Fatal(err)
	}
	go func() {
		if _, err := c.Write(want); err != nil {
			t.Errorf("Write: %v", err)
		}
	}()
	header := []byte("zrep-stdinserver serve\n")
	got := make([]byte, len(header)+len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("ReadFull: %v (%v)", err, c.Diagnose(err))
	}
	if !bytes.Equal(got[:len(header)], header) {
		t.Errorf("SSH_ORIGINAL_COMMAND line %q, want %q", got[:len(header)], header)
	}
	if !bytes.Equal(got[len(header):], want) {
		t.Error("bytes read back differ from bytes written")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v; ssh should end the session on stdin EOF", d)
	}
	assertGone(t, c.pid)
	var se *SSHError
	if derr := c.Diagnose(io.EOF); !errors.As(derr, &se) || se.ExitCode != 0 {
		t.Errorf("Diagnose after a clean session: %v, want exit status 0", derr)
	}
}

func TestRealSSHContextCancel(t *testing.T) {
	t.Parallel()
	f := startFixture(t, "cat")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := dialSSH(t, ctx, f.client(t, nil))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(c.Diagnose(err))
	}
	cancel()
	_, err := readToEnd(c)
	if derr := c.Diagnose(err); !errors.Is(derr, context.Canceled) {
		t.Errorf("Diagnose after cancel: %v, want context.Canceled", derr)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	assertGone(t, c.pid)
}

// TestRealSSHFailures provokes each failure for real and checks how
// Diagnose classifies OpenSSH's messages. Run with -v to see them.
func TestRealSSHFailures(t *testing.T) {
	requireSSH(t)
	tests := []struct {
		name       string
		setup      func(t *testing.T) *SSH
		wantKind   SSHFailure
		wantCode   int
		wantStderr []string // lines that must appear in stderr
	}{
		{
			name: "unknown host key",
			setup: func(t *testing.T) *SSH {
				f := startFixture(t, "cat")
				empty := filepath.Join(f.dir, "empty_known_hosts")
				if err := os.WriteFile(empty, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return f.client(t, replaceOption(f.sshd.SSHOptions(), "UserKnownHostsFile", empty))
			},
			wantKind:   HostKeyUnknown,
			wantCode:   255,
			wantStderr: []string{"No ED25519 host key is known for [127.0.0.1]:PORT and you have requested strict checking.", "Host key verification failed."},
		},
		{
			name: "changed host key",
			setup: func(t *testing.T) *SSH {
				f := startFixture(t, "cat")
				_, otherPub := testenv.NewClientKey(t, f.dir)
				wrong := filepath.Join(f.dir, "wrong_known_hosts")
				line := fmt.Sprintf("[127.0.0.1]:%d %s\n", f.sshd.Port, otherPub)
				if err := os.WriteFile(wrong, []byte(line), 0o644); err != nil {
					t.Fatal(err)
				}
				return f.client(t, replaceOption(f.sshd.SSHOptions(), "UserKnownHostsFile", wrong))
			},
			wantKind:   HostKeyChanged,
			wantCode:   255,
			wantStderr: []string{"@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @", "Host key for [127.0.0.1]:PORT has changed and you have requested strict checking.", "Host key verification failed."},
		},
		{
			name: "refused key",
			setup: func(t *testing.T) *SSH {
				f := startFixture(t, "cat")
				s := f.client(t, nil)
				s.Identity, _ = testenv.NewClientKey(t, f.dir)
				return s
			},
			wantKind:   AuthRefused,
			wantCode:   255,
			wantStderr: []string{"USER@127.0.0.1: Permission denied (publickey)."},
		},
		{
			name: "closed port",
			setup: func(t *testing.T) *SSH {
				return &SSH{Destination: "127.0.0.1", Port: closedPort(t), Log: zaptest.NewLogger(t)}
			},
			wantKind:   ConnectionRefused,
			wantCode:   255,
			wantStderr: []string{"ssh: connect to host 127.0.0.1 port PORT: Connection refused"},
		},
		{
			name: "forced command not installed",
			setup: func(t *testing.T) *SSH {
				return startFixture(t, "zrep-stdinserver-not-installed serve").client(t, nil)
			},
			wantKind:   RemoteCommandFailed,
			wantCode:   127,
			wantStderr: []string{"zrep-stdinserver-not-installed: command not found"},
		},
		{
			name: "server closes the connection (LogLevel=INFO)",
			setup: func(t *testing.T) *SSH {
				return &SSH{Destination: "127.0.0.1", Port: closingServer(t), Options: []string{"LogLevel=INFO"}, Log: zaptest.NewLogger(t)}
			},
			wantKind:   ConnectionClosed,
			wantCode:   255,
			wantStderr: []string{"Connection closed by 127.0.0.1 port PORT"},
		},
		{
			name: "connect timeout (the listen queue is full)",
			setup: func(t *testing.T) *SSH {
				return &SSH{Destination: "127.0.0.1", Port: fullPort(t), Options: []string{"ConnectTimeout=1"}, Log: zaptest.NewLogger(t)}
			},
			wantKind:   Timeout,
			wantCode:   255,
			wantStderr: []string{"ssh: connect to host 127.0.0.1 port PORT: Connection timed out"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.setup(t)
			c := dialSSH(t, context.Background(), s)
			_, err := readToEnd(c)
			if err != io.EOF {
				t.Fatalf("Read: %v, want EOF", err)
			}
			derr := c.Diagnose(err)
			var se *SSHError
			if !errors.As(derr, &se) {
				t.Fatalf("Diagnose: %v (%T), want *SSHError", derr, derr)
			}
			t.Logf("Error(): %s", derr)
			t.Logf("stderr:\n%s", se.Stderr)
			if se.Kind != tt.wantKind || se.ExitCode != tt.wantCode {
				t.Errorf("kind %v, exit status %d; want %v, %d", se.Kind, se.ExitCode, tt.wantKind, tt.wantCode)
			}
			replacer := strings.NewReplacer("PORT", fmt.Sprint(s.Port), "USER", strings.TrimSuffix(s.Destination, "@127.0.0.1"))
			lines := strings.Split(se.Stderr, "\n")
			for _, w := range tt.wantStderr {
				w = replacer.Replace(w)
				found := false
				for _, l := range lines {
					found = found || strings.Contains(l, w)
				}
				if !found {
					t.Errorf("stderr has no line with %q", w)
				}
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			assertGone(t, c.pid)
		})
	}
}

// closedPort returns a port on 127.0.0.1 on which nothing listens.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// closingServer listens on 127.0.0.1, sends an SSH banner to whoever
// connects, reads what the client sends until it goes quiet, and closes
// the connection (with a FIN: nothing is left unread).
func closingServer(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.WriteString(c, "SSH-2.0-zrep-test\r\n"); err != nil {
					return
				}
				buf := make([]byte, 4096)
				for {
					_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// fullPort returns a port whose listen queue is full and never accepted
// from, so that the kernel drops further SYNs and connecting times out.
func fullPort(t *testing.T) int {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // the queue is full
		}
		t.Cleanup(func() { c.Close() })
		if i == 16 {
			t.Skip("the kernel keeps accepting into a listen queue of length 0")
		}
	}
	return port
}
