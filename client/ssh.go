package client

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pkg/errors"
	"go.uber.org/zap"
)

// Timing of the ssh process lifecycle.
const (
	closeGrace   = 2 * time.Second        // Close: from closing ssh's stdin to SIGTERM
	termGrace    = time.Second            // Close and ctx cancel: from SIGTERM to SIGKILL
	diagnoseWait = 2 * time.Second        // Diagnose: how long to wait for ssh to exit
	stderrDrain  = 250 * time.Millisecond // after ssh exited: how long stderr may stay quiet before it counts as drained
	stderrWait   = 10 * time.Second       // Diagnose and Close: at most this long for stderr to be drained
)

// pipeSize is the capacity asked for ssh's stdin and stdout pipes. Linux's
// default of 64 KiB costs a syscall (and a context switch) per 64 KiB of a
// bulk stream; 1 MiB is the default /proc/sys/fs/pipe-max-size.
const pipeSize = 1 << 20

// defaultRemoteCommand is what ssh asks the server to run when
// SSH.RemoteCommand is empty.
var defaultRemoteCommand = []string{"zrep-stdinserver", "serve"}

// How long ssh may take to come up before the endpoint's first byte is due.
// ssh's ConnectTimeout bounds the TCP connection and the key exchange, the
// server's LoginGraceTime (2 minutes by default, in OpenSSH and in the
// embedded sshd) the authentication; setupSlack is for the endpoint to start
// on a busy host. Both ssh bounds end ssh with its own message, which
// Diagnose reports; the first-byte timeout is the last resort behind them.
const (
	defaultConnectTimeout = 30 * time.Second
	loginGraceTime        = 2 * time.Minute
	setupSlack            = 30 * time.Second
)

// defaultOptions follow the user's options on the command line. ssh keeps
// the first value it sees for an option, so a user's option wins over these.
var defaultOptions = []string{
	"BatchMode=yes",          // never prompt: there is nobody to answer
	"ServerAliveInterval=15", // notice a dead peer after about a minute
	"ServerAliveCountMax=4",
	"ConnectTimeout=30",
}

// SSH dials a zrep endpoint by running the system ssh, whose stdin and
// stdout become the stream. On the server, sshd's forced command
// (authorized_keys `command="zrep-stdinserver serve"`) runs the endpoint.
//
// ssh runs with the user's environment, so SSH_AUTH_SOCK, ~/.ssh/config and
// known_hosts apply as they do on the command line, in its own process
// group, so that a terminal's Ctrl-C reaches zrep and not ssh directly.
// Its stderr is never printed: the last 32 KiB are kept for Diagnose and
// each line is logged at Debug level.
type SSH struct {
	// Destination is "user@host" or "host" (or a Host alias of ssh_config).
	// It must not be empty, start with '-', or contain whitespace or
	// control characters.
	Destination string
	// Port is the server's port; 0 leaves it to ssh (ssh_config or 22).
	Port int
	// Identity is a private key file passed with -i; optional.
	Identity string
	// Options are ssh_config options, each "Key=Value", passed with -o.
	// They come before zrep's defaults (BatchMode=yes, ServerAliveInterval=15,
	// ServerAliveCountMax=4, ConnectTimeout=30), so they override them.
	Options []string
	// Bin is the ssh binary; "" means "ssh", looked up in PATH.
	Bin string
	// RemoteCommand is the command ssh asks the server to run; empty means
	// ["zrep-stdinserver", "serve"]. ssh joins the words with spaces and the
	// remote shell splits them again. sshd's forced command overrides it,
	// but sshd logs it (and passes it on in SSH_ORIGINAL_COMMAND).
	RemoteCommand []string
	// Log receives ssh's stderr lines and lifecycle events at Debug level;
	// nil discards them.
	Log *zap.Logger

	// timing overrides the lifecycle timeouts; tests set it.
	timing *timing
}

// timing holds the lifecycle timeouts of one connection.
type timing struct {
	close, term, diagnose time.Duration
}

var _ Dialer = (*SSH)(nil)

