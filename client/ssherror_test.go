package client

import (
	"io"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

// hostKeyChanged is what OpenSSH 9.2p1 printed for a known_hosts entry
// holding another key than the server's, with -o LogLevel=ERROR.
const hostKeyChanged = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:BD7gx9BRLzkHbuPXyf3IUdQywZUAt+ftDCVjdhhpWrY.
Please contact your system administrator.
Add correct host key in /tmp/sshexp/kh2 to get rid of this message.
Offending ED25519 key in /tmp/sshexp/kh2:1
  remove with:
  ssh-keygen -f "/tmp/sshexp/kh2" -R "[127.0.0.1]:22222"
Host key for [127.0.0.1]:22222 has changed and you have requested strict checking.
Host key verification failed.
`

// The stderr lines below were produced by OpenSSH_9.2p1 Debian-2+deb12u10
// (see the real-sshd tests, which reproduce the common ones).
func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		exitCode int
		stderr   string
		want     SSHFailure
		wantLine string // the line Error quotes
	}{
		{
			name:     "unknown host key, BatchMode and StrictHostKeyChecking=yes",
			exitCode: 255,
			stderr:   "No ED25519 host key is known for [127.0.0.1]:22222 and you have requested strict checking.\nHost key verification failed.\n",
			want:     HostKeyUnknown,
			wantLine: "Host key verification failed.",
		},
		{
			name:     "changed host key",
			exitCode: 255,
			stderr:   hostKeyChanged,
			want:     HostKeyChanged,
			wantLine: "Host key for [127.0.0.1]:22222 has changed and you have requested strict checking.",
		},
		{
			name:     "changed host key, known_hosts has only an RSA key",
			exitCode: 255,
			stderr:   strings.Replace(hostKeyChanged, "Offending ED25519 key", "Offending RSA key", 1),
			want:     HostKeyChanged,
			wantLine: "Host key for [127.0.0.1]:22222 has changed and you have requested strict checking.",
		},
		{
			name:     "key refused",
			exitCode: 255,
			stderr:   "root@127.0.0.1: Permission denied (publickey).\n",
			want:     AuthRefused,
			wantLine: "root@127.0.0.1: Permission denied (publickey).",
		},
		{
			name:     "key refused, server also offers passwords",
			exitCode: 255,
			stderr:   "backup@host: Permission denied (publickey,password).\n",
			want:     AuthRefused,
			wantLine: "backup@host: Permission denied (publickey,password).",
		},
		{
			name:     "closed port",
			exitCode: 255,
			stderr:   "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
			want:     ConnectionRefused,
			wantLine: "ssh: connect to host 127.0.0.1 port 1: Connection refused",
		},
		{
			name:     "unresolvable host",
			exitCode: 255,
			stderr:   "ssh: Could not resolve hostname nonexistent.invalid: Name or service not known\n",
			want:     HostUnresolved,
			wantLine: "ssh: Could not resolve hostname nonexistent.invalid: Name or service not known",
		},
		{
			name:     "connect timeout (ConnectTimeout, SYN unanswered)",
			exitCode: 255,
			stderr:   "ssh: connect to host 127.0.0.1 port 22225: Connection timed out\n",
			want:     Timeout,
			wantLine: "ssh: connect to host 127.0.0.1 port 22225: Connection timed out",
		},
		{
			name:     "connected, no banner within ConnectTimeout",
			exitCode: 255,
			stderr:   "Connection timed out during banner exchange\n",
			want:     Timeout,
			wantLine: "Connection timed out during banner exchange",
		},
		{
			name:     "server stopped answering keepalives",
			exitCode: 255,
			stderr:   "Timeout, server 127.0.0.1 not responding.\n",
			want:     Timeout,
			wantLine: "Timeout, server 127.0.0.1 not responding.",
		},
		{
			name:     "macOS connect timeout",
			exitCode: 255,
			stderr:   "ssh: connect to host 192.0.2.1 port 22: Operation timed out\n",
			want:     Timeout,
			wantLine: "ssh: connect to host 192.0.2.1 port 22: Operation timed out",
		},
		{
			name:     "closed before the banner",
			exitCode: 255,
			stderr:   "kex_exchange_identification: Connection closed by remote host\nConnection closed by 127.0.0.1 port 22227\n",
			want:     ConnectionClosed,
			wantLine: "Connection closed by 127.0.0.1 port 22227",
		},
		{
			name:     "closed during key exchange",
			exitCode: 255,
			stderr:   "Connection closed by 127.0.0.1 port 22227\n",
			want:     ConnectionClosed,
			wantLine: "Connection closed by 127.0.0.1 port 22227",
		},
		{
			name:     "reset before the banner",
			exitCode: 255,
			stderr:   "kex_exchange_identification: read: Connection reset by peer\nConnection reset by 127.0.0.1 port 22226\n",
			want:     ConnectionClosed,
			wantLine: "Connection reset by 127.0.0.1 port 22226",
		},
		{
			name:     "reset during key exchange",
			exitCode: 255,
			stderr:   "Connection reset by 127.0.0.1 port 22226\n",
			want:     ConnectionClosed,
			wantLine: "Connection reset by 127.0.0.1 port 22226",
		},
		{
			name:     "no route",
			exitCode: 255,
			stderr:   "ssh: connect to host 10.1.2.3 port 22: No route to host\n",
			want:     HostUnreachable,
			wantLine: "ssh: connect to host 10.1.2.3 port 22: No route to host",
		},
		{
			name:     "forced command not installed",
			exitCode: 127,
			stderr:   "bash: line 1: zrep-stdinserver: command not found\n",
			want:     RemoteCommandFailed,
			wantLine: "bash: line 1: zrep-stdinserver: command not found",
		},
		{
			name:     "remote command failing with an ssh-like message is still the remote command",
			exitCode: 1,
			stderr:   "zrep-stdinserver: Permission denied (publickey) is not a thing\n",
			want:     RemoteCommandFailed,
			wantLine: "zrep-stdinserver: Permission denied (publickey) is not a thing",
		},
		{
			name:     "remote command exited 0 early",
			exitCode: 0,
			stderr:   "",
			want:     RemoteCommandFailed,
		},
		{
			name:     "ssh's last message wins over earlier remote output",
			exitCode: 255,
			stderr:   "zfs: Connection refused by frobnicator\nConnection reset by 127.0.0.1 port 22\n",
			want:     ConnectionClosed,
			wantLine: "Connection reset by 127.0.0.1 port 22",
		},
		{
			name:     "bad option",
			exitCode: 255,
			stderr:   "command-line line 0: Bad configuration option: frobnicate\n",
			want:     Unknown,
			wantLine: "command-line line 0: Bad configuration option: frobnicate",
		},
		{
			name:     "nothing said (LogLevel=ERROR hides 'Connection closed by')",
			exitCode: 255,
			stderr:   "",
			want:     Unknown,
		},
		{
			name:     "killed by a signal",
			exitCode: -1,
			stderr:   "Killed by signal 15.\n",
			want:     Unknown,
			wantLine: "Killed by signal 15.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSSHError("host", tt.exitCode, tt.stderr, io.EOF)
			if e.Kind != tt.want {
				t.Errorf("kind %v, want %v", e.Kind, tt.want)
			}
			if got := e.message(); got != tt.wantLine {
				t.Errorf("message %q, want %q", got, tt.wantLine)
			}
		})
	}
}

func TestSSHErrorError(t *testing.T) {
	tests := []struct {
		name string
		err  *SSHError
		want string
	}{
		{
			name: "the brief's example",
			err: newSSHError("backup@host", 255,
				"No ED25519 host key is known for host and you have requested strict checking.\nHost key verification failed.\n", io.EOF),
			want: "ssh backup@host: host key verification failed (exit status 255): Host key verification failed.",
		},
		{
			name: "changed host key quotes the telling line",
			err:  newSSHError("backup@host", 255, hostKeyChanged, io.EOF),
			want: "ssh backup@host: host key changed (exit status 255): Host key for [127.0.0.1]:22222 has changed and you have requested strict checking.",
		},
		{
			name: "no stderr: the stream error",
			err:  newSSHError("host", 255, "", errors.New("rpc handshake: EOF")),
			want: "ssh host: failed (exit status 255): rpc handshake: EOF",
		},
		{
			name: "remote command exited 0",
			err:  newSSHError("host", 0, "", io.EOF),
			want: "ssh host: remote command exited (exit status 0): EOF",
		},
		{
			name: "remote command failed",
			err:  newSSHError("host", 127, "bash: line 1: zrep-stdinserver: command not found\n", io.EOF),
			want: "ssh host: remote command failed (exit status 127): bash: line 1: zrep-stdinserver: command not found",
		},
		{
			name: "signal",
			err:  newSSHError("host", -1, "", io.EOF),
			want: "ssh host: failed (killed by a signal): EOF",
		},
		{
			name: "control characters from the remote side are neutralised",
			err:  newSSHError("host", 1, "oops\x1b[2J\r\n", io.EOF),
			want: "ssh host: remote command failed (exit status 1): oops?[2J",
		},
		{
			name: "C1 controls, bytes that are not UTF-8, tabs and bidi overrides too",
			err:  newSSHError("host", 1, "oops\u009b2J\x9b\tx\u202e\n", io.EOF),
			want: "ssh host: remote command failed (exit status 1): oops?2J\uFFFD x?",
		},
		{
			name: "long lines are cut",
			err:  newSSHError("host", 1, strings.Repeat("x", 600)+"\n", io.EOF),
			want: "ssh host: remote command failed (exit status 1): " + strings.Repeat("x", 512) + "...",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error():\n got %q\nwant %q", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Err) {
				t.Errorf("errors.Is(err, err.Err) is false")
			}
		})
	}
}

func TestSSHFailureString(t *testing.T) {
	tests := []struct {
		f    SSHFailure
		want string
	}{
		{Unknown, "failed"},
		{HostKeyUnknown, "host key verification failed"},
		{HostKeyChanged, "host key changed"},
		{AuthRefused, "authentication refused"},
		{ConnectionRefused, "connection refused"},
		{HostUnresolved, "could not resolve host name"},
		{HostUnreachable, "host unreachable"},
		{Timeout, "timed out"},
		{ConnectionClosed, "connection closed"},
		{RemoteCommandFailed, "remote command failed"},
		{SSHFailure(99), "SSHFailure(99)"},
		{SSHFailure(-1), "SSHFailure(-1)"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("SSHFailure(%d).String() = %q, want %q", int(tt.f), got, tt.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "empty", want: ""},
		{name: "small", writes: []string{"a\n", "b"}, want: "a\nb"},
		{name: "exactly full", writes: []string{strings.Repeat("x", stderrTail)}, want: strings.Repeat("x", stderrTail)},
		{
			name:   "overflow drops whole lines from the front",
			writes: []string{"first line\n", strings.Repeat("y", stderrTail-5) + "\n", "last\n"},
			want:   "last\n",
		},
		{
			name:   "one huge write keeps its tail",
			writes: []string{strings.Repeat("z", stderrTail) + "\nend\n"},
			want:   "end\n",
		},
		{
			name:   "many small writes",
			writes: strings.SplitAfter(strings.Repeat("0123456789abcde\n", 4096), "\n"),
			want:   strings.Repeat("0123456789abcde\n", stderrTail/16-1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b tailBuffer
			for _, w := range tt.writes {
				b.Write([]byte(w))
			}
			got := b.String()
			if got != tt.want {
				t.Errorf("String() = %.80q... (%d bytes), want %.80q... (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
			if len(got) > stderrTail {
				t.Errorf("kept %d bytes, more than %d", len(got), stderrTail)
			}
		})
	}
}
