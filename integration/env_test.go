// Package integration tests zrep end to end: the real binary, real pools
// (zfs-fuse on the host, OpenZFS in the lab's VMs), a real OpenSSH sshd with
// a forced command, and the embedded sshd.
// Without zfs-fuse or sshd the tests skip, unless ZREP_REQUIRE_ZFS=1 and
// ZREP_REQUIRE_SSHD=1 (as in CI), which make them fail instead.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
)

// binary is the zrep-stdinserver built for this test run (or the prebuilt
// one named by ZREP_TEST_BINARY).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zrep-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = testenv.Binary(dir, "../cmd/zrep-stdinserver")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// world is a source pool with a layout that exercises the policy, a
// destination pool, and the policy file.
//
//	SRC/data           allowed by "SRC/data<"     @s1 @s2
//	SRC/data/child     allowed (subtree)          @c1
//	SRC/data/private   denied by "SRC/data/private<": false   @p1
//	SRC/database       denied: shares a prefix with SRC/data  @d1
//	SRC/vm             allowed by the exact key "SRC/vm"      @v1
//	SRC/vm/disk0       denied: the exact key does not cover children  @k1
type world struct {
	src, dst *testenv.Pool
	policy   string
	dir      string
}

const identity = "backup1"

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{src: testenv.NewPool(t, "src", 1024), dst: testenv.NewPool(t, "dst", 1024), dir: t.TempDir()}
	s := w.src.Name
	for _, ds := range []string{"data", "data/child", "data/private", "database", "vm", "vm/disk0"} {
		testenv.Run(t, "zfs", "create", s+"/"+ds)
	}
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "file1"), 1<<20)
	for _, snap := range []string{"data@s1", "data/child@c1", "data@s2", "data/private@p1", "database@d1", "vm@v1", "vm/disk0@k1"} {
		testenv.Run(t, "zfs", "snapshot", s+"/"+snap)
	}
	w.policy = filepath.Join(w.dir, "policy.yaml")
	policy := fmt.Sprintf(`identities:
  %s:
    datasets:
      "%s/data<": true
      "%s/data/private<": false
      "%s/vm": true
`, identity, s, s, s)
	if err := os.WriteFile(w.policy, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// allowed are the source datasets the policy lets backup1 see.
func (w *world) allowed() []string {
	return []string{w.src.Name + "/data", w.src.Name + "/data/child", w.src.Name + "/vm"}
}

// root is where pulls receive.
func (w *world) root() string { return w.dst.Name + "/backup" }

func (w *world) target(ds string) string { return w.root() + "/" + ds }

// endpoint is a way to reach the source: the connection flags for ls and pull.
type endpoint struct {
	name  string
	flags []string
	log   string // the server side's log file
}

// serveCommand is the forced command for backup1's key.
func (w *world) serveCommand(log string) string {
	return fmt.Sprintf("%s serve --policy %s --identity %s --log-file %s --log-level debug", binary, w.policy, identity, log)
}

// openSSH starts a real sshd whose authorized_keys forces serve for a new key.
func (w *world) openSSH(t *testing.T) endpoint {
	t.Helper()
	key, pub := testenv.NewClientKey(t, w.dir)
	log := filepath.Join(w.dir, "serve-openssh.log")
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s backup1@test\n", w.serveCommand(log), pub))
	return endpoint{name: "openssh", flags: sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions()), log: log}
}

