package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/pkg/errors"
	"go.uber.org/zap"
	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/authkeys"
)

// SSHDConfig configures the embedded SSH server.
type SSHDConfig struct {
	// HostKeyFile is the server's private host key (OpenSSH format).
	HostKeyFile string
	// GenerateHostKey creates an ed25519 HostKeyFile when it does not exist.
	GenerateHostKey bool
	// AuthorizedKeysFile lists the keys that may log in, in OpenSSH's
	// format. Only lines with a command="... serve ..." option are usable.
	// The file is read again for every login, as sshd does.
	AuthorizedKeysFile string
	// ParseServe turns the words of a forced command into a serve
	// configuration, exactly as the serve subcommand parses its flags.
	ParseServe func(args []string) (ServeConfig, error)
	// NewEndpoint builds the endpoint for a session; nil means NewEndpoint.
	NewEndpoint func(cfg ServeConfig, log *zap.Logger) (*Endpoint, error)
	// IdleTimeout closes a connection that exchanged nothing for this long.
	// Default 15 minutes: more than the protocol's own idle timeout, so
	// that one ends sessions in order first.
	IdleTimeout time.Duration
	// Limits bound connections before login and sessions per connection;
	// the zero value means DefaultLimits.
	Limits Limits
	// Version is the software version sent in the protocol's HELLO.
	Version string
	Log     *zap.Logger
}

// SSHD is the zrep endpoint behind an embedded SSH server: it accepts only
// public keys whose authorized_keys line forces a `serve` command, and runs
// that serve configuration in-process for the session, whatever command the
// client asked for. It refuses passwords, keyboard-interactive logins, port
// and agent forwarding, PTYs, shells, subsystems and environment requests.
type SSHD struct {
	cfg      SSHDConfig
	srv      *ssh.Server
	log      *zap.Logger
	hostFP   string
	startups *startups

	dropMu     sync.Mutex
	dropped    int       // connections refused by MaxStartups since dropLogged
	dropLogged time.Time // when the last refusal was logged
}

// ctxVerifiedKey holds the marshalled key the client proved it holds.
type ctxKey string

const ctxVerifiedKey ctxKey = "zrep-verified-key"

// NewSSHD loads (or generates) the host key and checks the authorized_keys
// file once, so that a broken configuration fails at start.
func NewSSHD(cfg SSHDConfig) (*SSHD, error) {
	if cfg.ParseServe == nil {
		return nil, errors.New("sshd: ParseServe is required")
	}
	if cfg.NewEndpoint == nil {
		cfg.NewEndpoint = NewEndpoint
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if err := cfg.Limits.validate(); err != nil {
		return nil, err
	}
	signer, err := loadHostKey(cfg.HostKeyFile, cfg.GenerateHostKey, cfg.Log)
	if err != nil {
		return nil, err
	}
	keys, err := authkeys.Load(cfg.AuthorizedKeysFile)
	if err != nil {
		return nil, err
	}
	if keys.Len() == 0 {
		cfg.Log.Warn("authorized_keys has no keys: nobody can log in", zap.String("file", cfg.AuthorizedKeysFile))
	}
	d := &SSHD{cfg: cfg, log: cfg.Log, hostFP: gossh.FingerprintSHA256(signer.PublicKey()), startups: newStartups(cfg.Limits)}
	d.srv = &ssh.Server{
		Version:          "zrep",
		IdleTimeout:      cfg.IdleTimeout,
		Handler:          d.handleSession,
		PublicKeyHandler: d.allowKey,
		ConnCallback:     d.admit,
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			return &gossh.ServerConfig{
				// Runs only for the key the client proved it holds (never for
				// keys it merely offered); the session checks against it.
				VerifiedPublicKeyCallback: func(_ gossh.ConnMetadata, key gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
					ctx.SetValue(ctxVerifiedKey, key.Marshal())
					return perms, nil
				},
				// Called with a nil error only when the login succeeded: the
				// connection then no longer counts for MaxStartups, and its
				// LoginGraceTime stops.
				AuthLogCallback: func(_ gossh.ConnMetadata, _ string, err error) {
					if st := stateOf(ctx); err == nil && st != nil {
						st.conn.loggedIn()
					}
				},
			}
		},
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": d.sessionChannel},
		// No forwarding handlers: port and agent forwarding are refused.
	}
	d.srv.AddHostKey(signer)
	return d, nil
}

// HostKeyFingerprint is the SHA256 fingerprint of the host key.
func (d *SSHD) HostKeyFingerprint() string { return d.hostFP }

