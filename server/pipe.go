package server

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeCapacity is the capacity of f if it is a pipe, else 0.
func pipeCapacity(f *os.File) int {
	n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return 0
	}
	return n
}

// growPipe grows f to pipeSize if it is a pipe; other files refuse, harmlessly.
func growPipe(f *os.File) {
	_, _ = unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, pipeSize)
}
