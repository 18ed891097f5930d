package server_test

// In-process tests of the embedded SSH server: NewSSHD and Serve on a
// 127.0.0.1:0 listener, driven by golang.org/x/crypto/ssh clients, with a
// fake zfs behind the endpoint. integration/sshd_test.go runs the same
// checks (and more) against the built binary with the OpenSSH client.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/server"
	"github.com/zrep/zrep/zfs"
)

const testPolicy = "/etc/zrep/policy.yaml"

// serveCommand is a forced command for identity.
func serveCommand(identity string) string {
	return "zrep-stdinserver serve --policy " + testPolicy + " --identity " + identity
}

// testKey is a client key pair.
type testKey struct {
	signer gossh.Signer
	line   string // "ssh-ed25519 AAAA...", as in authorized_keys
	fp     string // SHA256 fingerprint
}

func newKey(t *testing.T) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{
		signer: signer,
		line:   strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))),
		fp:     gossh.FingerprintSHA256(signer.PublicKey()),
	}
}

// forced is an authorized_keys line forcing command for k, after options
// (which end with a comma when not empty).
func forced(options, command string, k testKey) string {
	return fmt.Sprintf("%scommand=%q %s test@zrep\n", options, command, k.line)
}

func (k testKey) auth() gossh.AuthMethod { return gossh.PublicKeys(k.signer) }

// allowAll is a policy that allows every dataset.
type allowAll struct{}

func (allowAll) Allows(string) bool { return true }
func (allowAll) Roots() []string    { return []string{"tank"} }

// fakeZFS lists one filesystem; when block is set, ListTree signals block
// and waits until its context is done, then signals canceled. Methods it
// does not define come from the nil embedded interface: calling one panics.
type fakeZFS struct {
	handlers.ZFS
	block    chan struct{}
	canceled chan struct{}
}

func (f *fakeZFS) ListTree(ctx context.Context, _ string) ([]zfs.DatasetVersions, error) {
	if f.block != nil {
		close(f.block)
		<-ctx.Done()
		close(f.canceled)
		return nil, ctx.Err()
	}
	return []zfs.DatasetVersions{{Dataset: zfs.Dataset{Name: "tank/a", Type: zfs.Filesystem}}}, nil
}

func (f *fakeZFS) ListDatasets(context.Context, string) ([]zfs.Dataset, error) {
	return []zfs.Dataset{{Name: "tank/a", Type: zfs.Filesystem}}, nil
}

func (f *fakeZFS) ListVersions(context.Context, string) ([]zfs.Version, error) { return nil, nil }

func (f *fakeZFS) Send(context.Context, zfs.SendOptions) (io.ReadCloser, error) {
	return nil, fmt.Errorf("fake zfs: no send")
}

// harness is an embedded sshd serving on 127.0.0.1.
type harness struct {
	sshd    *server.SSHD
	addr    string
	hostPub gossh.PublicKey
	ak      string
	logs    *observer.ObservedLogs

	mu     sync.Mutex
	served []server.ServeConfig // every configuration an endpoint was built for
	zfsFor map[string]*fakeZFS  // per identity; default: an unblocking fake
}

func startSSHD(t *testing.T, authorizedKeys string) *harness {
	t.Helper()
	return startSSHDWith(t, authorizedKeys, server.Limits{})
}

// startSSHDWith starts the embedded sshd with limits (the zero value
// means the defaults).
func startSSHDWith(t *testing.T, authorizedKeys string, limits server.Limits) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{ak: filepath.Join(dir, "authorized_keys"), zfsFor: map[string]*fakeZFS{}}
	h.writeKeys(t, authorizedKeys)
	core, logs := observer.New(zap.DebugLevel)
	h.logs = logs
	d, err := server.NewSSHD(server.SSHDConfig{
		HostKeyFile:        filepath.Join(dir, "host_key"),
		GenerateHostKey:    true,
		AuthorizedKeysFile: h.ak,
		ParseServe:         parseServe,
		NewEndpoint:        h.newEndpoint,
		Version:            "sshd-test",
		Limits:             limits,
		Log:                zap.New(core),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.sshd = d
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- d.Serve(l) }()
	t.Cleanup(func() {
		_ = d.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	})
	pub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if h.hostPub, _, _, _, err = gossh.ParseAuthorizedKey(pub); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) writeKeys(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(h.ak, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// parseServe parses --policy and --identity, like the serve subcommand.
func parseServe(args []string) (server.ServeConfig, error) {
	var cfg server.ServeConfig
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return cfg, fmt.Errorf("flag needs an argument: %s", args[i])
		}
		switch args[i] {
		case "--policy":
			cfg.PolicyFile = args[i+1]
		case "--identity":
			cfg.Identity = args[i+1]
		default:
			return cfg, fmt.Errorf("unknown flag: %s", args[i])
		}
	}
	return cfg, nil
}