// embedded starts `zrep-stdinserver sshd` with the same kind of authorized_keys.
func (w *world) embedded(t *testing.T) endpoint {
	t.Helper()
	key, pub := testenv.NewClientKey(t, w.dir)
	serveLog := filepath.Join(w.dir, "serve-embedded.log")
	ak := filepath.Join(w.dir, "authorized_keys.embedded")
	if err := os.WriteFile(ak, []byte(fmt.Sprintf("restrict,command=%q %s backup1@test\n", w.serveCommand(serveLog), pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEmbedded(t, w.dir, ak)
	return endpoint{name: "embedded", flags: sshFlags("backup@127.0.0.1", e.port, key, e.sshOptions), log: e.log}
}

type embeddedSSHD struct {
	port       int
	sshOptions []string
	log        string
	hostKey    string
	pid        int
}

// startEmbedded runs `zrep-stdinserver sshd` on a free port until the test ends.
func startEmbedded(t *testing.T, dir, authorizedKeys string, extra ...string) *embeddedSSHD {
	t.Helper()
	port := freePort(t)
	e := &embeddedSSHD{port: port, log: filepath.Join(dir, fmt.Sprintf("embedded-sshd-%d.log", port)), hostKey: filepath.Join(dir, fmt.Sprintf("host_key_%d", port))}
	cmd := exec.Command(binary, append([]string{"sshd", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--host-key", e.hostKey,
		"--generate-host-key", "--authorized-keys", authorizedKeys, "--log-file", e.log, "--log-level", "debug"}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.pid = cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(e.log)
			t.Logf("embedded sshd log:\n%s", b)
		}
	})
	waitPort(t, port)
	pub, err := os.ReadFile(e.hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(dir, fmt.Sprintf("known_hosts_%d", port))
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, strings.TrimSpace(string(pub)))
	if err := os.WriteFile(knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.sshOptions = []string{"UserKnownHostsFile=" + knownHosts, "StrictHostKeyChecking=yes", "IdentitiesOnly=yes",
		"GlobalKnownHostsFile=/dev/null", "UpdateHostKeys=no", "LogLevel=ERROR"}
	return e
}

func sshFlags(dest string, port int, key string, options []string) []string {
	flags := []string{"--ssh", dest, "--ssh-port", strconv.Itoa(port), "--ssh-identity", key}
	for _, o := range options {
		flags = append(flags, "--ssh-option", o)
	}
	return flags
}

func currentUser(t *testing.T) string {
	t.Helper()
	u := os.Getenv("USER")
	if u == "" {
		u = strings.TrimSpace(testenv.Run(t, "id", "-un"))
	}
	return u
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// result is a finished zrep-stdinserver run.
type result struct {
	stdout, stderr string
	code           int
}

// zrep runs the binary to completion (at most 5 minutes).
func zrep(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return runCommand(t, exec.CommandContext(ctx, binary, args...))
}

// runCommand runs cmd to completion and returns its output and exit
// status; a command that cannot run at all fails the test.
func runCommand(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running %v: %v", cmd.Args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// mustZrep runs the binary and fails the test unless it exits 0.
func mustZrep(t *testing.T, args ...string) result {
	t.Helper()
	r := zrep(t, args...)
	if r.code != 0 {
		t.Fatalf("zrep-stdinserver %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func args(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("args: %T", p))
		}
	}
	return out
}

// sameSnapshots checks that target has exactly the source's snapshots
// (names and guids), or, with only, exactly those names of the source.
func sameSnapshots(t *testing.T, source, target string, only ...string) {
	t.Helper()
	src, dst := testenv.Snapshots(t, source), testenv.Snapshots(t, target)
	want := src
	if len(only) > 0 {
		want = map[string]uint64{}
		for _, n := range only {
			want[n] = src[n]
		}
	}
	if len(dst) != len(want) {
		t.Fatalf("%s has snapshots %v, want %v (from %s)", target, dst, want, source)
	}
	for name, guid := range want {
		if dst[name] != guid {
			t.Fatalf("%s@%s has guid %d, source %s has %d", target, name, dst[name], source, guid)
		}
	}
}

// zfsSendProcesses lists running `zfs send` processes that mention dataset.
func zfsSendProcesses(dataset string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) > 1 && filepath.Base(argv[0]) == "zfs" && argv[1] == "send" && strings.Contains(string(b), dataset) {
			found = append(found, e.Name()+": "+strings.Join(argv, " "))
		}
	}
	return found
}

// destroy removes a dataset recursively, retrying while zfs-fuse says busy.
func destroy(t *testing.T, ds string) {
	t.Helper()
	var err error
	for i := 0; i < 30; i++ {
		if _, err = testenv.Output("zfs", "destroy", "-r", ds); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal(err)
}
