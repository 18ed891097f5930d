package zfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
)

const (
	// maxStderr is how much of a process's stderr is kept (its tail).
	maxStderr = 64 << 10
	// waitDelay bounds how long Wait waits for stderr to drain after the process exited
	// (a stray grandchild could hold the pipe open).
	waitDelay = 5 * time.Second
	// writeErrWait is how long a failed Write waits for zfs to exit so that it can
	// report zfs's own error instead of a bare "broken pipe".
	writeErrWait = 5 * time.Second
)

// pipeSize is what stream pipes are grown to: zfs send and receive move
// data in large blocks, and a 64 KiB pipe costs a wakeup per 64 KiB.
const pipeSize = 1 << 20

// growPipe grows the pipe f belongs to; failure (an old kernel, a lower
// /proc/sys/fs/pipe-max-size) only costs speed. It goes through
// SyscallConn: f.Fd() would switch the pipe to blocking mode, and Close
// could then no longer unblock a pending Read.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
}

// errClosed is returned by reads and writes on a stream after Close or Abort.
var errClosed = errors.New("zfs stream closed")

// CLI is the real Runner. It executes Bin with an argument list (never through a shell),
// in its own process group, with Pdeathsig SIGKILL, with pipes or /dev/null for stdin,
// stdout and stderr (never the parent's) and LC_ALL=C. Cancelling the context kills the
// process group.
type CLI struct {
	Bin string // path or name of the zfs binary; "" means "zfs"
}

func (c *CLI) bin() string {
	if c == nil || c.Bin == "" {
		return "zfs"
	}
	return c.Bin
}

// cliEnv is the parent's environment with LC_ALL=C.
func cliEnv() []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "LC_ALL=") {
			out = append(out, kv)
		}
	}
	return append(out, "LC_ALL=C")
}

// killGroup sends SIGKILL to the process group led by p (and to p itself).
func killGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	gerr := syscall.Kill(-p.Pid, syscall.SIGKILL)
	perr := p.Kill()
	if gerr != nil && perr != nil {
		return os.ErrProcessDone
	}
	return nil
}

func (c *CLI) command(ctx context.Context, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin(), args...)
	cmd.Env = cliEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// commandError turns the result of Wait into a *CommandError (nil on success).
func commandError(ctx context.Context, args []string, err error, stderr *tailBuffer) error {
	if err == nil {
		return nil
	}
	ce := &CommandError{
		Args:     append([]string(nil), args...),
		ExitCode: -1,
		Stderr:   strings.TrimSpace(stderr.String()),
		Err:      err,
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ce.ExitCode = ee.ExitCode()
	}
	if ctx.Err() != nil {
		ce.Err = ctx.Err()
	}
	return ce
}

// Run runs zfs with args to completion and returns its stdout; stdin is /dev/null.
func (c *CLI) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := c.command(ctx, args)
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, errors.Wrapf(err, "start zfs %s", strings.Join(args, " "))
	}
	err := cmd.Wait()
	return stdout.Bytes(), commandError(ctx, args, err, stderr)
}

// process is a started zfs whose exit is awaited by a goroutine.
type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has been reaped
	err    error         // *CommandError or nil; valid after done
	stderr *tailBuffer
}

func (c *CLI) start(ctx context.Context, args []string, cmd *exec.Cmd, stderr *tailBuffer) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, errors.Wrapf(err, "start zfs %s", strings.Join(args, " "))
	}
	p := &process{cmd: cmd, done: make(chan struct{}), stderr: stderr}
	go func() {
		err := cmd.Wait()
		p.err = commandError(ctx, args, err, stderr)
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill kills the process group unless the process has already been reaped.
func (p *process) kill() {
	if !p.exited() {
		_ = killGroup(p.cmd.Process)
	}
}

// StartOutput starts zfs with its stdout as the returned stream; stdin is /dev/null.
func (c *CLI) StartOutput(ctx context.Context, args ...string) (io.ReadCloser, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, errors.Wrap(err, "pipe")
	}
	growPipe(pr)
	cmd := c.command(ctx, args)
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdout = pw
	cmd.Stderr = stderr
	p, err := c.start(ctx, args, cmd, stderr)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	return &outputStream{p: p, r: pr}, nil
}