func (h *harness) newEndpoint(cfg server.ServeConfig, log *zap.Logger) (*server.Endpoint, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.served = append(h.served, cfg)
	if cfg.Identity == "nobody" {
		return nil, fmt.Errorf("unknown identity %q", cfg.Identity)
	}
	z := h.zfsFor[cfg.Identity]
	if z == nil {
		z = &fakeZFS{}
	}
	return &server.Endpoint{Identity: cfg.Identity, Policy: allowAll{}, ZFS: z, Log: log}, nil
}

func (h *harness) servedConfigs() []server.ServeConfig {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]server.ServeConfig(nil), h.served...)
}

func (h *harness) dial(auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", h.addr, &gossh.ClientConfig{
		User:            "backup",
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(h.hostPub),
		Timeout:         10 * time.Second,
	})
}

func (h *harness) mustDial(t *testing.T, k testKey) *gossh.Client {
	t.Helper()
	c, err := h.dial(k.auth())
	if err != nil {
		t.Fatalf("dial with %s: %v", k.fp, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entries returns the log entries with message msg whose fingerprint is fp.
func (h *harness) entries(msg, fp string) []observer.LoggedEntry {
	var out []observer.LoggedEntry
	for _, e := range h.logs.FilterMessage(msg).All() {
		if e.ContextMap()["fingerprint"] == fp {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry waits up to 10 s for a log entry with message msg for fp.
func (h *harness) waitEntry(t *testing.T, msg, fp string) observer.LoggedEntry {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if es := h.entries(msg, fp); len(es) > 0 {
			return es[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log entry for %s; log: %v", msg, fp, h.logs.All())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// pipes is a session's stdout and stdin as one stream.
type pipes struct {
	io.Reader
	io.WriteCloser
}

// openSource execs command on session s and speaks the zrep protocol over it.
func openSource(t *testing.T, s *gossh.Session, command string) (*client.Source, *syncBuffer) {
	t.Helper()
	stdin, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	s.Stderr = stderr
	if err := s.Start(command); err != nil {
		t.Fatalf("exec %q: %v", command, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := client.Connect(ctx, pipes{stdout, stdin}, rpc.Config{SoftwareVersion: "sshd-test"})
	if err != nil {
		t.Fatalf("exec %q: handshake: %v (stderr %q)", command, err, stderr.String())
	}
	return src, stderr
}

// listOnce lists the filesystems through a new session that asked to run
// command, closes the session in order and checks its exit status is 0.
func listOnce(t *testing.T, c *gossh.Client, command string) []api.Filesystem {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src, stderr := openSource(t, s, command)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fss, err := src.ListFilesystems(ctx, true)
	if err != nil {
		t.Fatalf("ListFilesystems: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("closing the session: %v", err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("session exit: %v (stderr %q)", err, stderr.String())
	}
	return fss
}

// The client's command is logged and ignored: every session runs the
// key's forced serve configuration.
func TestSSHDRunsTheForcedServeWhateverTheCommand(t *testing.T) {
	k := newKey(t)
	h := startSSHD(t, forced("restrict,", serveCommand("backup1"), k))
	c := h.mustDial(t, k)
	commands := []string{
		"echo hi",
		"rm -rf /",
		"",
		"zrep-stdinserver serve --policy /tmp/evil.yaml --identity admin",
		"zrep-stdinserver sshd --listen 0.0.0.0:22",
	}
	for _, command := range commands {
		fss := listOnce(t, c, command)
		if len(fss) != 1 || fss[0].Name != "tank/a" {
			t.Errorf("exec %q: listed %+v, want the fake zfs's tank/a", command, fss)
		}
	}
	for i, cfg := range h.servedConfigs() {
		if cfg != (server.ServeConfig{PolicyFile: testPolicy, Identity: "backup1"}) {
			t.Errorf("session %d served %+v, want the forced command's configuration", i, cfg)
		}
	}
	starts := h.entries("session start", k.fp)
	if len(starts) != len(commands) {
		t.Fatalf("%d session start entries for %s, want %d: %v", len(starts), k.fp, len(commands), h.logs.All())
	}
	for i, e := range starts {
		m := e.ContextMap()
		if m["requested_command"] != commands[i] || m["identity"] != "backup1" || !strings.HasPrefix(fmt.Sprint(m["remote"]), "127.0.0.1:") {
			t.Errorf("session start entry %d: %v, want requested_command %q, identity backup1, remote 127.0.0.1", i, m, commands[i])
		}
	}
	for _, e := range h.entries("session end", k.fp) {
		if m := e.ContextMap(); m["exit_status"] != int64(0) || m["identity"] != "backup1" {
			t.Errorf("session end entry: %v, want exit_status 0 and identity backup1", m)
		}
	}
}

// A client that is not zrep gets a handshake error on stderr, exit status
// 1, and never the output of the command it asked for.
func TestSSHDGarbageEndsTheSessionWithAHandshakeError(t *testing.T) {
	k := newKey(t)
	h := startSSHD(t, forced("", serveCommand("backup1"), k))
	c := h.mustDial(t, k)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: zrep\r\n\r\n")
	s.Stdout, s.Stderr = &stdout, &stderr
	err = s.Run("echo hi")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != server.ExitFailure {
		t.Fatalf("session ended with %v, want exit status %d", err, server.ExitFailure)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing (no HELLO without the client's, and no echo)", stdout.String())
	}
	end := h.waitEntry(t, "session end", k.fp)
	if m := end.ContextMap(); m["exit_status"] != int64(server.ExitFailure) || !strings.Contains(fmt.Sprint(m["reason"]), "handshake") {
		t.Errorf("session end entry %v", m)
	}
	t.Run("the error reaches stderr", func(t *testing.T) {
		if strings.Contains(stderr.String(), "handshake") {
			return
		}
		t.Errorf("stderr %q does not mention the handshake", stderr.String())
	})
}

// Only public keys with a forced command log in.
func TestSSHDRefusesAuthentication(t *testing.T) {
	good, noCommand, emptyCommand, elsewhere, unknown := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	h := startSSHD(t, strings.Join([]string{
		forced("", serveCommand("backup1"), good),
		"restrict " + noCommand.line + " no-command\n",
		forced("", "", emptyCommand),
		forced(`from="10.9.9.9",`, serveCommand("backup1"), elsewhere),
	}, ""))
	prompted := false
	tests := []struct {
		name    string
		auth    []gossh.AuthMethod
		fp      string // the key refused, "" when none
		logMsg  string
		logText string
	}{
		{"key without command=", []gossh.AuthMethod{noCommand.auth()}, noCommand.fp, "key refused", `has no command="... serve ..." option`},
		{"key with an empty command=", []gossh.AuthMethod{emptyCommand.auth()}, emptyCommand.fp, "key refused", `has no command="... serve ..." option`},
		{"unknown key", []gossh.AuthMethod{unknown.auth()}, unknown.fp, "key refused", "key not in authorized_keys"},
		{"from= elsewhere", []gossh.AuthMethod{elsewhere.auth()}, elsewhere.fp, "key refused: client address does not match from=", ""},
		{"password", []gossh.AuthMethod{gossh.Password("hunter2")}, "", "", ""},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			prompted = true
			return []string{"hunter2"}, nil
		})}, "", "", ""},
		{"no method at all", nil, "", "", ""},
		{"password, then a key without command=", []gossh.AuthMethod{gossh.Password("hunter2"), noCommand.auth()}, noCommand.fp, "key refused", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.dial(tt.auth...)
			if err == nil {
				_ = c.Close()
				t.Fatal("logged in")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("dial: %v, want an authentication failure", err)
			}
			if tt.fp == "" {
				return
			}
			es := h.entries(tt.logMsg, tt.fp)
			if len(es) == 0 {
				t.Fatalf("no %q log entry for %s: %v", tt.logMsg, tt.fp, h.logs.All())
			}
			if m := es[0].ContextMap(); !strings.Contains(fmt.Sprint(m["error"]), tt.logText) || !strings.HasPrefix(fmt.Sprint(m["remote"]), "127.0.0.1:") {
				t.Errorf("log entry %v, want error containing %q and the remote address", m, tt.logText)
			}
		})
	}
	if prompted {
		t.Error("the server sent a keyboard-interactive challenge")
	}
	if es := h.entries("key refused: client address does not match from=", elsewhere.fp); len(es) == 0 || es[0].ContextMap()["from"] != "10.9.9.9" || es[0].ContextMap()["line"] != int64(4) {
		t.Errorf("from= refusal entries %v, want the pattern 10.9.9.9 and its line 4 logged", es)
	}
	if got := h.servedConfigs(); len(got) != 0 {
		t.Errorf("refused logins built endpoints: %v", got)
	}
	if n := len(h.logs.FilterMessage("session start").All()); n != 0 {
		t.Errorf("%d sessions started", n)
	}
	// The good key works on the same server.
	if fss := listOnce(t, h.mustDial(t, good), "x"); len(fss) != 1 {
		t.Errorf("good key listed %v", fss)
	}
}

// When the client offers several keys, the session's identity and
// fingerprint are those of the key that logged in, not of a key the
// server refused before (gliderlabs/ssh #242: the auth callbacks share
// one Permissions per connection).
func TestSSHDIdentityComesFromTheKeyThatLoggedIn(t *testing.T) {
	admin, noCommand, unknown, backup := newKey(t), newKey(t), newKey(t), newKey(t)
	h := startSSHD(t, forced(`from="10.9.9.9",`, serveCommand("admin"), admin)+
		"restrict "+noCommand.line+"\n"+
		forced("", serveCommand("backup1"), backup))
	c, err := h.dial(gossh.PublicKeys(admin.signer, noCommand.signer, unknown.signer, backup.signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	listOnce(t, c, "x")
	got := h.servedConfigs()
	if len(got) != 1 || got[0].Identity != "backup1" {
		t.Fatalf("served %+v, want only identity backup1", got)
	}
	starts := h.logs.FilterMessage("session start").All()
	if len(starts) != 1 || starts[0].ContextMap()["fingerprint"] != backup.fp || starts[0].ContextMap()["identity"] != "backup1" {
		t.Errorf("session start entries %v, want one for %s as backup1", starts, backup.fp)
	}
	for _, k := range []testKey{admin, noCommand, unknown} {
		if len(h.entries("key refused", k.fp))+len(h.entries("key refused: client address does not match from=", k.fp)) == 0 {
			t.Errorf("no refusal logged for %s", k.fp)
		}
	}
}

// craftedPtyReq is a pty-req payload whose TERM string claims 0xFFFFFFFE
// bytes: gliderlabs/ssh v0.3.8's parser computes 4+length in uint32, which
// wraps, and panics on in[4:2], killing the process (upstream PR #262).
func craftedPtyReq() []byte {
	p := binary.BigEndian.AppendUint32(nil, 0xFFFFFFFE)
	p = append(p, "xterm"...)
	for _, v := range []uint32{80, 24, 640, 480} {
		p = binary.BigEndian.AppendUint32(p, v)
	}
	return binary.BigEndian.AppendUint32(p, 0) // empty terminal modes
}

// Every session request but exec is refused, before gliderlabs parses it;
// the session stays usable, and so does the server.
func TestSSHDRefusesEverySessionRequestButExec(t *testing.T) {
	k := newKey(t)
	h := startSSHD(t, forced("", serveCommand("backup1"), k))
	c := h.mustDial(t, k)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ok, err := s.SendRequest("pty-req", true, craftedPtyReq())
	if err != nil || ok {
		t.Fatalf("crafted pty-req: ok=%v err=%v, want a refusal (an error means the server died)", ok, err)
	}
	if err := s.RequestPty("xterm", 24, 80, gossh.TerminalModes{gossh.ECHO: 0}); err == nil {
		t.Error("RequestPty succeeded")
	}
	if err := s.Setenv("LC_ALL", "C"); err == nil {
		t.Error("Setenv succeeded")
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Error("sftp subsystem started")
	}
	if err := s.Shell(); err == nil {
		t.Error("shell started")
	}
	for _, req := range []struct {
		typ     string
		payload []byte
	}{
		{"auth-agent-req@openssh.com", nil},
		{"x11-req", gossh.Marshal(struct {
			Single   bool
			Protocol string
			Cookie   string
			Screen   uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00112233445566778899aabbccddeeff", 0})},
		{"window-change", gossh.Marshal(struct{ W, H, PW, PH uint32 }{80, 24, 0, 0})},
		{"env", gossh.Marshal(struct{ Name, Value string }{"LD_PRELOAD", "/tmp/evil.so"})},
		{"subsystem", gossh.Marshal(struct{ Name string }{"sftp"})},
		{"shell", nil},
		{"break", gossh.Marshal(struct{ Ms uint32 }{100})},
		{"nonsense@example.com", []byte("junk")},
		{"pty-req", nil},
	} {
		if ok, err := s.SendRequest(req.typ, true, req.payload); err != nil || ok {
			t.Errorf("%s request: ok=%v err=%v, want a refusal", req.typ, ok, err)
		}
	}

	// The same session still runs the forced serve.
	src, stderr := openSource(t, s, "bash -i")
	if ok, err := s.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{"id"})); err != nil || ok {
		t.Errorf("second exec on a running session: ok=%v err=%v, want a refusal", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := src.ListFilesystems(ctx, false); err != nil {
		t.Fatalf("ListFilesystems after refused requests: %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("session exit: %v (stderr %q)", err, stderr.String())
	}
	// And the server takes new connections.
	listOnce(t, h.mustDial(t, k), "x")
	if es := h.logs.FilterMessage("session panicked").All(); len(es) != 0 {
		t.Errorf("panics: %v", es)
	}
}

// Port forwarding (both ways), unix socket forwarding, X11 and agent
// channels are refused.
func TestSSHDRefusesForwarding(t *testing.T) {
	k := newKey(t)
	h := startSSHD(t, forced("", serveCommand("backup1"), k))
	target := testenv.NewCountingListener(t)
	c := h.mustDial(t, k)

	if conn, err := c.Dial("tcp", target.Addr().String()); err == nil {
		_ = conn.Close()
		t.Error("direct-tcpip (local forwarding) opened")
	}
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		_ = l.Close()
		t.Error("tcpip-forward (remote forwarding) accepted")
	}
	if ok, _, err := c.SendRequest("streamlocal-forward@openssh.com", true, gossh.Marshal(struct{ Path string }{"/tmp/zrep-test.sock"})); err != nil || ok {
		t.Errorf("streamlocal-forward: ok=%v err=%v, want a refusal", ok, err)
	}
	for _, typ := range []string{"direct-streamlocal@openssh.com", "x11", "auth-agent@openssh.com", "forwarded-tcpip", "tun@openssh.com"} {
		if ch, _, err := c.OpenChannel(typ, nil); err == nil {
			_ = ch.Close()
			t.Errorf("%s channel opened", typ)
		}
	}
	if n := target.Count(); n != 0 {
		t.Errorf("the forwarding target got %d connections", n)
	}
	// The connection is still good for what it is for.
	listOnce(t, c, "x")
}

// A key whose forced command is not a usable serve logs in, but its
// session is refused with an explanation and runs nothing.
func TestSSHDRefusesBadForcedCommands(t *testing.T) {
	tests := []struct {
		name, command, stderr string
		started               bool // "session start" is logged (the configuration parsed)
	}{
		{"not serve", "/bin/sh -c 'touch /tmp/zrep-pwned'", "session refused: authorized_keys line 1: the forced command is not `zrep-stdinserver serve ...`", false},
		{"no subcommand", "zrep-stdinserver", "the forced command is not `zrep-stdinserver serve ...`", false},
		{"another subcommand", "zrep-stdinserver sshd --listen 0.0.0.0:2222", "the forced command is not `zrep-stdinserver serve ...`", false},
		{"unknown serve flag", "zrep-stdinserver serve --policy p --identity backup1 --bogus x", "session refused: authorized_keys line 1: unknown flag: --bogus", false},
		{"unterminated quote", "zrep-stdinserver serve --identity 'backup1", "session refused: authorized_keys line 1", false},
		{"unknown identity", serveCommand("nobody"), `cannot serve: unknown identity "nobody"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKey(t)
			h := startSSHD(t, forced("", tt.command, k))
			c := h.mustDial(t, k)
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var stdout, stderr bytes.Buffer
			s.Stdout, s.Stderr = &stdout, &stderr
			err = s.Run("zrep-stdinserver serve")
			if !strings.Contains(stderr.String(), tt.stderr) || stdout.Len() != 0 {
				t.Errorf("stderr %q, stdout %q; want %q on stderr only", stderr.String(), stdout.String(), tt.stderr)
			}
			if n := len(h.entries("session start", k.fp)); (n == 1) != tt.started {
				t.Errorf("%d session start entries, want started=%v", n, tt.started)
			}
			if !tt.started && len(h.entries("session refused", k.fp)) != 1 {
				t.Errorf("no session refused entry: %v", h.logs.All())
			}
			var ee *gossh.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("session ended with %v, want an exit status", err)
			}
			// server/exit.go: a session of the embedded sshd exits like
			// serve would, and serve exits ExitConfig when its flags or
			// identity are unusable.
			t.Run("exit status", func(t *testing.T) {
				if ee.ExitStatus() != server.ExitConfig {
					t.Errorf("exit status %d, want %d", ee.ExitStatus(), server.ExitConfig)
				}
			})
		})
	}
}

// authorized_keys is read at every login: removing a key locks it out,
// adding one lets it in, without a restart; an unparsable file locks
// everyone out.
func TestSSHDReadsAuthorizedKeysAtEveryLogin(t *testing.T) {
	a, b := newKey(t), newKey(t)
	h := startSSHD(t, forced("", serveCommand("backup1"), a))
	if _, err := h.dial(b.auth()); err == nil {
		t.Fatal("b logged in before it was added")
	}
	h.writeKeys(t, forced("", serveCommand("backup2"), b))
	if _, err := h.dial(a.auth()); err == nil {
		t.Error("a logged in after it was removed")
	}
	listOnce(t, h.mustDial(t, b), "x")
	if got := h.servedConfigs(); len(got) != 1 || got[0].Identity != "backup2" {
		t.Errorf("served %+v, want backup2", got)
	}
	h.writeKeys(t, forced("", serveCommand("backup2"), b)+"this is not a key line\n")
	if _, err := h.dial(b.auth()); err == nil {
		t.Error("b logged in with an unparsable authorized_keys")
	}
	if es := h.entries("key refused", b.fp); len(es) == 0 || !strings.Contains(fmt.Sprint(es[len(es)-1].ContextMap()["error"]), ":2") {
		t.Errorf("refusal entries %v, want the parse error with its line", es)
	}
}

// A client that vanishes mid-call cancels its own call and nothing else.
func TestSSHDSessionsAreIndependent(t *testing.T) {
	slow, fast := newKey(t), newKey(t)
	h := startSSHD(t, forced("", serveCommand("slow"), slow)+forced("", serveCommand("fast"), fast))
	blocked := &fakeZFS{block: make(chan struct{}), canceled: make(chan struct{})}
	h.mu.Lock()
	h.zfsFor["slow"] = blocked
	h.mu.Unlock()

	slowConn := h.mustDial(t, slow)
	ss, err := slowConn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	slowSrc, _ := openSource(t, ss, "x")
	slowErr := make(chan error, 1)
	go func() {
		_, err := slowSrc.ListFilesystems(context.Background(), true)
		slowErr <- err
	}()
	select {
	case <-blocked.block:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow session's call never reached zfs")
	}

	// Another session, opened while the slow one is in its call.
	fastConn := h.mustDial(t, fast)
	fs, err := fastConn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	fastSrc, fastStderr := openSource(t, fs, "x")

	_ = slowConn.Close() // the slow client vanishes
	select {
	case <-blocked.canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the vanished client's zfs call was not canceled")
	}
	if err := <-slowErr; err == nil {
		t.Error("the vanished client's call succeeded")
	}
	if end := h.waitEntry(t, "session end", slow.fp); end.ContextMap()["exit_status"] != int64(server.ExitFailure) {
		t.Errorf("vanished session's end: %v", end.ContextMap())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if fss, err := fastSrc.ListFilesystems(ctx, true); err != nil || len(fss) != 1 {
		t.Fatalf("the other session after the first vanished: %v %v", fss, err)
	}
	if err := fastSrc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Wait(); err != nil {
		t.Fatalf("the other session's exit: %v (stderr %q)", err, fastStderr.String())
	}
	listOnce(t, h.mustDial(t, fast), "x")
}

func TestNewSSHD(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "authorized_keys")
	k := newKey(t)
	if err := os.WriteFile(ak, []byte(forced("", serveCommand("backup1"), k)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(hostKey string, generate bool) server.SSHDConfig {
		return server.SSHDConfig{HostKeyFile: hostKey, GenerateHostKey: generate, AuthorizedKeysFile: ak, ParseServe: parseServe}
	}

	t.Run("generates a host key once", func(t *testing.T) {
		hostKey := filepath.Join(dir, "new", "host_key")
		d1, err := server.NewSSHD(cfg(hostKey, true))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(hostKey)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("host key mode %v, want 0600", st.Mode().Perm())
		}
		pubText, err := os.ReadFile(hostKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		pub, _, _, _, err := gossh.ParseAuthorizedKey(pubText)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Type() != gossh.KeyAlgoED25519 || gossh.FingerprintSHA256(pub) != d1.HostKeyFingerprint() {
			t.Errorf(".pub holds %s %s, server uses %s", pub.Type(), gossh.FingerprintSHA256(pub), d1.HostKeyFingerprint())
		}
		before, _ := os.ReadFile(hostKey)
		d2, err := server.NewSSHD(cfg(hostKey, true))
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(hostKey)
		if d2.HostKeyFingerprint() != d1.HostKeyFingerprint() || !bytes.Equal(before, after) {
			t.Errorf("second start: fingerprint %s, first %s; key file changed: %v", d2.HostKeyFingerprint(), d1.HostKeyFingerprint(), !bytes.Equal(before, after))
		}
	})

	garbage := filepath.Join(dir, "garbage_key")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKeys := filepath.Join(dir, "bad_authorized_keys")
	if err := os.WriteFile(badKeys, []byte(forced("", serveCommand("x"), k)+"ssh-ed25519 AAAA-broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "host_key")
	for _, tt := range []struct {
		name string
		cfg  server.SSHDConfig
		want string
	}{
		{"missing host key", cfg(missing, false), missing},
		{"no host key file", cfg("", true), "--host-key"},
		{"garbage host key", cfg(garbage, false), garbage},
		{"garbage host key is not replaced", cfg(garbage, true), garbage},
		{"missing authorized_keys", server.SSHDConfig{HostKeyFile: garbage + "-new", GenerateHostKey: true, AuthorizedKeysFile: filepath.Join(dir, "nope"), ParseServe: parseServe}, "nope"},
		{"bad authorized_keys", server.SSHDConfig{HostKeyFile: garbage + "-new", GenerateHostKey: true, AuthorizedKeysFile: badKeys, ParseServe: parseServe}, badKeys + ":2"},
		{"no ParseServe", server.SSHDConfig{HostKeyFile: garbage + "-new", GenerateHostKey: true, AuthorizedKeysFile: ak}, "ParseServe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := server.NewSSHD(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSSHD: %v, want an error naming %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a host key was created without GenerateHostKey: %v", err)
	}
	if b, _ := os.ReadFile(garbage); string(b) != "not a key\n" {
		t.Errorf("the unparsable host key was overwritten: %q", b)
	}
}

// newCert is a user certificate for k, signed by a fresh CA, with every
// limit a certificate can carry: expired, valid only from 10.9.9.9 and
// forced to run /bin/false. It returns the certificate's authorized_keys
// form and a signer that logs in with it.
func newCert(t *testing.T, k testKey) (line string, signer gossh.Signer) {
	t.Helper()
	ca := newKey(t)
	cert := &gossh.Certificate{
		Key:             k.signer.PublicKey(),
		Serial:          7,
		CertType:        gossh.UserCert,
		KeyId:           "backup1",
		ValidPrincipals: []string{"backup"},
		ValidAfter:      1,
		ValidBefore:     2, // expired in 1970
		Permissions: gossh.Permissions{CriticalOptions: map[string]string{
			"source-address": "10.9.9.9/32",
			"force-command":  "/bin/false",
		}},
	}
	if err := cert.SignCert(rand.Reader, ca.signer); err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewCertSigner(cert, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))), signer
}

// A certificate never logs in as if it were a key, whatever its line:
// OpenSSH skips a certificate written where a key belongs, and the
// embedded server supports no certificates at all, so their limits
// (validity, source-address, force-command) would go unenforced.
func TestSSHDRefusesCertificates(t *testing.T) {
	k := newKey(t)
	certLine, certSigner := newCert(t, k)
	certFP := gossh.FingerprintSHA256(certSigner.PublicKey())

	t.Run("certificate pasted on a key line", func(t *testing.T) {
		h := startSSHD(t, forced("", serveCommand("backup1"), k))
		// Read at the next login, like any change to the file.
		h.writeKeys(t, fmt.Sprintf("command=%q %s pasted\n", serveCommand("backup1"), certLine))
		if c, err := h.dial(gossh.PublicKeys(certSigner)); err == nil {
			_ = c.Close()
			t.Fatalf("logged in with an expired certificate restricted to 10.9.9.9; served %+v", h.servedConfigs())
		}
		es := h.entries("key refused", certFP)
		if len(es) == 0 || !strings.Contains(fmt.Sprint(es[0].ContextMap()["error"]), "certificate") {
			t.Errorf("refusal entries %v, want one explaining the certificate", es)
		}
	})

	t.Run("certificate of an authorized key", func(t *testing.T) {
		h := startSSHD(t, forced("", serveCommand("backup1"), k))
		if c, err := h.dial(gossh.PublicKeys(certSigner)); err == nil {
			_ = c.Close()
			t.Fatal("logged in with a certificate")
		}
		es := h.entries("key refused", certFP)
		if len(es) == 0 || !strings.Contains(fmt.Sprint(es[0].ContextMap()["error"]), "certificates are not supported") {
			t.Errorf("refusal entries %v, want the certificate refused as such, before any authorized_keys lookup", es)
		}
		// The plain key still logs in.
		listOnce(t, h.mustDial(t, k), "x")
	})
}

// The reproduction: from="*,!127.1" names 127.0.0.1 in sshd's
// (glibc's) reading, so a client there is refused, as by OpenSSH.
func TestSSHDFromReadsAddressesAsSSHD(t *testing.T) {
	tests := []struct {
		from    string
		allowed bool
	}{
		{"*,!127.1", false},
		{"*,!0177.0.0.1", false},
		{"*,!2130706433", false},
		{"*,!0x7f.1", false},
		{"*,!127.0.0.0/+8", false}, // a mask sshd versions disagree on: refused
		{"127.1", true},
		{"*,!10.1", true},
	}
	var keys []testKey
	var lines []string
	for _, tt := range tests {
		k := newKey(t)
		keys = append(keys, k)
		lines = append(lines, forced(fmt.Sprintf("from=%q,", tt.from), serveCommand("backup1"), k))
	}
	h := startSSHD(t, strings.Join(lines, ""))
	for i, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			c, err := h.dial(keys[i].auth())
			if err == nil {
				defer c.Close()
			}
			if got := err == nil; got != tt.allowed {
				t.Fatalf("from=%q, client 127.0.0.1: logged in %v (%v), want %v", tt.from, got, err, tt.allowed)
			}
			if !tt.allowed {
				es := h.entries("key refused: client address does not match from=", keys[i].fp)
				if len(es) == 0 || es[0].ContextMap()["line"] != int64(i+1) {
					t.Errorf("refusal entries %v, want one naming line %d", es, i+1)
				}
			}
		})
	}
}

// rawConn is a TCP connection to h that speaks no SSH. If banner, it
// waits for the server's version line, which the server sends only once
// it counts the connection as not logged in yet.
func (h *harness) rawConn(t *testing.T, banner bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if banner {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
			t.Fatalf("version line %q, %v", line, err)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	return c
}

// readToEOF reads c until the server closes it (at most within timeout)
// and returns what it read.
func readToEOF(t *testing.T, c net.Conn, timeout time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server did not close the connection within %v: %v (read %q)", timeout, err, b)
	}
	return string(b)
}

// limits is DefaultLimits with f applied.
func limits(f func(*server.Limits)) server.Limits {
	l := server.DefaultLimits()
	f(&l)
	return l
}

// LoginGraceTime: a connection that has not logged in is closed after it,
// one that logged in stays.
func TestSSHDLoginGraceTime(t *testing.T) {
	const grace = 3 * time.Second
	k := newKey(t)
	h := startSSHDWith(t, forced("", serveCommand("backup1"), k), limits(func(l *server.Limits) { l.LoginGraceTime = grace }))
	loggedIn := h.mustDial(t, k)

	start := time.Now()
	silent := h.rawConn(t, false)     // never says anything
	handshaking := h.rawConn(t, true) // reads the banner, then stalls
	for _, c := range []net.Conn{silent, handshaking} {
		readToEOF(t, c, 60*time.Second)
		if took := time.Since(start); took < grace {
			t.Errorf("closed after %v, before the grace time %v", took, grace)
		}
	}
	if n := len(h.logs.FilterMessage("connection closed: not logged in within the login grace time").All()); n != 2 {
		t.Errorf("%d grace time entries, want 2: %v", n, h.logs.All())
	}
	// Logged in before the grace time ran out: still served.
	listOnce(t, loggedIn, "x")
}

// MaxStartups: connections beyond it that have not logged in are refused
// with a line saying why; a connection that logs in or closes frees its
// place.
func TestSSHDMaxStartups(t *testing.T) {
	k := newKey(t)
	var ms server.MaxStartups
	if err := ms.Set("3"); err != nil {
		t.Fatal(err)
	}
	h := startSSHDWith(t, forced("", serveCommand("backup1"), k), limits(func(l *server.Limits) { l.MaxStartups = ms }))
	pending := []net.Conn{h.rawConn(t, true), h.rawConn(t, true), h.rawConn(t, true)}

	for i := range 3 {
		if got := readToEOF(t, h.rawConn(t, false), 20*time.Second); got != "Exceeded MaxStartups\r\n" {
			t.Errorf("connection %d beyond MaxStartups read %q, want the refusal", 4+i, got)
		}
	}
	if _, err := h.dial(k.auth()); err == nil {
		t.Error("logged in beyond MaxStartups")
	}
	if n := len(h.logs.FilterMessage("connection refused: too many connections not logged in yet (MaxStartups)").All()); n < 1 {
		t.Errorf("no MaxStartups refusal logged: %v", h.logs.All())
	}

	// One closes: its place is free once the server saw it go.
	_ = pending[0].Close()
	var c *gossh.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if c, err = h.dial(k.auth()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login after a pending connection closed: %v", err)
		}
	}
	defer c.Close()
	// Logged in, it no longer counts: one more may wait for its login.
	h.rawConn(t, true)
	if got := readToEOF(t, h.rawConn(t, false), 20*time.Second); got != "Exceeded MaxStartups\r\n" {
		t.Errorf("read %q, want the refusal", got)
	}
	listOnce(t, c, "x")
}

// MaxSessions: sessions beyond it on one connection are refused; closing
// one frees its place; other connections have their own.
func TestSSHDMaxSessions(t *testing.T) {
	k := newKey(t)
	h := startSSHDWith(t, forced("", serveCommand("backup1"), k), limits(func(l *server.Limits) { l.MaxSessions = 3 }))
	c := h.mustDial(t, k)
	var open []*gossh.Session
	for i := range 3 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("session %d of 3: %v", i+1, err)
		}
		open = append(open, s)
	}
	for range 2 {
		if s, err := c.NewSession(); err == nil {
			_ = s.Close()
			t.Fatal("a fourth session opened")
		} else if !strings.Contains(err.Error(), "no more sessions") {
			t.Errorf("fourth session: %v, want \"no more sessions\"", err)
		}
	}
	if n := len(h.logs.FilterMessage("session refused: too many sessions on this connection (MaxSessions)").All()); n != 2 {
		t.Errorf("%d MaxSessions entries, want 2", n)
	}
	// Another connection has its own sessions.
	listOnce(t, h.mustDial(t, k), "x")

	_ = open[0].Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s, err := c.NewSession()
		if err == nil {
			_ = s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session after one closed: %v", err)
		}
	}
}

// Close also closes the connections that have not logged in.
func TestSSHDCloseClosesPendingConnections(t *testing.T) {
	k := newKey(t)
	h := startSSHD(t, forced("", serveCommand("backup1"), k))
	c := h.rawConn(t, true)
	if err := h.sshd.Close(); err != nil {
		t.Fatal(err)
	}
	readToEOF(t, c, 20*time.Second)
}

func TestNewSSHDRefusesBadLimits(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(forced("", serveCommand("backup1"), newKey(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		l    server.Limits
		want string
	}{
		{"negative grace time", limits(func(l *server.Limits) { l.LoginGraceTime = -time.Second }), "LoginGraceTime"},
		{"no sessions", limits(func(l *server.Limits) { l.MaxSessions = 0 }), "MaxSessions"},
		{"zero MaxStartups", limits(func(l *server.Limits) { l.MaxStartups = server.MaxStartups{} }), "MaxStartups"},
		{"start above full", limits(func(l *server.Limits) { l.MaxStartups = server.MaxStartups{Start: 5, Rate: 30, Full: 4} }), "MaxStartups"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.NewSSHD(server.SSHDConfig{HostKeyFile: filepath.Join(dir, "host_key"), GenerateHostKey: true,
				AuthorizedKeysFile: ak, ParseServe: parseServe, Limits: tt.l})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewSSHD: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
