package server

import (
	"os"
	"testing"
	"time"
)

// Growing a pipe or asking its size must keep it non-blocking: Close must
// still unblock a pending Read.
func TestPipeHelpersKeepCloseUnblocking(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	growPipe(w)
	if got := pipeCapacity(w); got != pipeSize {
		t.Errorf("pipe capacity %d after growPipe, want %d", got, pipeSize)
	}
	growPipe(r)
	_ = pipeCapacity(r)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = r.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a Read on a pipe the helpers touched")
	}
}