// outputStream is zfs's stdout; see Runner.StartOutput.
type outputStream struct {
	p         *process
	r         *os.File
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Read reads zfs's stdout; at its end it returns io.EOF only if zfs exited with status 0.
func (s *outputStream) Read(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	n, err := s.r.Read(b)
	switch {
	case err == io.EOF:
		<-s.p.done
		if s.p.err != nil {
			return n, s.p.err
		}
		return n, io.EOF
	case err != nil && s.closed.Load():
		return n, errClosed
	}
	return n, err
}

// Close kills zfs if it is still running, reaps it and releases the pipe. If zfs had
// already failed on its own, Close returns its *CommandError.
func (s *outputStream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.p.exited() {
			s.closeErr = s.p.err
		} else {
			s.p.kill()
		}
		s.r.Close()
		<-s.p.done
	})
	return s.closeErr
}

// StartInput starts zfs with the returned stream as its stdin; stdout goes to /dev/null.
func (c *CLI) StartInput(ctx context.Context, args ...string) (InputStream, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, errors.Wrap(err, "pipe")
	}
	growPipe(pw)
	cmd := c.command(ctx, args)
	stderr := &tailBuffer{max: maxStderr}
	cmd.Stdin = pr
	cmd.Stderr = stderr
	p, err := c.start(ctx, args, cmd, stderr)
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, err
	}
	return &inputStream{p: p, w: pw}, nil
}

// inputStream is zfs's stdin; see InputStream.
type inputStream struct {
	p         *process
	w         *os.File
	closing   atomic.Bool // Close or Abort was called
	aborted   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	abortOnce sync.Once
}

// Write writes to zfs's stdin. If zfs stopped reading because it failed, Write returns
// zfs's *CommandError.
func (s *inputStream) Write(b []byte) (int, error) {
	if s.closing.Load() {
		return 0, errClosed
	}
	n, err := s.w.Write(b)
	if err == nil {
		return n, nil
	}
	if s.closing.Load() {
		return n, errClosed
	}
	select {
	case <-s.p.done:
		if s.p.err != nil {
			return n, s.p.err
		}
	case <-time.After(writeErrWait):
	}
	return n, errors.Wrapf(err, "write to zfs %s", strings.Join(s.p.cmd.Args[1:], " "))
}

// Close closes zfs's stdin, waits for it to exit and returns its *CommandError, if any.
func (s *inputStream) Close() error {
	if s.aborted.Load() {
		return errors.Wrap(errClosed, "aborted")
	}
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.w.Close()
		<-s.p.done
		s.closeErr = s.p.err
	})
	return s.closeErr
}

// abortGrace is how long Abort waits for zfs to exit on the end of its
// input before it kills it; tests shorten it.
var abortGrace = 10 * time.Second

// Abort ends zfs's input where it is and reaps zfs: zfs receive, seeing its
// stream end early, discards what it received and exits. Only a zfs still
// running abortGrace later is killed. (Killed at once, zfs-fuse's command
// leaves the receive to its daemon, which winds it down later: the target
// of a cut full receive then outlives the run that aborted it, and the
// next run, started at once, found it empty and called it diverged.)
func (s *inputStream) Abort() error {
	s.abortOnce.Do(func() {
		if !s.closing.Load() {
			s.aborted.Store(true)
		}
		s.closing.Store(true)
		s.w.Close()
		t := time.NewTimer(abortGrace)
		defer t.Stop()
		select {
		case <-s.p.done:
		case <-t.C:
			s.p.kill()
			<-s.p.done
		}
	})
	return nil
}

// tailBuffer is an io.Writer that keeps only the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
