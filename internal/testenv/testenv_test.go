package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	const env = "ZREP_TESTENV_REQUIRE_TEST"
	tests := []struct {
		name        string
		env         string
		ok          bool
		wantSkip    bool
		wantFail    bool
		wantMessage string
	}{
		{name: "met", env: "", ok: true},
		{name: "met and required", env: "1", ok: true},
		{name: "missing", env: "", ok: false, wantSkip: true, wantMessage: "frob is missing (set ZREP_TESTENV_REQUIRE_TEST=1 to make this a failure)"},
		{name: "missing, env not 1", env: "yes", ok: false, wantSkip: true, wantMessage: "frob is missing (set ZREP_TESTENV_REQUIRE_TEST=1 to make this a failure)"},
		{name: "missing and required", env: "1", ok: false, wantFail: true, wantMessage: "ZREP_TESTENV_REQUIRE_TEST=1 but frob is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(env, tt.env)
			r := &recorder{TB: t}
			Require(r, env, tt.ok, "frob is missing")
			if r.skipped != tt.wantSkip || r.failed != tt.wantFail || r.msg != tt.wantMessage {
				t.Errorf("skipped=%v failed=%v msg=%q, want skipped=%v failed=%v msg=%q",
					r.skipped, r.failed, r.msg, tt.wantSkip, tt.wantFail, tt.wantMessage)
			}
		})
	}
}

func TestNewClientKey(t *testing.T) {
	dir := t.TempDir()
	priv1, pub1 := NewClientKey(t, dir)
	priv2, pub2 := NewClientKey(t, dir)
	if priv1 == priv2 || pub1 == pub2 {
		t.Fatalf("two keys are the same: %s %s", priv1, priv2)
	}
	for _, k := range []struct{ priv, pub string }{{priv1, pub1}, {priv2, pub2}} {
		fi, err := os.Stat(k.priv)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", k.priv, fi.Mode().Perm())
		}
		if !strings.HasPrefix(k.pub, "ssh-ed25519 AAAA") || strings.Count(k.pub, " ") != 1 {
			t.Errorf("public key line %q, want \"ssh-ed25519 AAAA...\" without comment", k.pub)
		}
		if b, err := os.ReadFile(k.priv + ".pub"); err != nil || string(b) != k.pub+"\n" {
			t.Errorf("%s.pub = %q, %v; want %q", k.priv, b, err, k.pub+"\n")
		}
		// OpenSSH itself must read the private key and derive the same public key.
		_, err = exec.LookPath("ssh-keygen")
		Require(t, RequireSSHDEnv, err == nil, "ssh-keygen is not installed")
		out, err := exec.Command("ssh-keygen", "-y", "-f", k.priv).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen -y -f %s: %v: %s", k.priv, err, out)
		}
		if got := strings.Join(strings.Fields(string(out))[:2], " "); got != k.pub {
			t.Errorf("ssh-keygen -y: %q, want %q", got, k.pub)
		}
	}
}

func TestStartSSHD(t *testing.T) {
	_, err := exec.LookPath("ssh")
	Require(t, RequireSSHDEnv, err == nil, "ssh is not installed")
	var addr string
	t.Run("session", func(t *testing.T) {
		dir := t.TempDir()
		priv, pub := NewClientKey(t, dir)
		s := StartSSHD(t, `command="echo forced $SSH_ORIGINAL_COMMAND",restrict `+pub+"\n")
		addr = s.Addr
		if s.Addr != fmt.Sprintf("127.0.0.1:%d", s.Port) {
			t.Errorf("Addr %q, Port %d", s.Addr, s.Port)
		}
		kh, err := os.ReadFile(s.KnownHosts)
		if want := fmt.Sprintf("[127.0.0.1]:%d %s\n", s.Port, s.HostKeyPub); err != nil || string(kh) != want {
			t.Errorf("known_hosts = %q, %v; want %q", kh, err, want)
		}
		args := []string{"-T", "-p", fmt.Sprint(s.Port), "-i", priv, "-o", "BatchMode=yes"}
		for _, o := range s.SSHOptions() {
			args = append(args, "-o", o)
		}
		args = append(args, "--", "127.0.0.1", "hello")
		cmd := exec.Command("ssh", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ssh %q: %v\nstderr: %s", args, err, stderr.String())
		}
		if got, want := string(out), "forced hello\n"; got != want {
			t.Errorf("ssh output %q, want %q", got, want)
		}
		if stderr.Len() != 0 {
			t.Errorf("ssh stderr %q, want nothing", stderr.String())
		}
	})
	if addr == "" {
		return // skipped
	}
	// Cleanup stopped sshd: the port no longer answers.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the test ended", addr)
	}
}

func TestStartSSHDRefusesUnknownKeys(t *testing.T) {
	_, err := exec.LookPath("ssh")
	Require(t, RequireSSHDEnv, err == nil, "ssh is not installed")
	dir := t.TempDir()
	_, authorized := NewClientKey(t, dir)
	other, _ := NewClientKey(t, dir)
	s := StartSSHD(t, authorized+"\n")
	args := []string{"-T", "-p", fmt.Sprint(s.Port), "-i", other, "-o", "BatchMode=yes"}
	for _, o := range s.SSHOptions() {
		args = append(args, "-o", o)
	}
	args = append(args, "--", "127.0.0.1", "true")
	out, err := exec.Command("ssh", args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Errorf("ssh with an unauthorized key: %v: %s; want Permission denied (publickey)", err, out)
	}
}
