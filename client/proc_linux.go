package client

import (
	"os"

	"golang.org/x/sys/unix"
)

// setPipeSize asks for a larger pipe buffer, which cuts the syscalls and
// context switches of a bulk stream. Failure (an old kernel, a size above
// /proc/sys/fs/pipe-max-size for an unprivileged user) is harmless.
func setPipeSize(f *os.File, size int) {
	// SyscallConn, not Fd: Fd would put the file back into blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	})
}

// waitExit blocks until the process exits, without reaping it (WNOWAIT),
// and reports true. Until it is reaped, its pid cannot be reused.
func waitExit(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}