// Serve accepts connections on l until Close.
func (d *SSHD) Serve(l net.Listener) error {
	d.log.Info("embedded sshd listening", zap.Stringer("addr", l.Addr()), zap.String("host_key", d.hostFP))
	err := d.srv.Serve(l)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting connections and closes the open ones, logged in
// or not.
func (d *SSHD) Close() error {
	d.startups.closeAll()
	return d.srv.Close()
}

// admit is the first thing done with a new connection, before the SSH
// handshake: MaxStartups may refuse it, as sshd does, with a line saying
// why; otherwise it counts as not logged in until it logs in or closes,
// and LoginGraceTime starts.
func (d *SSHD) admit(ctx ssh.Context, conn net.Conn) net.Conn {
	remote := conn.RemoteAddr().String()
	pc := d.startups.admit(conn, func() {
		d.log.Info("connection closed: not logged in within the login grace time",
			zap.String("remote", remote), zap.Duration("login_grace_time", d.cfg.Limits.LoginGraceTime))
	})
	if pc == nil {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(conn, dropMessage)
		d.logDrop(remote)
		return nil // gliderlabs closes it
	}
	ctx.SetValue(ctxConnState, &connState{conn: pc})
	return pc
}

// logDrop logs a connection refused by MaxStartups, at most one line every
// 10 seconds under a flood, with the number refused since the last one.
func (d *SSHD) logDrop(remote string) {
	d.dropMu.Lock()
	defer d.dropMu.Unlock()
	d.dropped++
	if time.Since(d.dropLogged) < 10*time.Second {
		return
	}
	d.log.Warn("connection refused: too many connections not logged in yet (MaxStartups)",
		zap.String("remote", remote), zap.Stringer("max_startups", d.cfg.Limits.MaxStartups), zap.Int("refused", d.dropped))
	d.dropped, d.dropLogged = 0, time.Now()
}

// lookup reads authorized_keys and finds key's usable entry.
func (d *SSHD) lookup(key gossh.PublicKey) (*authkeys.Entry, error) {
	keys, err := authkeys.Load(d.cfg.AuthorizedKeysFile)
	if err != nil {
		return nil, err
	}
	e, ok := keys.Lookup(key)
	if !ok {
		return nil, errors.New("key not in authorized_keys")
	}
	if e.Command == "" {
		return nil, errors.Errorf("authorized_keys line %d has no command=\"... serve ...\" option", e.Line)
	}
	return e, nil
}

// allowKey is the public key check: a plain key (never a certificate),
// known, with a forced command, from an address from= allows.
func (d *SSHD) allowKey(ctx ssh.Context, key ssh.PublicKey) bool {
	log := d.log.With(zap.String("fingerprint", gossh.FingerprintSHA256(key)), zap.String("remote", ctx.RemoteAddr().String()))
	if authkeys.IsCertificate(key) {
		// Checked first, whatever authorized_keys says: a certificate's
		// validity and critical options are not enforced here.
		log.Info("key refused", zap.Error(errors.Errorf("%s: certificates are not supported", key.Type())))
		return false
	}
	e, err := d.lookup(key)
	if err != nil {
		log.Info("key refused", zap.Error(err))
		return false
	}
	if e.HasFrom && (e.From == "" || !fromAllows(e.From, ctx.RemoteAddr())) {
		log.Info("key refused: client address does not match from=", zap.String("from", e.From), zap.Int("line", e.Line))
		return false
	}
	return true
}

// handleSession runs the key's forced serve command for the session.
func (d *SSHD) handleSession(s ssh.Session) {
	key := s.PublicKey()
	fp := "none"
	if key != nil {
		fp = gossh.FingerprintSHA256(key)
	}
	log := d.log.With(zap.String("fingerprint", fp), zap.String("remote", s.RemoteAddr().String()))
	defer func() {
		if v := recover(); v != nil {
			log.Error("session panicked", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			_ = s.Exit(1)
		}
	}()
	cfg, err := d.sessionConfig(s, key)
	if err != nil {
		log.Warn("session refused", zap.Error(err))
		fmt.Fprintf(s.Stderr(), "zrep: session refused: %v\n", err)
		_ = s.Exit(ExitConfig)
		return
	}
	log = log.With(zap.String("identity", cfg.Identity))
	log.Info("session start", zap.String("requested_command", s.RawCommand()))
	ep, err := d.cfg.NewEndpoint(cfg, log)
	if err != nil {
		log.Error("cannot serve", zap.Error(err))
		fmt.Fprintf(s.Stderr(), "zrep: cannot serve: %v\n", err)
		_ = s.Exit(ExitConfig)
		return
	}
	start := time.Now()
	err = ep.Serve(s.Context(), newSessionStream(s), d.cfg.Version)
	code := ExitCode(err)
	log.Info("session end", zap.Int("exit_status", code), zap.Duration("took", time.Since(start)), zap.NamedError("reason", err))
	if err != nil {
		fmt.Fprintf(s.Stderr(), "zrep: %v\n", err)
	}
	_ = s.CloseWrite()
	_ = s.Exit(code)
}

// sessionConfig derives the serve configuration from the key the client
// proved it holds, looked up again (not from what the auth callbacks saw).
func (d *SSHD) sessionConfig(s ssh.Session, key gossh.PublicKey) (ServeConfig, error) {
	verified, _ := s.Context().Value(ctxVerifiedKey).([]byte)
	if key == nil || !bytes.Equal(verified, key.Marshal()) {
		return ServeConfig{}, errors.New("no verified public key for this session")
	}
	e, err := d.lookup(key)
	if err != nil {
		return ServeConfig{}, err
	}
	args, err := authkeys.CommandArgs(e.Command)
	if err != nil {
		return ServeConfig{}, errors.Wrapf(err, "authorized_keys line %d", e.Line)
	}
	if len(args) < 2 || args[1] != "serve" {
		return ServeConfig{}, errors.Errorf("authorized_keys line %d: the forced command is not `zrep-stdinserver serve ...`", e.Line)
	}
	cfg, err := d.cfg.ParseServe(args[2:])
	return cfg, errors.Wrapf(err, "authorized_keys line %d", e.Line)
}

// sessionStream is the protocol stream of a session. Its Close must unblock
// a pending Read (the rpc layer relies on that, e.g. for the handshake
// timeout) without closing the channel's output: the session handler still
// writes the error to stderr and sends the exit status afterwards, which a
// closed channel (or even an EOF) would lose. So reads go through a pipe
// that Close closes, and the channel itself is left to the handler.
type sessionStream struct {
	s  ssh.Session
	pr *io.PipeReader
}

func newSessionStream(s ssh.Session) *sessionStream {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, s)
		_ = pw.CloseWithError(err) // nil: EOF for the reader
	}()
	return &sessionStream{s: s, pr: pr}
}

