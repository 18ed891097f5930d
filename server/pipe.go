package server

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeCapacity is the capacity of f if it is a pipe, else 0.
func pipeCapacity(f *os.File) int {
	n := 0
	control(f, func(fd uintptr) {
		if v, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil {
			n = v
		}
	})
	return n
}

// growPipe grows f to pipeSize if it is a pipe; other files refuse, harmlessly.
func growPipe(f *os.File) {
	control(f, func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
}

// control runs fn on f's descriptor without f.Fd(), which would switch a
// non-blocking pipe to blocking mode (Close could then no longer unblock a
// pending Read or Write).
func control(f *os.File, fn func(fd uintptr)) {
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(fn)
	}
}
