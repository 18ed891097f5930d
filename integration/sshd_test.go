package integration

// Tests of `zrep-stdinserver sshd`, the embedded SSH server, from the
// outside: the built binary, the real OpenSSH client, and
// golang.org/x/crypto/ssh clients for what OpenSSH cannot send (crafted
// requests, forwarding channels on demand).
//
// Most of them need no zfs: their forced command serves a policy whose
// only root lies in a pool that does not exist, with --zfs-bin pointing at
// a shell script that prints zfs-fuse's usage text when run without
// arguments and lists nothing otherwise. They need the ssh client and
// ssh-keygen, and skip without them unless ZREP_REQUIRE_SSHD=1.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/rpc"
)

// sshDest is the destination for the embedded sshd, which ignores the user.
const sshDest = "backup@127.0.0.1"

// requireSSHClient skips (or fails, with ZREP_REQUIRE_SSHD=1) without the
// OpenSSH client tools.
func requireSSHClient(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ssh", "ssh-keygen"} {
		_, err := exec.LookPath(bin)
		testenv.Require(t, testenv.RequireSSHDEnv, err == nil, bin+" is not installed (apt-get install openssh-client)")
	}
}

// sshdFixture is a directory with a policy, a fake zfs and an
// authorized_keys file for the embedded sshd.
type sshdFixture struct {
	dir    string
	policy string
	zfs    string // the fake zfs: lists nothing, at once
	ak     string
}

