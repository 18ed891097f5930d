package testenv

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHDBin is the sshd StartSSHD runs (Debian's openssh-server). sshd must
// be run by its absolute path, as it re-executes itself for each connection.
const SSHDBin = "/usr/sbin/sshd"

// RequireSSHDEnv is the environment variable that makes tests needing sshd
// fail instead of skipping when it is unusable.
const RequireSSHDEnv = "ZREP_REQUIRE_SSHD"

// privsepDir is the privilege-separation directory sshd refuses to start without.
const privsepDir = "/run/sshd"

// How long StartSSHD waits for sshd to listen, and how often it tries.
const (
	sshdStartTimeout = 10 * time.Second
	sshdPortAttempts = 5
)

// SSHD is a real OpenSSH sshd started for one test.
type SSHD struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Port is the port sshd listens on.
	Port int
	// HostKeyPub is the server's host key, "ssh-ed25519 AAAA...".
	HostKeyPub string
	// KnownHosts is the path of a known_hosts file holding HostKeyPub for [127.0.0.1]:PORT.
	KnownHosts string
	// Dir is the test directory with sshd's configuration, keys and authorized_keys.
	Dir string

	config string
	proc   *sshdProc
}

// StartSSHD starts `sshd -D -e -f CONFIG` on 127.0.0.1 with a free random
// port, its own ed25519 host key, and authorizedKeys (the file's content)
// as its only authorized_keys file. Only public keys are accepted, and only
// for the current user. sshd logs at VERBOSE; the log is printed with t.Log
// if the test fails. StartSSHD returns once the port answers with an SSH
// banner; sshd and whatever sessions it still runs are stopped and reaped in
// t.Cleanup. Without a usable sshd the test skips, or fails when
// ZREP_REQUIRE_SSHD=1. sshd needs /run/sshd, which StartSSHD creates (as
// root; tests run as root in CI).
func StartSSHD(t testing.TB, authorizedKeys string) *SSHD {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshd: current user: %v", err)
	}
	return StartSSHDAs(t, authorizedKeys, u.Username)
}

// StartSSHDAs is StartSSHD for keys of another local user: the sessions
// run as userName (which needs a login shell; sshd runs the forced command
// with it). Only root can start such an sshd.
func StartSSHDAs(t testing.TB, authorizedKeys, userName string) *SSHD {
	t.Helper()
	_, err := os.Stat(SSHDBin)
	Require(t, RequireSSHDEnv, err == nil, SSHDBin+" is not installed (apt-get install openssh-server)")
	err = os.MkdirAll(privsepDir, 0o755)
	Require(t, RequireSSHDEnv, err == nil, fmt.Sprintf("sshd needs %s: %v", privsepDir, err))

	// sshd reads authorized_keys as the user.
	dir := SharedDir(t)
	hostKey, hostPub := writeKey(t, dir, "ssh_host_ed25519_key")
	authFile := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authFile, []byte(authorizedKeys), 0o644); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	s := &SSHD{HostKeyPub: hostPub, Dir: dir}
	for attempt := 1; ; attempt++ {
		s.Port = freePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		config := filepath.Join(dir, "sshd_config")
		writeFile(t, config, sshdConfig(s.Addr, hostKey, authFile, userName))
		p, err := startSSHD(config, s.Addr)
		if err == nil {
			s.config, s.proc = config, p
			t.Cleanup(func() {
				s.proc.stop()
				if t.Failed() {
					t.Logf("sshd log:\n%s", s.proc.log.String())
				}
			})
			break
		}
		p.stop()
		// Someone else may have taken the port between freePort and sshd's bind.
		if attempt < sshdPortAttempts && strings.Contains(p.log.String(), "Address already in use") {
			continue
		}
		t.Fatalf("sshd: %v\nsshd log:\n%s", err, p.log.String())
	}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	writeFile(t, s.KnownHosts, fmt.Sprintf("[127.0.0.1]:%d %s\n", s.Port, hostPub))
	return s
}

// Restart stops sshd and starts it again with the same configuration on
// the same port. With killSessions, the sessions it runs are killed first
// (as a reboot or systemd's default KillMode does); without, they go on
// (KillMode=process, as Debian's ssh.service has it).
func (s *SSHD) Restart(t testing.TB, killSessions bool) {
	t.Helper()
	old := s.proc
	if killSessions {
		old.stop()
	} else {
		_ = old.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-old.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("sshd did not exit on SIGTERM")
		}
	}
	p, err := startSSHD(s.config, s.Addr)
	if err != nil {
		p.stop()
		t.Fatalf("sshd restart: %v\nold log:\n%s\nnew log:\n%s", err, old.log.String(), p.log.String())
	}
	s.proc = p
}