// Args returns the argument vector for ssh, without the binary:
//
//	-T -e none -x -a [-p PORT] [-i FILE] [-o USER OPTION]... -o BatchMode=yes
//	-o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o ConnectTimeout=30
//	-- DESTINATION REMOTE COMMAND...
//
// -T disables the pty (which would mangle the binary stream), -e none the
// escape character, -x and -a X11 and agent forwarding. "--" ends the options,
// so that nothing after it is parsed as one. Args is a pure function of s; it
// returns an error for an invalid destination, port, option or command.
func (s *SSH) Args() ([]string, error) {
	if err := checkDestination(s.Destination); err != nil {
		return nil, err
	}
	args := []string{"-T", "-e", "none", "-x", "-a"}
	if s.Port != 0 {
		if s.Port < 1 || s.Port > 65535 {
			return nil, errors.Errorf("ssh %s: port %d is out of range 1-65535", s.Destination, s.Port)
		}
		args = append(args, "-p", strconv.Itoa(s.Port))
	}
	if s.Identity != "" {
		if strings.IndexFunc(s.Identity, unicode.IsControl) >= 0 {
			return nil, errors.Errorf("ssh %s: identity file %q contains a control character", s.Destination, s.Identity)
		}
		args = append(args, "-i", s.Identity)
	}
	for _, o := range s.Options {
		if err := checkOption(o); err != nil {
			return nil, errors.WithMessagef(err, "ssh %s", s.Destination)
		}
		args = append(args, "-o", o)
	}
	for _, o := range defaultOptions {
		args = append(args, "-o", o)
	}
	args = append(args, "--", s.Destination)
	command := s.RemoteCommand
	if len(command) == 0 {
		command = defaultRemoteCommand
	}
	for _, w := range command {
		if w == "" || strings.IndexFunc(w, unicode.IsControl) >= 0 {
			return nil, errors.Errorf("ssh %s: remote command word %q is empty or contains a control character", s.Destination, w)
		}
	}
	return append(args, command...), nil
}

// checkDestination refuses destinations that ssh could read as an option
// or that do not name a single host.
func checkDestination(d string) error {
	switch {
	case d == "":
		return errors.New("ssh: empty destination")
	case !utf8.ValidString(d):
		return errors.Errorf("ssh destination %q: invalid UTF-8", d)
	case strings.IndexFunc(d, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return errors.Errorf("ssh destination %q: contains whitespace or a control character", d)
	}
	host := d
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		// ssh splits user@host at the last '@', as we do.
		if i == 0 {
			return errors.Errorf("ssh destination %q: empty user name", d)
		}
		host = d[i+1:]
	}
	switch {
	case host == "":
		return errors.Errorf("ssh destination %q: empty host", d)
	case strings.HasPrefix(d, "-") || strings.HasPrefix(host, "-"):
		return errors.Errorf("ssh destination %q: must not start with '-'", d)
	}
	return nil
}

// checkOption accepts "Key=Value" where Key is an ssh_config keyword
// (letters and digits) and nothing contains a control character.
func checkOption(o string) error {
	if strings.IndexFunc(o, unicode.IsControl) >= 0 {
		return errors.Errorf("option %q contains a control character", o)
	}
	key, _, ok := strings.Cut(o, "=")
	switch {
	case !ok:
		return errors.Errorf("option %q: want Key=Value", o)
	case key == "":
		return errors.Errorf("option %q: empty key", o)
	case strings.IndexFunc(key, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) >= 0:
		return errors.Errorf("option %q: the key must be letters and digits", o)
	}
	return nil
}

// Dial starts ssh and returns its stdin and stdout as the stream. It returns
// as soon as ssh runs: connection and authentication failures show up as EOF
// on the first Read, which Diagnose then explains. ctx bounds the whole
// session: canceling it kills ssh (SIGTERM, then SIGKILL after a second).
func (s *SSH) Dial(ctx context.Context) (Conn, error) {
	args, err := s.Args()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, errors.Wrapf(err, "ssh %s", s.Destination)
	}
	bin := s.Bin
	if bin == "" {
		bin = "ssh"
	}
	log := s.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("destination", s.Destination))
	setup := s.SetupTimeout()
	tm := timing{close: closeGrace, term: termGrace, diagnose: diagnoseWait}
	if s.timing != nil {
		tm = *s.timing
	}

	// Our own pipes rather than exec's StdinPipe and friends: their ends on
	// our side are non-blocking files in Go's poller, so Close unblocks a
	// pending Read or Write, and cmd.Wait does not wait for copying
	// goroutines (which a grandchild holding stderr would stall).
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	stdinR, stdinW, err := pipe()
	if err != nil {
		return nil, errors.Wrapf(err, "ssh %s: pipe", s.Destination)
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		closeAll()
		return nil, errors.Wrapf(err, "ssh %s: pipe", s.Destination)
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		closeAll()
		return nil, errors.Wrapf(err, "ssh %s: pipe", s.Destination)
	}
	setPipeSize(stdinW, pipeSize)
	setPipeSize(stdoutR, pipeSize)

	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	// The child has its ends now; ours must go, or we would never see EOF.
	_, _, _ = stdinR.Close(), stdoutW.Close(), stderrW.Close()
	if err != nil {
		_, _, _ = stdinW.Close(), stdoutR.Close(), stderrR.Close()
		return nil, errors.Wrapf(err, "ssh %s: starting %s", s.Destination, bin)
	}
	log.Debug("ssh started", zap.String("bin", bin), zap.Strings("args", args), zap.Int("pid", cmd.Process.Pid))

	c := &sshConn{
		dest:       s.Destination,
		log:        log,
		tm:         tm,
		cmd:        cmd,
		pid:        cmd.Process.Pid,
		stdin:      stdinW,
		stdout:     stdoutR,
		stderr:     stderrR,
		stderrDone: make(chan struct{}),
		exited:     make(chan struct{}),
		setup:      setup,
	}
	go c.readStderr()
	go c.wait()
	go c.watch(ctx)
	return c, nil
}