func (ss *sessionStream) Read(p []byte) (int, error)  { return ss.pr.Read(p) }
func (ss *sessionStream) Write(p []byte) (int, error) { return ss.s.Write(p) }
func (ss *sessionStream) Close() error                { return ss.pr.Close() }

// sessionChannel accepts a session channel while the connection has fewer
// than MaxSessions open, as sshd does, and refuses it otherwise. The
// session passes on only "exec" requests: PTY, shell, env, subsystem,
// agent forwarding and every other request is refused before gliderlabs
// parses it (its pty-req parser can be crashed by a crafted length,
// gliderlabs/ssh PR #262).
func (d *SSHD) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	st := stateOf(ctx)
	if st == nil || !st.sessions.acquire(d.cfg.Limits.MaxSessions) {
		d.log.Info("session refused: too many sessions on this connection (MaxSessions)",
			zap.String("remote", conn.RemoteAddr().String()), zap.Int("max_sessions", d.cfg.Limits.MaxSessions))
		_ = newChan.Reject(gossh.Prohibited, "no more sessions")
		return
	}
	defer st.sessions.release()
	// Returns once the channel is closed.
	ssh.DefaultSessionHandler(srv, conn, execOnly{newChan}, ctx)
}

type execOnly struct{ gossh.NewChannel }

func (e execOnly) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := e.NewChannel.Accept()
	if err != nil {
		return nil, nil, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		for req := range reqs {
			if req.Type == "exec" {
				out <- req
				continue
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	return ch, out, nil
}

// loadHostKey reads the host key, generating an ed25519 one when asked to.
func loadHostKey(path string, generate bool, log *zap.Logger) (gossh.Signer, error) {
	if path == "" {
		return nil, errors.New("sshd: --host-key FILE is required")
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && generate {
		if data, err = generateHostKey(path); err == nil {
			log.Info("generated a new ed25519 host key", zap.String("file", path))
		}
	}
	if err != nil {
		return nil, errors.Wrapf(err, "host key %s", path)
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, errors.Wrapf(err, "host key %s", path)
	}
	return signer, nil
}

func generateHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "zrep host key")
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// O_EXCL: never overwrite a key that appeared meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	pub, _ := gossh.NewPublicKey(priv.Public())
	return data, os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(pub), 0o644)
}
