package testenv

import (
	"bytes"
	"net"
	"os"
	"sync"
	"testing"
)

// SharedDir returns a new directory that every local user may read and
// enter (mode 0755, unlike t.TempDir's 0700, under $TMPDIR), for files that
// processes of another user read: removed when the test ends.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "zrep-shared-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("shared directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers,
// e.g. a process's stderr read while it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// CountingListener is a loopback TCP listener that counts the connections
// it accepts, writes "SECRET\n" to each and closes it: a forwarding target
// whose Count must stay 0 when forwarding is refused.
type CountingListener struct {
	net.Listener
	mu       sync.Mutex
	accepted int
}

// NewCountingListener listens on 127.0.0.1 until the test ends.
func NewCountingListener(t testing.TB) *CountingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &CountingListener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.accepted++
			cl.mu.Unlock()
			_, _ = c.Write([]byte("SECRET\n"))
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return cl
}

// Count is how many connections were accepted so far.
func (cl *CountingListener) Count() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.accepted
}