// killReason records why we signalled ssh, if we did.
type killReason int

const (
	notKilled      killReason = iota
	killedByClose             // Close gave up waiting for ssh to exit
	killedByCancel            // the Dial context was canceled
)

// sshConn is a running ssh process seen as a Conn.
type sshConn struct {
	dest string
	log  *zap.Logger
	tm   timing
	cmd  *exec.Cmd
	pid  int // also the process group id
	// setup is how long the endpoint's first byte may take: see SetupTimeout.
	setup time.Duration

	stdin  *os.File // our end of ssh's stdin
	stdout *os.File // our end of ssh's stdout
	stderr *os.File // our end of ssh's stderr

	tail       tailBuffer
	stderrDone chan struct{} // closed when the stderr reader has finished

	mu      sync.Mutex
	exiting bool       // ssh has exited: its pid may be reaped and reused, never signal it
	why     killReason // the first reason we signalled ssh for
	cause   error      // context.Cause of the Dial context, when why == killedByCancel

	exited chan struct{} // closed when ssh is reaped; cmd.ProcessState is set then

	closeOnce sync.Once
	closeErr  error
}

// SetupTimeout is how long the endpoint's first byte may take once ssh
// started: ssh's ConnectTimeout (30 s unless an option says otherwise),
// the server's LoginGraceTime (assumed 2 minutes, the default) and 30 s
// for the endpoint to start. A login slowed down by a busy host then
// succeeds, while a host that does not answer fails after ConnectTimeout
// with ssh's own message.
func (s *SSH) SetupTimeout() time.Duration {
	connect := defaultConnectTimeout
	for _, o := range s.Options {
		key, value, _ := strings.Cut(o, "=")
		if !strings.EqualFold(key, "ConnectTimeout") {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil && n > 0 {
			connect = time.Duration(n) * time.Second
		}
		break // ssh keeps the first value
	}
	return connect + loginGraceTime + setupSlack
}

// SetupTimeout implements SetupTimer.
func (c *sshConn) SetupTimeout() time.Duration { return c.setup }

// Read reads from ssh's stdout.
func (c *sshConn) Read(p []byte) (int, error) { return c.stdout.Read(p) }

// Write writes to ssh's stdin.
func (c *sshConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

// Close ends the session: it closes ssh's stdin, upon which ssh ends the
// session and exits, and our end of its stdout, which unblocks a pending
// Read. If ssh has not exited 2 s later, its process group gets SIGTERM and,
// a second after, SIGKILL. ssh is always reaped before Close returns. Close
// returns an error only if ssh had to be killed; it is idempotent and safe
// to call concurrently with Read, Write and itself.
func (c *sshConn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.shutdown() })
	return c.closeErr
}

func (c *sshConn) shutdown() error {
	_ = c.stdin.Close()
	_ = c.stdout.Close()
	var err error
	if !c.waitExited(c.tm.close) {
		killed := c.kill(syscall.SIGTERM, killedByClose, nil)
		if !c.waitExited(c.tm.term) {
			killed = c.kill(syscall.SIGKILL, killedByClose, nil) || killed
		}
		<-c.exited
		if killed {
			err = errors.Errorf("ssh %s: still running %v after its stdin was closed; killed", c.dest, c.tm.close)
		}
	}
	c.waitStderr()
	_ = c.stderr.Close()
	return err
}

// Diagnose implements Conn. It returns err unchanged when err is nil or
// already an *SSHError, when ssh is still running after 2 s, and when ssh
// exited because Close killed it. When ssh was killed because the Dial
// context was canceled, the error wraps the context's cause instead.
func (c *sshConn) Diagnose(err error) error {
	if err == nil {
		return nil
	}
	var se *SSHError
	if errors.As(err, &se) {
		return err
	}
	if !c.waitExited(c.tm.diagnose) {
		return err
	}
	c.waitStderr()
	c.mu.Lock()
	why, cause := c.why, c.cause
	c.mu.Unlock()
	switch why {
	case killedByCancel:
		return errors.Wrapf(cause, "ssh %s: killed on cancellation (stream: %v)", c.dest, err)
	case killedByClose:
		return err
	}
	return newSSHError(c.dest, c.cmd.ProcessState.ExitCode(), c.tail.String(), err)
}