func newSSHDFixture(t *testing.T) *sshdFixture {
	t.Helper()
	requireSSHClient(t)
	dir := t.TempDir()
	f := &sshdFixture{dir: dir, policy: filepath.Join(dir, "policy.yaml"), ak: filepath.Join(dir, "authorized_keys")}
	policy := fmt.Sprintf("identities:\n  %s:\n    datasets:\n      \"zrepnopool/data<\": true\n", identity)
	if err := os.WriteFile(f.policy, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	f.zfs = f.fakeZFS(t, "zfs", "")
	return f
}

// fakeZFS writes a stand-in for zfs named name: without arguments it
// prints zfs-fuse's usage text (feature detection), otherwise it appends
// its pid to name.calls, runs the shell code then, and lists nothing.
func (f *sshdFixture) fakeZFS(t *testing.T, name, then string) string {
	t.Helper()
	usage, err := filepath.Abs(filepath.Join("..", "zfs", "testdata", "usage-zfs-fuse-0.7.txt"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, name)
	script := fmt.Sprintf("#!/bin/sh\nif [ $# -eq 0 ]; then cat '%s' >&2; exit 2; fi\necho $$ >> '%s.calls'\n%s\nexit 0\n", usage, path, then)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// zfsCalls returns the pids of the fake zfs's runs so far.
func zfsCalls(path string) []int {
	b, _ := os.ReadFile(path + ".calls")
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (f *sshdFixture) newKey(t *testing.T) (priv, pub string) {
	t.Helper()
	return testenv.NewClientKey(t, f.dir)
}

// forced is the authorized_keys line that forces serve with zfsBin for
// pub; options, when not empty, end with a comma.
func (f *sshdFixture) forced(options, zfsBin, pub string) string {
	command := fmt.Sprintf("%s serve --policy %s --identity %s --zfs-bin %s", binary, f.policy, identity, zfsBin)
	return fmt.Sprintf("%scommand=%q %s zrep-test\n", options, command, pub)
}

func (f *sshdFixture) writeKeys(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(f.ak, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs the embedded sshd on f's authorized_keys with a generated host key.
func (f *sshdFixture) start(t *testing.T) *sshdProc {
	t.Helper()
	dir, err := os.MkdirTemp(f.dir, "sshd-")
	if err != nil {
		t.Fatal(err)
	}
	return startSSHDProc(t, dir, f.ak, filepath.Join(dir, "host_key"), "--generate-host-key")
}

// sshdProc is a running `zrep-stdinserver sshd`.
type sshdProc struct {
	cmd        *exec.Cmd
	exited     chan struct{}       // closed once cmd.Wait returned
	output     *testenv.SyncBuffer // its stdout and stderr
	addr       string              // 127.0.0.1:PORT, from its log
	port       int
	log        string
	hostKey    string
	hostKeyFP  string // as logged at start
	hostPub    gossh.PublicKey
	knownHosts string
	sshOptions []string // -o options for the OpenSSH client
}

// startSSHDProc runs `zrep-stdinserver sshd --listen 127.0.0.1:0` with its
// log in dir, and waits until it logs the address it listens on. It is
// stopped with SIGINT when the test ends.
func startSSHDProc(t *testing.T, dir, authorizedKeys, hostKey string, extra ...string) *sshdProc {
	t.Helper()
	p := &sshdProc{exited: make(chan struct{}), output: &testenv.SyncBuffer{}, log: filepath.Join(dir, "sshd.log"), hostKey: hostKey}
	argv := append([]string{"sshd", "--listen", "127.0.0.1:0", "--host-key", hostKey, "--authorized-keys", authorizedKeys,
		"--log-file", p.log, "--log-level", "debug"}, extra...)
	p.cmd = exec.Command(binary, argv...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("embedded sshd log (%s):\n%s\noutput:\n%s", p.log, b, p.output.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if es := p.entries("embedded sshd listening"); len(es) > 0 {
			p.addr, p.hostKeyFP = es[0].str("addr"), es[0].str("host_key")
			break
		}
		if !p.running() {
			t.Fatalf("zrep-stdinserver %s exited at start: %v\n%s", strings.Join(argv, " "), p.cmd.ProcessState, p.output.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the embedded sshd logged no address in 20 s\n%s", p.output.String())
		}
	}
	_, port, err := net.SplitHostPort(p.addr)
	if err != nil {
		t.Fatalf("logged address %q: %v", p.addr, err)
	}
	p.port, _ = strconv.Atoi(port)
	pubText, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if p.hostPub, _, _, _, err = gossh.ParseAuthorizedKey(pubText); err != nil {
		t.Fatalf("%s.pub: %v", hostKey, err)
	}
	p.knownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s\n", p.port, strings.TrimSpace(string(pubText)))
	if err := os.WriteFile(p.knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	p.sshOptions = []string{"UserKnownHostsFile=" + p.knownHosts, "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
		"GlobalKnownHostsFile=/dev/null", "UpdateHostKeys=no", "LogLevel=ERROR"}
	return p
}

func (p *sshdProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGINT, waits (killing it after 10 s) and returns the exit status.
func (p *sshdProc) stop(t *testing.T) int {
	t.Helper()
	if p.running() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("the embedded sshd ignored SIGINT for 10 s")
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	return p.cmd.ProcessState.ExitCode()
}

// zrepFlags are ls's and pull's flags to reach p with key.
func (p *sshdProc) zrepFlags(key string) []string {
	return sshFlags(sshDest, p.port, key, p.sshOptions)
}

// sshArgs are the OpenSSH client's arguments for p with key, then extra.
func (p *sshdProc) sshArgs(key string, extra ...string) []string {
	a := []string{"-p", strconv.Itoa(p.port), "-i", key}
	for _, o := range append(p.sshOptions, "BatchMode=yes", "ConnectTimeout=10") {
		a = append(a, "-o", o)
	}
	return append(a, extra...)
}

// runSSH runs the OpenSSH client (stdin /dev/null) for at most timeout;
// a client still running then is killed and reported with code -1.
func runSSH(t *testing.T, timeout time.Duration, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code = -1
		r.stderr += fmt.Sprintf("\n[killed after %s]", timeout)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("ssh %v: %v", argv, err)
	}
	return r
}

// fingerprint is ssh-keygen's SHA256 fingerprint of a key file.
func fingerprint(t *testing.T, path string) string {
	t.Helper()
	out := strings.Fields(testenv.Run(t, "ssh-keygen", "-lf", path))
	if len(out) < 2 || !strings.HasPrefix(out[1], "SHA256:") {
		t.Fatalf("ssh-keygen -lf %s: %q", path, out)
	}
	return out[1]
}

// logEntry is one line of the sshd's console log:
// TIME <TAB> LEVEL <TAB> [LOGGER <TAB>] MESSAGE [<TAB> {JSON FIELDS}].
type logEntry struct {
	level, msg string
	fields     map[string]any
	raw        string
}

func (e logEntry) str(key string) string {
	v, ok := e.fields[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// entries returns the log entries with message msg (all when msg is "").
func (p *sshdProc) entries(msg string) []logEntry {
	b, _ := os.ReadFile(p.log)
	var out []logEntry
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.Split(line, "\t")
		if len(parts) < 3 {
			continue
		}
		e := logEntry{level: parts[1], msg: parts[len(parts)-1], raw: line}
		if last := parts[len(parts)-1]; strings.HasPrefix(last, "{") {
			if json.Unmarshal([]byte(last), &e.fields) != nil {
				continue // being written
			}
			e.msg = parts[len(parts)-2]
		}
		if msg == "" || e.msg == msg {
			out = append(out, e)
		}
	}
	return out
}

// entriesFor returns the entries with message msg for the key fingerprint fp.
func (p *sshdProc) entriesFor(msg, fp string) []logEntry {
	var out []logEntry
	for _, e := range p.entries(msg) {
		if e.str("fingerprint") == fp {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry waits up to 20 s for an entry with message msg for fp.
func (p *sshdProc) waitEntry(t *testing.T, msg, fp string) logEntry {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if es := p.entriesFor(msg, fp); len(es) > 0 {
			return es[0]
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("no %q log entry for %s in 20 s; log:\n%s", msg, fp, b)
		}
	}
}

// checkNoPanic fails the test if the sshd logged a panic or wrote one.
func (p *sshdProc) checkNoPanic(t *testing.T) {
	t.Helper()
	b, _ := os.ReadFile(p.log)
	if strings.Contains(string(b), "panic") || strings.Contains(p.output.String(), "panic") {
		t.Errorf("the embedded sshd panicked:\n%s\n%s", b, p.output.String())
	}
}

// dial connects with golang.org/x/crypto/ssh, checking p's host key.
func (p *sshdProc) dial(auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", p.addr, &gossh.ClientConfig{
		User:            "backup",
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(p.hostPub),
		Timeout:         10 * time.Second,
	})
}

func (p *sshdProc) mustDial(t *testing.T, key string) *gossh.Client {
	t.Helper()
	c, err := p.dial(keyAuth(t, key))
	if err != nil {
		t.Fatalf("dial with %s: %v", key, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func keyAuth(t *testing.T, path string) gossh.AuthMethod {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.PublicKeys(signer)
}

// sessionPipes is a session's stdout and stdin as one stream.
type sessionPipes struct {
	io.Reader
	io.WriteCloser
}

// openSource execs command on s and starts a zrep session over it.
func openSource(t *testing.T, s *gossh.Session, command string) (*client.Source, *testenv.SyncBuffer) {
	t.Helper()
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testenv.SyncBuffer{}
	s.Stderr = stderr
	if err := s.Start(command); err != nil {
		t.Fatalf("exec %q: %v", command, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := client.Connect(ctx, sessionPipes{stdout, stdin}, rpc.Config{SoftwareVersion: "integration-test"})
	if err != nil {
		t.Fatalf("exec %q: no zrep session: %v (stderr %q)", command, err, stderr.String())
	}
	return src, stderr
}

// listAndClose lists through src, closes the session in order and checks
// that s exits 0.
func listAndClose(t *testing.T, s *gossh.Session, src *client.Source, stderr *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := src.ListFilesystems(ctx, true); err != nil {
		t.Fatalf("ListFilesystems: %v (stderr %q)", err, stderr.String())
	}
	if err := src.Close(); err != nil {
		t.Fatalf("closing the session: %v", err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("session exit: %v (stderr %q)", err, stderr.String())
	}
}

// sshProcesses returns the pids of running ssh clients whose command line
// mentions key.
func sshProcesses(key string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(argv[0]) == "ssh" && strings.Contains(string(b), "\x00"+key+"\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processGone waits up to 20 s for pid to end (or become a zombie).
func processGone(pid int) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && bytes.HasPrefix(b[i+1:], []byte(" Z")) {
			return true
		}
	}
	return false
}

// 1. Keys without a forced command, and unknown keys, are refused at
// authentication, and the log says why.
func TestEmbeddedSSHDRefusesKeysWithoutForcedCommand(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	noCommand, noCommandPub := f.newKey(t)
	emptyCommand, emptyCommandPub := f.newKey(t)
	unknown, _ := f.newKey(t)
	f.writeKeys(t,
		f.forced("restrict,", f.zfs, goodPub),
		"restrict,no-pty "+noCommandPub+" no-command\n",
		`command="" `+emptyCommandPub+" empty-command\n")
	p := f.start(t)

	for _, tc := range []struct {
		name, key, why string
	}{
		{"no command=", noCommand, `authorized_keys line 2 has no command="... serve ..." option`},
		{"empty command=", emptyCommand, `authorized_keys line 3 has no command="... serve ..." option`},
		{"unknown key", unknown, "key not in authorized_keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSSH(t, 30*time.Second, p.sshArgs(tc.key, "-T", sshDest, "zrep-stdinserver", "serve")...)
			if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
				t.Fatalf("ssh: exit %d, want 255 with Permission denied\n%s", r.code, r.stderr)
			}
			fp := fingerprint(t, tc.key+".pub")
			e := p.waitEntry(t, "key refused", fp)
			if !strings.Contains(e.str("error"), tc.why) || !strings.HasPrefix(e.str("remote"), "127.0.0.1:") {
				t.Errorf("refusal logged as %s, want the reason %q and the remote address", e.raw, tc.why)
			}
			if n := len(p.entriesFor("session start", fp)); n != 0 {
				t.Errorf("%d sessions started for the refused key", n)
			}
		})
	}
	// The server itself works: the good key lists.
	mustZrep(t, args("ls", p.zrepFlags(good), "--json")...)
}

// A key whose forced command is not a usable serve logs in, but its
// session runs nothing and says why.
func TestEmbeddedSSHDRefusesBadForcedCommands(t *testing.T) {
	f := newSSHDFixture(t)
	canary := filepath.Join(f.dir, "canary")
	notServe, notServePub := f.newKey(t)
	badFlag, badFlagPub := f.newKey(t)
	nobody, nobodyPub := f.newKey(t)
	f.writeKeys(t,
		fmt.Sprintf("command=%q %s\n", "touch "+canary, notServePub),
		fmt.Sprintf("command=%q %s\n", binary+" serve --policy "+f.policy+" --identity backup1 --bogus", badFlagPub),
		fmt.Sprintf("command=%q %s\n", binary+" serve --policy "+f.policy+" --identity nobody", nobodyPub))
	p := f.start(t)
	for _, tc := range []struct {
		name, key string
		stderr    []string
	}{
		{"not serve", notServe, []string{"zrep: session refused: authorized_keys line 1: the forced command is not `zrep-stdinserver serve ...`"}},
		{"unknown serve flag", badFlag, []string{"zrep: session refused: authorized_keys line 2: serve flags: unknown flag: --bogus"}},
		{"unknown identity", nobody, []string{"zrep: cannot serve: ", `unknown identity "nobody"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSSH(t, 30*time.Second, p.sshArgs(tc.key, "-T", sshDest, "zrep-stdinserver", "serve")...)
			for _, want := range tc.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("ssh: stderr %q, want %q", r.stderr, want)
				}
			}
			if r.stdout != "" {
				t.Errorf("ssh: stdout %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(canary); err == nil {
				t.Fatal("the forced command ran")
			}
			// serve exits ExitConfig (2) for unusable flags or identity,
			// and server/exit.go says an embedded session exits the same.
			t.Run("exit status", func(t *testing.T) {
				if r.code != 2 {
					t.Errorf("ssh: exit %d, want 2\n%s", r.code, r.stderr)
				}
			})
		})
	}
}

// 2. Passwords and keyboard-interactive are not even offered.
func TestEmbeddedSSHDRefusesPasswordAndKeyboardInteractive(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("", f.zfs, goodPub))
	p := f.start(t)

	r := runSSH(t, 30*time.Second, p.sshArgs(good, "-o", "PreferredAuthentications=password,keyboard-interactive",
		"-o", "PubkeyAuthentication=no", "-T", sshDest, "true")...)
	if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
		t.Errorf("ssh with password and keyboard-interactive: exit %d, want 255 with Permission denied (publickey)\n%s", r.code, r.stderr)
	}

	prompted := false
	for name, auth := range map[string][]gossh.AuthMethod{
		"password": {gossh.Password("hunter2")},
		"keyboard-interactive": {gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			prompted = true
			return []string{"hunter2"}, nil
		})},
		"both": {gossh.Password("hunter2"), gossh.RetryableAuthMethod(gossh.PasswordCallback(func() (string, error) { return "x", nil }), 3)},
	} {
		c, err := p.dial(auth...)
		if err == nil {
			_ = c.Close()
			t.Errorf("x/crypto %s: logged in", name)
			continue
		}
		if !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("x/crypto %s: %v, want an authentication failure", name, err)
		}
	}
	if prompted {
		t.Error("the server sent a keyboard-interactive challenge")
	}
	if n := len(p.entries("session start")); n != 0 {
		t.Errorf("%d sessions started", n)
	}
}

// 3. Port forwarding either way and agent forwarding are refused.
func TestEmbeddedSSHDRefusesForwarding(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("", f.zfs, goodPub))
	p := f.start(t)
	target := testenv.NewCountingListener(t)

	t.Run("remote forwarding with OpenSSH -R", func(t *testing.T) {
		r := runSSH(t, 30*time.Second, p.sshArgs(good, "-N", "-R", "0:127.0.0.1:22", "-o", "ExitOnForwardFailure=yes", sshDest)...)
		if r.code != 255 || !strings.Contains(r.stderr, "remote port forwarding failed") {
			t.Errorf("ssh -R: exit %d, want 255 with a forwarding failure\n%s", r.code, r.stderr)
		}
	})

	t.Run("local forwarding with OpenSSH -L", func(t *testing.T) {
		lport := freePort(t)
		var stderr testenv.SyncBuffer
		// LogLevel=INFO comes first, so it wins: ssh reports refused channels at INFO.
		argv := append([]string{"-o", "LogLevel=INFO"}, p.sshArgs(good, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:%s", lport, target.Addr()), sshDest)...)
		cmd := exec.Command("ssh", argv...)
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		waitPort(t, lport)
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(c)
		if len(got) != 0 {
			t.Errorf("read %q through the forwarding", got)
		}
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(stderr.String(), "open failed") && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(stderr.String(), "open failed") {
			t.Errorf("ssh -L: stderr %q, want the channel refusal", stderr.String())
		}
	})

	t.Run("x/crypto", func(t *testing.T) {
		c := p.mustDial(t, good)
		if conn, err := c.Dial("tcp", target.Addr().String()); err == nil {
			_ = conn.Close()
			t.Error("direct-tcpip (local forwarding) opened")
		}
		if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
			_ = l.Close()
			t.Error("tcpip-forward (remote forwarding) accepted")
		}
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil); err != nil || ok {
			t.Errorf("agent forwarding request: ok=%v err=%v, want a refusal", ok, err)
		}
		if ch, _, err := c.OpenChannel("auth-agent@openssh.com", nil); err == nil {
			_ = ch.Close()
			t.Error("an agent channel opened")
		}
		// The session is still good for what it is for.
		src, stderr := openSource(t, s, "zrep-stdinserver serve")
		listAndClose(t, s, src, stderr)
	})

	if n := target.Count(); n != 0 {
		t.Errorf("the forwarding target got %d connections", n)
	}
}

// craftedPtyReq is a pty-req payload whose TERM string claims 0xFFFFFFFE
// bytes. gliderlabs/ssh v0.3.8 checks the length in uint32 arithmetic,
// which wraps, and then slices in[4:2]: the panic kills the process unless
// the request is refused before gliderlabs parses it.
func craftedPtyReq() []byte {
	p := []byte{0xFF, 0xFF, 0xFF, 0xFE} // the TERM string's length
	p = append(p, "xterm"...)
	p = append(p, 0, 0, 0, 80, 0, 0, 0, 24)   // columns, rows
	p = append(p, 0, 0, 2, 128, 0, 0, 1, 224) // width, height in pixels
	return append(p, 0, 0, 0, 0)              // no terminal modes
}

// 4. PTYs, shells, subsystems and environment requests are refused; the
// crafted pty-req that crashes gliderlabs/ssh v0.3.8 gets a plain refusal.
func TestEmbeddedSSHDRefusesPTYAndNonExecRequests(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("", f.zfs, goodPub))
	p := f.start(t)

	c := p.mustDial(t, good)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.SendRequest("pty-req", true, craftedPtyReq()); err != nil || ok {
		t.Fatalf("crafted pty-req: ok=%v err=%v, want a refusal (an error means the connection died)", ok, err)
	}
	if !p.running() {
		t.Fatalf("the embedded sshd died on the crafted pty-req:\n%s", p.output.String())
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{gossh.ECHO: 0}); err == nil {
		t.Error("RequestPty succeeded")
	}
	if err := s.Shell(); err == nil {
		t.Error("shell started")
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem started")
	}
	if err := s.Setenv("LD_PRELOAD", "/tmp/evil.so"); err == nil {
		t.Error("env accepted")
	}
	for _, typ := range []string{"x11-req", "window-change", "auth-agent-req@openssh.com", "nonsense@example.com"} {
		if ok, err := s.SendRequest(typ, true, []byte{0, 0, 0, 0}); err != nil || ok {
			t.Errorf("%s: ok=%v err=%v, want a refusal", typ, ok, err)
		}
	}
	// After all that, the same session still runs the forced serve.
	src, stderr := openSource(t, s, "/bin/bash -i")
	listAndClose(t, s, src, stderr)

	// OpenSSH insisting on a terminal is told no, which -tt makes fatal.
	r := runSSH(t, 30*time.Second, p.sshArgs(good, "-tt", sshDest, "zrep-stdinserver", "serve")...)
	if !strings.Contains(r.stderr, "PTY allocation request failed") || r.code != 255 {
		t.Errorf("ssh -tt: exit %d, want 255 with the pty refused\n%s", r.code, r.stderr)
	}

	// The server is still there and serves other clients.
	if !p.running() {
		t.Fatalf("the embedded sshd exited:\n%s", p.output.String())
	}
	mustZrep(t, args("ls", p.zrepFlags(good))...)
	p.checkNoPanic(t)
}

// 5. Whatever the client asks to run, the forced serve runs, and the
// requested command is only logged.
func TestEmbeddedSSHDForcedCommandWins(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("restrict,", f.zfs, goodPub))
	p := f.start(t)
	fp := fingerprint(t, good+".pub")
	canary := filepath.Join(f.dir, "canary")
	c := p.mustDial(t, good)

	commands := []string{"rm -rf /", "echo hi", "touch " + canary + "; echo hi", "/bin/sh -c id", ""}
	var handshakeOnStderr bool
	for _, command := range commands {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		s.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: zrep\r\n\r\n")
		s.Stdout, s.Stderr = &stdout, &stderr
		err = s.Run(command)
		_ = s.Close()
		var ee *gossh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
			t.Errorf("exec %q with garbage: %v, want exit status 1", command, err)
		}
		if stdout.Len() != 0 {
			t.Errorf("exec %q: stdout %q, want nothing", command, stdout.String())
		}
		if strings.Contains(stderr.String(), "hi\n") {
			t.Errorf("exec %q: the command ran: stderr %q", command, stderr.String())
		}
		handshakeOnStderr = strings.Contains(stderr.String(), "handshake")
	}
	if _, err := os.Stat(canary); err == nil {
		t.Error("the requested command ran: the canary exists")
	}

	// A real zrep client gets a zrep session whatever it asked for.
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, stderr := openSource(t, s, "echo hi")
	listAndClose(t, s, src, stderr)

	starts := p.entriesFor("session start", fp)
	if len(starts) != len(commands)+1 {
		t.Fatalf("%d session start entries, want %d", len(starts), len(commands)+1)
	}
	for i, want := range append(commands, "echo hi") {
		if e := starts[i]; e.str("requested_command") != want || e.str("identity") != identity {
			t.Errorf("session %d logged as %s, want requested_command %q and identity %s", i, e.raw, want, identity)
		}
	}
	ends := p.entriesFor("session end", fp)
	if len(ends) != len(commands)+1 {
		t.Fatalf("%d session end entries, want %d", len(ends), len(commands)+1)
	}
	for i, e := range ends {
		want := "1"
		if i == len(commands) {
			want = "0"
		}
		if e.str("exit_status") != want || (want == "1" && !strings.Contains(e.str("reason"), "handshake")) {
			t.Errorf("session %d ended as %s, want exit_status %s (and the handshake failure)", i, e.raw, want)
		}
	}
	t.Run("the handshake error reaches stderr", func(t *testing.T) {
		if !handshakeOnStderr {
			t.Error("no session's stderr mentions the handshake failure")
		}
	})
}

// 6. from="..." is matched against the client's address.
func TestEmbeddedSSHDFrom(t *testing.T) {
	f := newSSHDFixture(t)
	tests := []struct {
		from    string
		allowed bool
		key     string
	}{
		{from: "10.9.9.9"},
		{from: "127.0.0.*", allowed: true},
		{from: "127.0.0.0/8", allowed: true},
		{from: "!127.0.0.1,*"},
		{from: "::1"},
		{from: "10.9.9.9,127.0.0.1", allowed: true},
	}
	var lines []string
	for i := range tests {
		var pub string
		tests[i].key, pub = f.newKey(t)
		lines = append(lines, f.forced(fmt.Sprintf("from=%q,", tests[i].from), f.zfs, pub))
	}
	f.writeKeys(t, lines...)
	p := f.start(t)
	for _, tc := range tests {
		t.Run(tc.from, func(t *testing.T) {
			fp := fingerprint(t, tc.key+".pub")
			if tc.allowed {
				mustZrep(t, args("ls", p.zrepFlags(tc.key))...)
				if len(p.entriesFor("session start", fp)) != 1 {
					t.Errorf("no session logged for %s", fp)
				}
				return
			}
			r := runSSH(t, 30*time.Second, p.sshArgs(tc.key, "-T", sshDest, "zrep-stdinserver", "serve")...)
			if r.code != 255 || !strings.Contains(r.stderr, "Permission denied (publickey)") {
				t.Fatalf("ssh: exit %d, want 255 with Permission denied\n%s", r.code, r.stderr)
			}
			e := p.waitEntry(t, "key refused: client address does not match from=", fp)
			if e.str("from") != tc.from || !strings.HasPrefix(e.str("remote"), "127.0.0.1:") {
				t.Errorf("refusal logged as %s, want from=%q and the remote address", e.raw, tc.from)
			}
		})
	}
}

// The embedded sshd grants a from="..." key exactly what OpenSSH's sshd
// grants it, reading the same authorized_keys.
func TestEmbeddedSSHDFromMatchesOpenSSH(t *testing.T) {
	f := newSSHDFixture(t)
	// The only divergence allowed is in the safe direction: sshd also
	// parses these legacy IPv4 spellings, the embedded server refuses them.
	stricter := map[string]string{
		"127.1":      "sshd parses the short form as 127.0.0.1",
		"127.0.0.01": "sshd parses the zero-padded form",
	}
	patterns := []string{"127.0.0.1", "10.9.9.9", "127.0.0.*", "127.0.0.?", "127.0.0.0/8", "0.0.0.0/0", "!127.0.0.1,*", "*,!127.0.0.0/8",
		"!10.0.0.0/8,127.0.0.1", "garbage,127.0.0.1", "127.0.0.0/8x,*", "::1", "localhost", "127.0.0.[1]",
		"", "127.0.0.1/8", "127.0.0.1,", "!,*", "127.0.0.0/33,*", "::ffff:127.0.0.0/104", "127.1", "127.0.0.01"}
	keys := make([]string, len(patterns))
	var content strings.Builder
	for i, pattern := range patterns {
		var pub string
		keys[i], pub = f.newKey(t)
		content.WriteString(f.forced(fmt.Sprintf("from=%q,", pattern), f.zfs, pub))
	}
	f.writeKeys(t, content.String())
	openssh := testenv.StartSSHD(t, content.String())
	p := f.start(t)
	for i, pattern := range patterns {
		t.Run(fmt.Sprintf("%q", pattern), func(t *testing.T) {
			o := []string{"-p", strconv.Itoa(openssh.Port), "-i", keys[i], "-o", "BatchMode=yes"}
			for _, opt := range openssh.SSHOptions() {
				o = append(o, "-o", opt)
			}
			ro := runSSH(t, 30*time.Second, append(o, "-T", "-n", currentUser(t)+"@127.0.0.1", "true")...)
			re := runSSH(t, 30*time.Second, p.sshArgs(keys[i], "-T", "-n", sshDest, "true")...)
			sshdAllows, embeddedAllows := ro.code != 255, re.code != 255
			if sshdAllows && ro.code != 1 || embeddedAllows && re.code != 1 {
				t.Errorf("an accepted session should run serve, which fails on EOF: OpenSSH exit %d, embedded exit %d\n%s\n%s", ro.code, re.code, ro.stderr, re.stderr)
			}
			if sshdAllows == embeddedAllows {
				return
			}
			if why, ok := stricter[pattern]; ok && sshdAllows && !embeddedAllows {
				t.Logf("from=%q: refused where OpenSSH allows (%s): stricter, by design", pattern, why)
				return
			}
			t.Errorf("from=%q: OpenSSH allows=%v (exit %d), embedded allows=%v (exit %d)\n%s\n%s", pattern, sshdAllows, ro.code, embeddedAllows, re.code, ro.stderr, re.stderr)
		})
	}
}

// 7. Sessions are independent: a client killed in the middle of its
// session takes nothing else down.
func TestEmbeddedSSHDSessionsAreIndependent(t *testing.T) {
	f := newSSHDFixture(t)
	stuckZFS := f.fakeZFS(t, "zfs-stuck", "exec sleep 120")
	slowZFS := f.fakeZFS(t, "zfs-slow", "sleep 2")
	stuck, stuckPub := f.newKey(t)
	slow, slowPub := f.newKey(t)
	fast, fastPub := f.newKey(t)
	f.writeKeys(t, f.forced("", stuckZFS, stuckPub), f.forced("", slowZFS, slowPub), f.forced("", f.zfs, fastPub))
	p := f.start(t)

	start := func(key string) (*exec.Cmd, *testenv.SyncBuffer, chan error) {
		cmd := exec.Command(binary, args("ls", p.zrepFlags(key))...)
		out := &testenv.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, out, done
	}
	waitCalls := func(zfsBin string) []int {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if pids := zfsCalls(zfsBin); len(pids) > 0 {
				return pids
			}
		}
		t.Fatalf("%s was never run", zfsBin)
		return nil
	}

	// Session A hangs in zfs; session B is in the middle of its listing.
	_, outA, doneA := start(stuck)
	stuckPids := waitCalls(stuckZFS)
	_, outB, doneB := start(slow)
	waitCalls(slowZFS)

	pids := sshProcesses(stuck)
	if len(pids) != 1 {
		t.Fatalf("ssh processes for A's key: %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	select {
	case err := <-doneB:
		if err != nil {
			t.Fatalf("session B failed after A's ssh was killed: %v\n%s", err, outB.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("session B did not finish")
	}
	if !strings.Contains(outB.String(), "NAME") {
		t.Errorf("ls B printed %q", outB.String())
	}
	select {
	case err := <-doneA:
		if err == nil {
			t.Errorf("ls A succeeded although its ssh was killed:\n%s", outA.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("ls A did not notice its ssh was killed")
	}
	// The server noticed and ended A's session, killing its zfs.
	endA := p.waitEntry(t, "session end", fingerprint(t, stuck+".pub"))
	if endA.str("exit_status") != "1" {
		t.Errorf("A's session ended as %s, want exit_status 1", endA.raw)
	}
	if !processGone(stuckPids[0]) {
		t.Errorf("A's zfs (pid %d) still runs after its client vanished", stuckPids[0])
	}
	if endB := p.waitEntry(t, "session end", fingerprint(t, slow+".pub")); endB.str("exit_status") != "0" {
		t.Errorf("B's session ended as %s, want exit_status 0", endB.raw)
	}
	// And the server goes on.
	if !p.running() {
		t.Fatalf("the embedded sshd exited:\n%s", p.output.String())
	}
	mustZrep(t, args("ls", p.zrepFlags(fast))...)
	p.checkNoPanic(t)
}

// 7, with zfs: a client killed while its zfs send streams does not
// disturb a concurrent pull through the same server, which completes.
func TestEmbeddedSSHDSessionsAreIndependentDuringPull(t *testing.T) {
	requireSSHClient(t)
	w := newWorld(t)
	ds := w.src.Name + "/vm"
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "vm", "big"), 64<<20)
	testenv.Run(t, "zfs", "snapshot", ds+"@big")
	keyA, pubA := testenv.NewClientKey(t, w.dir)
	keyB, pubB := testenv.NewClientKey(t, w.dir)
	serveLog := filepath.Join(w.dir, "serve-unused.log") // the embedded sshd logs to its own file
	ak := filepath.Join(w.dir, "authorized_keys.independent")
	content := fmt.Sprintf("restrict,command=%q %s a\nrestrict,command=%q %s b\n", w.serveCommand(serveLog), pubA, w.serveCommand(serveLog), pubB)
	if err := os.WriteFile(ak, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(w.dir, "sshd-")
	if err != nil {
		t.Fatal(err)
	}
	p := startSSHDProc(t, dir, ak, filepath.Join(dir, "host_key"), "--generate-host-key")

	// Client A: a send of the big snapshot, read 1 MiB and left stalled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := dialSource(t, ctx, endpoint{name: "A", flags: p.zrepFlags(keyA)})
	_, stream, err := src.Send(ctx, api.SendRequest{Dataset: ds, To: ds + "@big"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, stream, 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(zfsSendProcesses(ds)) == 0 { // zfs overwrites the '@' in its argv
		t.Fatal("no zfs send running for A: the test would prove nothing")
	}

	// Pull B: everything; A's ssh is killed once B's first transfer began.
	cmdB := exec.Command(binary, args("pull", p.zrepFlags(keyB), "--root", w.root(), "--json")...)
	stdoutB, err := cmdB.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderrB strings.Builder
	cmdB.Stderr = &stderrB
	if err := cmdB.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmdB.Process.Kill() })
	sc := bufio.NewScanner(stdoutB)
	sc.Buffer(nil, 1<<20)
	killed := false
	for sc.Scan() {
		var ev replication.Event
		_ = json.Unmarshal(sc.Bytes(), &ev)
		if !killed && ev.Type == replication.EventStepStart {
			pids := sshProcesses(keyA)
			if len(pids) != 1 {
				t.Fatalf("ssh processes for A's key: %v, want one", pids)
			}
			if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	if err := cmdB.Wait(); err != nil {
		t.Fatalf("pull B: %v\n%s", err, stderrB.String())
	}
	if !killed {
		t.Fatal("pull B transferred nothing: the test would prove nothing")
	}
	for _, d := range w.allowed() {
		sameSnapshots(t, d, w.target(d))
	}

	if _, err := io.Copy(io.Discard, stream); err == nil {
		t.Error("A's stream ended cleanly although its ssh was killed")
	}
	if end := p.waitEntry(t, "session end", fingerprint(t, keyA+".pub")); end.str("exit_status") != "1" {
		t.Errorf("A's session ended as %s, want exit_status 1", end.raw)
	}
	if end := p.waitEntry(t, "session end", fingerprint(t, keyB+".pub")); end.str("exit_status") != "0" {
		t.Errorf("B's session ended as %s, want exit_status 0", end.raw)
	}
	for deadline := time.Now().Add(20 * time.Second); len(zfsSendProcesses(ds)) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if left := zfsSendProcesses(ds); len(left) > 0 {
		t.Errorf("zfs send still running after A vanished and B ended: %v", left)
	}
	if !p.running() {
		t.Fatalf("the embedded sshd exited:\n%s", p.output.String())
	}
	mustZrep(t, args("ls", p.zrepFlags(keyB))...)
	p.checkNoPanic(t)
}

// 8. Each session is logged with the key's fingerprint and identity.
func TestEmbeddedSSHDLogsFingerprintAndIdentity(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("restrict,", f.zfs, goodPub))
	p := f.start(t)
	mustZrep(t, args("ls", p.zrepFlags(good))...)

	fp := fingerprint(t, good+".pub")
	start := p.waitEntry(t, "session start", fp)
	for _, want := range []string{fp, `"identity": "` + identity + `"`, `"requested_command": "zrep-stdinserver serve"`, `"remote": "127.0.0.1:`} {
		if !strings.Contains(start.raw, want) {
			t.Errorf("session start line lacks %s:\n%s", want, start.raw)
		}
	}
	if start.level != "INFO" {
		t.Errorf("session start logged at %s", start.level)
	}
	end := p.waitEntry(t, "session end", fp)
	if end.str("identity") != identity || end.str("exit_status") != "0" || end.str("took") == "" {
		t.Errorf("session end line: %s", end.raw)
	}
}

// 9. The host key: generated once (0600, with a .pub), then reused; never
// generated without --generate-host-key.
func TestEmbeddedSSHDHostKey(t *testing.T) {
	f := newSSHDFixture(t)
	good, goodPub := f.newKey(t)
	f.writeKeys(t, f.forced("", f.zfs, goodPub))
	hostKey := filepath.Join(f.dir, "keys", "host_key")

	p1 := startSSHDProc(t, t.TempDir(), f.ak, hostKey, "--generate-host-key")
	st, err := os.Stat(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("generated host key has mode %v, want 0600", st.Mode().Perm())
	}
	if dst, err := os.Stat(filepath.Dir(hostKey)); err != nil || dst.Mode().Perm() != 0o700 {
		t.Errorf("created key directory: %v, want mode 0700", dst)
	}
	fp := fingerprint(t, hostKey+".pub")
	if fpPriv := fingerprint(t, hostKey); fpPriv != fp || p1.hostKeyFP != fp {
		t.Errorf("fingerprints: .pub %s, private key %s, logged %s", fp, fpPriv, p1.hostKeyFP)
	}
	if len(p1.entries("generated a new ed25519 host key")) != 1 {
		t.Error("the generation was not logged")
	}
	mustZrep(t, args("ls", p1.zrepFlags(good))...) // StrictHostKeyChecking=yes against the .pub
	keyBytes, _ := os.ReadFile(hostKey)
	if code := p1.stop(t); code != 0 {
		t.Errorf("sshd exited %d on SIGINT, want 0", code)
	}

	p2 := startSSHDProc(t, t.TempDir(), f.ak, hostKey, "--generate-host-key")
	if p2.hostKeyFP != fp {
		t.Errorf("second start uses host key %s, first %s", p2.hostKeyFP, fp)
	}
	if again, _ := os.ReadFile(hostKey); !bytes.Equal(again, keyBytes) || len(p2.entries("generated a new ed25519 host key")) != 0 {
		t.Error("the host key was generated again")
	}
	c, err := gossh.Dial("tcp", p2.addr, &gossh.ClientConfig{User: "backup", Auth: []gossh.AuthMethod{keyAuth(t, good)},
		HostKeyCallback: gossh.FixedHostKey(p1.hostPub), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("the first start's host key does not verify the second: %v", err)
	}
	_ = c.Close()

	garbage := filepath.Join(f.dir, "garbage_key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(f.dir, "missing", "host_key")
	for _, tc := range []struct {
		name string
		argv []string
		want string
	}{
		{"missing host key", []string{"--host-key", missing, "--authorized-keys", f.ak}, missing},
		{"unparsable host key", []string{"--host-key", garbage, "--authorized-keys", f.ak, "--generate-host-key"}, garbage},
		{"missing authorized_keys", []string{"--host-key", hostKey, "--authorized-keys", filepath.Join(f.dir, "nope")}, filepath.Join(f.dir, "nope")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, append([]string{"sshd", "--listen", "127.0.0.1:0"}, tc.argv...)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("sshd: %v, want exit status 2 naming %s\n%s", err, tc.want, out)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a host key was created without --generate-host-key: %v", err)
	}
	if b, _ := os.ReadFile(garbage); string(b) != "not a key\n" {
		t.Errorf("the unparsable host key was overwritten: %q", b)
	}
}

// The sshd subcommand's limit flags reach the server: --max-startups,
// --login-grace-time and --max-sessions (issue 8, finding 5).
func TestEmbeddedSSHDLimitFlags(t *testing.T) {
	f := newSSHDFixture(t)
	key, pub := f.newKey(t)
	f.writeKeys(t, f.forced("", f.zfs, pub))
	dir, err := os.MkdirTemp(f.dir, "sshd-")
	if err != nil {
		t.Fatal(err)
	}
	p := startSSHDProc(t, dir, f.ak, filepath.Join(dir, "host_key"), "--generate-host-key",
		"--max-startups", "1", "--login-grace-time", "2s", "--max-sessions", "1")

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	start := time.Now()
	pending := dial()
	_ = pending.SetReadDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(pending)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("version line %q, %v", line, err)
	}
	refused := dial()
	_ = refused.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(refused); err != nil || string(b) != "Exceeded MaxStartups\r\n" {
		t.Errorf("a second connection not logged in read %q, %v; want the MaxStartups refusal", b, err)
	}
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("the pending connection was not closed: %v", err)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("the pending connection was closed after %v, before its 2 s grace time", took)
	}

	c := p.mustDial(t, key)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := c.NewSession(); err == nil {
		_ = s2.Close()
		t.Error("a second session opened with --max-sessions 1")
	}
}