// SSHOptions returns the -o options (each "Key=Value") a client needs for
// this server: its known_hosts only, strict host key checking, only the
// identity given with -i, no host key updates, and only errors logged.
func (s *SSHD) SSHOptions() []string {
	return []string{
		"UserKnownHostsFile=" + quoteOption(s.KnownHosts),
		"StrictHostKeyChecking=yes",
		"IdentitiesOnly=yes",
		"GlobalKnownHostsFile=/dev/null",
		"UpdateHostKeys=no",
		"LogLevel=ERROR",
	}
}

// NewClientKey writes a fresh ed25519 key pair in OpenSSH format into dir,
// the private key with mode 0600 under a new name and the public key next to
// it with ".pub" appended. It returns the private key's path and the public
// key line, "ssh-ed25519 AAAA..." (no comment).
func NewClientKey(t testing.TB, dir string) (privPath, pubLine string) {
	t.Helper()
	f, err := os.CreateTemp(dir, "id_ed25519-*")
	if err != nil {
		t.Fatalf("client key: %v", err)
	}
	privPath = f.Name()
	if err := f.Close(); err != nil {
		t.Fatalf("client key: %v", err)
	}
	_, pubLine = writeKey(t, dir, filepath.Base(privPath))
	return privPath, pubLine
}

// writeKey writes an ed25519 key pair to dir/name (mode 0600) and
// dir/name.pub; it returns the private key's path and the public key line.
func writeKey(t testing.TB, dir, name string) (privPath, pubLine string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "zrep-test")
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	pubLine = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	privPath = filepath.Join(dir, name)
	if err := os.WriteFile(privPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	// WriteFile keeps the mode of an existing file; make sure.
	if err := os.Chmod(privPath, 0o600); err != nil {
		t.Fatalf("key %s: %v", name, err)
	}
	writeFile(t, privPath+".pub", pubLine+"\n")
	return privPath, pubLine
}

// sshdConfig is the whole configuration: nothing comes from /etc/ssh.
func sshdConfig(addr, hostKey, authorizedKeys, userName string) string {
	return strings.Join([]string{
		"ListenAddress " + addr,
		"HostKey " + quoteOption(hostKey),
		"AuthorizedKeysFile " + quoteOption(authorizedKeys),
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PidFile none",
		"AllowUsers " + userName,
		"LogLevel VERBOSE",
		// Tests open many sessions at once: drop none of them.
		"MaxStartups 200",
		"MaxSessions 200",
		"",
	}, "\n")
}

// quoteOption double-quotes a path for ssh_config or sshd_config if it
// holds whitespace.
func quoteOption(path string) string {
	if strings.ContainsAny(path, " \t") {
		return `"` + path + `"`
	}
	return path
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// sshdProc is a running sshd.
type sshdProc struct {
	cmd    *exec.Cmd
	log    *SyncBuffer
	exited chan struct{} // closed when cmd.Wait returned
}

// startSSHD starts sshd and waits until addr answers with an SSH banner.
// The returned sshdProc is never nil: stop it even on error, and read its log.
func startSSHD(config, addr string) (*sshdProc, error) {
	p := &sshdProc{log: &SyncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(SSHDBin, "-D", "-e", "-f", config)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Sessions inherit stderr; do not let them hold up Wait.
	p.cmd.WaitDelay = 2 * time.Second
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		close(p.exited)
		p.cmd = nil
		return p, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(sshdStartTimeout)
	for {
		select {
		case <-p.exited:
			return p, fmt.Errorf("sshd exited at startup: %v", p.cmd.ProcessState)
		default:
		}
		err := readBanner(addr)
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("sshd does not answer on %s after %v: %v", addr, sshdStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readBanner connects to addr and reads an SSH protocol banner.
func readBanner(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("%s answers %q, not an SSH banner", addr, line)
	}
	return nil
}

// stop ends sshd and the sessions it still runs, and reaps sshd. Sessions
// normally end with their clients; those left after a second are killed,
// deepest processes first so that their parents reap them.
func (p *sshdProc) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return // reaped: its pid may belong to someone else by now
	default:
	}
	pid := p.cmd.Process.Pid
	for deadline := time.Now().Add(time.Second); ; {
		left := descendants(pid)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i := len(left) - 1; i >= 0; i-- {
				_ = syscall.Kill(left[i], syscall.SIGKILL)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// descendants returns the pids of pid's descendants, parents before their
// children, read from /proc (none where there is no /proc).
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(child); ok {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		out = append(out, children[next]...)
		queue = append(queue, children[next]...)
	}
	return out
}

// parentPID reads the parent pid from /proc/PID/stat. The command name in
// parentheses may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}