// wait reaps ssh. It first waits for the exit without reaping, where the
// system allows it: until ssh is reaped its pid, which is also its process
// group id, cannot be reused, so kill never signals a stranger.
func (c *sshConn) wait() {
	waited := waitExit(c.pid)
	if waited {
		c.markExiting()
		c.mu.Lock()
		if c.why != notKilled {
			// A child forked while the group was being signalled escapes
			// that signal; the group id is still ours until ssh is reaped.
			_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		}
		c.mu.Unlock()
	}
	err := c.cmd.Wait()
	if !waited {
		c.markExiting()
	}
	if err != nil {
		c.log.Debug("ssh exited", zap.Error(err))
	} else {
		c.log.Debug("ssh exited", zap.Int("status", 0))
	}
	close(c.exited)
	// A read waiting for bytes only a grandchild could still write gives
	// up after stderrDrain; the reader renews this after each read.
	_ = c.stderr.SetReadDeadline(time.Now().Add(stderrDrain))
}

func (c *sshConn) markExiting() {
	c.mu.Lock()
	c.exiting = true
	c.mu.Unlock()
}

// watch kills ssh when ctx is canceled before ssh exits.
func (c *sshConn) watch(ctx context.Context) {
	select {
	case <-c.exited:
		return
	case <-ctx.Done():
	}
	if !c.kill(syscall.SIGTERM, killedByCancel, context.Cause(ctx)) {
		return
	}
	c.log.Debug("context canceled: ssh killed", zap.Error(context.Cause(ctx)))
	if !c.waitExited(c.tm.term) {
		c.kill(syscall.SIGKILL, killedByCancel, context.Cause(ctx))
	}
}

// kill sends sig to ssh's process group unless ssh has exited; it reports
// whether it did. The first reason recorded wins.
func (c *sshConn) kill(sig syscall.Signal, why killReason, cause error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.exiting {
		return false
	}
	if c.why == notKilled {
		c.why, c.cause = why, cause
	}
	_ = syscall.Kill(-c.pid, sig)
	return true
}

// waitExited waits at most d for ssh to be reaped and reports whether it was.
func (c *sshConn) waitExited(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	}
}

// waitStderr waits until the stderr reader has taken in everything ssh
// wrote: until EOF, or, when a grandchild (a ProxyCommand, say) keeps the
// pipe open after ssh exited, until the pipe stayed empty for stderrDrain
// (see readStderr). stderrWait bounds it, should ssh itself never exit.
func (c *sshConn) waitStderr() {
	t := time.NewTimer(stderrWait)
	defer t.Stop()
	select {
	case <-c.stderrDone:
	case <-t.C:
	}
}

// readStderr keeps the tail of ssh's stderr and logs it line by line. Once
// ssh has exited, nobody but a grandchild can write to the pipe: a read
// deadline, renewed after each read, ends the reading when the pipe stays
// empty for stderrDrain. Everything ssh wrote before it exited is read,
// however long the reading takes on a loaded machine, because the deadline
// only runs out while a read waits for bytes that are not there.
func (c *sshConn) readStderr() {
	defer close(c.stderrDone)
	lines := lineLogger{log: c.log}
	buf := make([]byte, 4096)
	for {
		n, err := c.stderr.Read(buf)
		if n > 0 {
			c.tail.Write(buf[:n])
			lines.Write(buf[:n])
		}
		if err != nil {
			lines.Flush()
			return
		}
		select {
		case <-c.exited:
			_ = c.stderr.SetReadDeadline(time.Now().Add(stderrDrain))
		default:
		}
	}
}

// maxLogLine bounds a logged stderr line; longer lines are logged in pieces.
const maxLogLine = 1024

// lineLogger logs what is written to it line by line at Debug level.
type lineLogger struct {
	log     *zap.Logger
	pending []byte
}

// Write logs the complete lines in p and keeps the rest for later.
func (l *lineLogger) Write(p []byte) {
	l.pending = append(l.pending, p...)
	rest := l.pending
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.emit(rest[:i])
		rest = rest[i+1:]
	}
	for len(rest) >= maxLogLine {
		l.emit(rest[:maxLogLine])
		rest = rest[maxLogLine:]
	}
	l.pending = append(l.pending[:0], rest...)
}

// Flush logs an unterminated last line.
func (l *lineLogger) Flush() {
	if len(l.pending) > 0 {
		l.emit(l.pending)
		l.pending = nil
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	for len(line) > 0 {
		n := min(len(line), maxLogLine)
		l.log.Debug("ssh stderr", zap.String("line", string(line[:n])))
		line = line[n:]
	}
}
