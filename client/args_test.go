package client

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/rpc"
)

func TestSSHArgs(t *testing.T) {
	tests := []struct {
		name    string
		ssh     SSH
		want    []string
		wantErr string // substring of the error; "" for success
	}{
		{
			name: "host only",
			ssh:  SSH{Destination: "backup.example.org"},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "backup.example.org", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "everything",
			ssh: SSH{
				Destination: "zrep@10.0.0.1",
				Port:        2222,
				Identity:    "/etc/zrep/id_ed25519",
				Options:     []string{"Ciphers=aes128-gcm@openssh.com", "ProxyJump=bastion"},
			},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-p", "2222", "-i", "/etc/zrep/id_ed25519", "-o", "Ciphers=aes128-gcm@openssh.com", "-o", "ProxyJump=bastion",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "zrep@10.0.0.1", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "user options come before the defaults, so they win",
			ssh:  SSH{Destination: "host", Options: []string{"BatchMode=no", "ConnectTimeout=5"}},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", "BatchMode=no", "-o", "ConnectTimeout=5",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "host", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "option values may hold spaces, '=' and quotes",
			ssh:  SSH{Destination: "host", Options: []string{`ProxyCommand=ssh -W %h:%p "jump host"`, "SetEnv=A=B"}},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", `ProxyCommand=ssh -W %h:%p "jump host"`, "-o", "SetEnv=A=B",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "host", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "remote command",
			ssh:  SSH{Destination: "host", RemoteCommand: []string{"/opt/zrep/bin/zrep-stdinserver", "serve", "--log-level=debug"}},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "host", "/opt/zrep/bin/zrep-stdinserver", "serve", "--log-level=debug",
			},
		},
		{
			name: "empty remote command means the default",
			ssh:  SSH{Destination: "host", RemoteCommand: []string{}},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "host", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "user with '@' splits at the last '@'",
			ssh:  SSH{Destination: "a@b@host"},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "a@b@host", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "identity starting with '-' is just a file name",
			ssh:  SSH{Destination: "host", Identity: "-key"},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-i", "-key",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "host", "zrep-stdinserver", "serve",
			},
		},
		{
			name: "port 65535",
			ssh:  SSH{Destination: "h", Port: 65535},
			want: []string{
				"-T", "-e", "none", "-x", "-a",
				"-p", "65535",
				"-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "ConnectTimeout=30",
				"--", "h", "zrep-stdinserver", "serve",
			},
		},

		{name: "empty destination", ssh: SSH{}, wantErr: "empty destination"},
		{name: "option injection", ssh: SSH{Destination: "-oProxyCommand=touch /tmp/x"}, wantErr: "whitespace"},
		{name: "leading dash", ssh: SSH{Destination: "-oProxyCommand=id"}, wantErr: "must not start with '-'"},
		{name: "host part with leading dash", ssh: SSH{Destination: "user@-oProxyCommand=id"}, wantErr: "must not start with '-'"},
		{name: "space", ssh: SSH{Destination: "user@host name"}, wantErr: "whitespace"},
		{name: "tab", ssh: SSH{Destination: "host\tx"}, wantErr: "whitespace"},
		{name: "newline", ssh: SSH{Destination: "host\n"}, wantErr: "whitespace"},
		{name: "NUL", ssh: SSH{Destination: "host\x00"}, wantErr: "control character"},
		{name: "DEL", ssh: SSH{Destination: "host\x7f"}, wantErr: "control character"},
		{name: "C1 control", ssh: SSH{Destination: "host\u0085"}, wantErr: "control character"},
		{name: "invalid UTF-8", ssh: SSH{Destination: "host\xff"}, wantErr: "invalid UTF-8"},
		{name: "empty user", ssh: SSH{Destination: "@host"}, wantErr: "empty user"},
		{name: "empty host", ssh: SSH{Destination: "user@"}, wantErr: "empty host"},
		{name: "negative port", ssh: SSH{Destination: "host", Port: -1}, wantErr: "port -1 is out of range"},
		{name: "port too large", ssh: SSH{Destination: "host", Port: 65536}, wantErr: "port 65536 is out of range"},
		{name: "identity with newline", ssh: SSH{Destination: "host", Identity: "key\n"}, wantErr: "control character"},
		{name: "option without '='", ssh: SSH{Destination: "host", Options: []string{"BatchMode"}}, wantErr: `ssh host: option "BatchMode": want Key=Value`},
		{name: "option with empty key", ssh: SSH{Destination: "host", Options: []string{"=yes"}}, wantErr: "empty key"},
		{name: "option key with space", ssh: SSH{Destination: "host", Options: []string{"Batch Mode=yes"}}, wantErr: "letters and digits"},
		{name: "option key that is an option", ssh: SSH{Destination: "host", Options: []string{"-F/tmp/x=y"}}, wantErr: "letters and digits"},
		{name: "option with newline", ssh: SSH{Destination: "host", Options: []string{"ProxyCommand=a\nb"}}, wantErr: "control character"},
		{name: "option with CR", ssh: SSH{Destination: "host", Options: []string{"User=a\r"}}, wantErr: "control character"},
		{name: "empty remote command word", ssh: SSH{Destination: "host", RemoteCommand: []string{"zrep-stdinserver", ""}}, wantErr: "remote command word"},
		{name: "remote command with newline", ssh: SSH{Destination: "host", RemoteCommand: []string{"zrep-stdinserver\nrm"}}, wantErr: "remote command word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ssh.Args()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Args() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Args() returned %q with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Args(): %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Args():\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestSSHSetupTimeout(t *testing.T) {
	tests := []struct {
		name    string
		options []string
		want    time.Duration
	}{
		{"defaults", nil, 3 * time.Minute},
		{"the user's ConnectTimeout", []string{"Ciphers=aes128-ctr", "ConnectTimeout=5"}, 5*time.Second + 150*time.Second},
		{"the first value wins, as in ssh", []string{"connecttimeout=10", "ConnectTimeout=99"}, 10*time.Second + 150*time.Second},
		{"an unusable value leaves ssh's default", []string{"ConnectTimeout=soon"}, 3 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SSH{Destination: "h", Options: tt.options}
			if got := s.SetupTimeout(); got != tt.want {
				t.Fatalf("SetupTimeout = %s, want %s", got, tt.want)
			}
		})
	}
}

// ConfigFor gives an ssh connection's handshake its setup time, and leaves
// other streams and an explicit FirstByteTimeout alone.
func TestConfigFor(t *testing.T) {
	ssh := &sshConn{setup: time.Minute}
	if got := ConfigFor(ssh, rpc.Config{}).FirstByteTimeout; got != time.Minute {
		t.Errorf("ssh: FirstByteTimeout = %s, want 1m", got)
	}
	if got := ConfigFor(ssh, rpc.Config{FirstByteTimeout: time.Second}).FirstByteTimeout; got != time.Second {
		t.Errorf("ssh, explicit: FirstByteTimeout = %s, want 1s", got)
	}
	r, w := io.Pipe()
	defer r.Close()
	defer w.Close()
	if got := ConfigFor(struct {
		io.Reader
		io.WriteCloser
	}{r, w}, rpc.Config{}).FirstByteTimeout; got != 0 {
		t.Errorf("pipe: FirstByteTimeout = %s, want 0", got)
	}
}
