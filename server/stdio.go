package server

import (
	"os"

	"github.com/pkg/errors"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// pipeSize is what the protocol pipes are grown to when they are pipes:
// fewer, larger reads and writes for bulk streams.
const pipeSize = 1 << 20

// Stdio is the protocol stream made of the process's original stdin and
// stdout; see TakeStdio.
type Stdio struct {
	in, out *os.File
}

// TakeStdio reserves the process's stdin and stdout for the protocol and
// returns them as one stream. Afterwards nothing else can write to the
// protocol by accident: file descriptor 1 and os.Stdout point at stderr (a
// stray fmt.Println, or a child that inherits stdout, lands in the log), and
// file descriptor 0 reads /dev/null. The stream's descriptors are
// non-blocking, so Close unblocks a pending Read or Write.
func TakeStdio() (*Stdio, error) {
	if term.IsTerminal(0) || term.IsTerminal(1) {
		return nil, errors.New("stdin or stdout is a terminal: serve speaks a binary protocol and is meant to be started by sshd (see authorized_keys.example)")
	}
	in, err := takeFD(0, "protocol-in")
	if err != nil {
		return nil, err
	}
	out, err := takeFD(1, "protocol-out")
	if err != nil {
		_ = in.Close()
		return nil, err
	}
	if err := unix.Dup2(2, 1); err != nil {
		return nil, errors.Wrap(err, "pointing stdout at stderr")
	}
	os.Stdout = os.Stderr
	devnull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errors.Wrap(err, "opening /dev/null")
	}
	if err := unix.Dup2(devnull, 0); err != nil {
		return nil, errors.Wrap(err, "pointing stdin at /dev/null")
	}
	_ = unix.Close(devnull)
	os.Stdin = os.NewFile(0, "/dev/null")
	growPipe(in)
	growPipe(out)
	return &Stdio{in: in, out: out}, nil
}

// takeFD duplicates fd into a new close-on-exec descriptor. Pipes and
// sockets (what sshd gives a forced command) are made non-blocking, so that
// they join the runtime's poller; other kinds of file are left as they are,
// since the flag would also change them for every other process sharing them.
func takeFD(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, errors.Wrapf(err, "duplicating file descriptor %d", fd)
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err == nil {
		if mode := st.Mode & unix.S_IFMT; mode == unix.S_IFIFO || mode == unix.S_IFSOCK {
			if err := unix.SetNonblock(nfd, true); err != nil {
				_ = unix.Close(nfd)
				return nil, errors.Wrapf(err, "making file descriptor %d non-blocking", fd)
			}
		}
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// Read reads protocol bytes from the original stdin.
func (s *Stdio) Read(p []byte) (int, error) { return s.in.Read(p) }

// Write writes protocol bytes to the original stdout.
func (s *Stdio) Write(p []byte) (int, error) { return s.out.Write(p) }

// ChunkSize is the capacity of stdout when it is a pipe (rpc.ChunkSizer).
func (s *Stdio) ChunkSize() int { return pipeCapacity(s.out) }

// Close closes both directions.
func (s *Stdio) Close() error {
	werr := s.out.Close()
	rerr := s.in.Close()
	if werr != nil {
		return werr
	}
	return rerr
}
