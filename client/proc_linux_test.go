package client

import (
	"context"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// pipeSizeOf returns the capacity of the pipe f is an end of.
func pipeSizeOf(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var size int
	var ferr error
	if err := rc.Control(func(fd uintptr) { size, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		return 0, err
	}
	return size, ferr
}

func TestPipeSize(t *testing.T) {
	c := dialSSH(t, context.Background(), fakeSSH(t, "exec cat"))
	tests := []struct {
		name string
		f    *os.File
	}{
		{name: "stdin", f: c.stdin},
		{name: "stdout", f: c.stdout},
	}
	for _, tt := range tests {
		got, err := pipeSizeOf(tt.f)
		if err != nil {
			t.Fatalf("%s: F_GETPIPE_SZ: %v", tt.name, err)
		}
		if got != pipeSize {
			t.Errorf("%s pipe holds %d bytes, want %d (is /proc/sys/fs/pipe-max-size lower?)", tt.name, got, pipeSize)
		}
	}
}
