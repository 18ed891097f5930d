package zfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"
)

// script writes an executable shell script standing in for zfs and returns a CLI running it.
func script(t *testing.T, body string) *CLI {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fakezfs")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return &CLI{Bin: path}
}

// gone reports whether pid has exited (it may linger as a zombie of another parent).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCLIRun(t *testing.T) {
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	c := script(t, `printf '%s|' "$@"; printf 'LC_ALL=%s|' "$LC_ALL"; cat; echo end`)
	out, err := c.Run(ctx, "get", "-H", "a b", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "get|-H|a b||LC_ALL=C|end\n"; string(out) != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
}

func TestCLIRunError(t *testing.T) {
	c := script(t, `echo partial; echo "  cannot open 'p/x': dataset does not exist  " >&2; exit 3`)
	out, err := c.Run(ctx, "list", "p/x")
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CommandError", err)
	}
	if ce.ExitCode != 3 || ce.Stderr != "cannot open 'p/x': dataset does not exist" || strings.Join(ce.Args, " ") != "list p/x" {
		t.Errorf("CommandError %+v", ce)
	}
	if want := "zfs list p/x: exit status 3: cannot open 'p/x': dataset does not exist"; err.Error() != want {
		t.Errorf("message %q\nwant    %q", err, want)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Error("not ErrNotFound")
	}
	if string(out) != "partial\n" {
		t.Errorf("stdout %q", out)
	}
}

func TestCLIStartFailure(t *testing.T) {
	c := &CLI{Bin: "/nonexistent/zfs"}
	_, err := c.Run(ctx, "list")
	var ce *CommandError
	if err == nil || errors.As(err, &ce) {
		t.Errorf("Run: %v", err)
	}
	if _, err := c.StartOutput(ctx, "send", "p@s"); err == nil {
		t.Error("StartOutput: no error")
	}
	if _, err := c.StartInput(ctx, "receive", "p/a"); err == nil {
		t.Error("StartInput: no error")
	}
	if (&CLI{}).bin() != "zfs" || (*CLI)(nil).bin() != "zfs" {
		t.Error("default binary is not zfs")
	}
}

func TestCLIStderrTail(t *testing.T) {
	c := script(t, `i=0; while [ $i -lt 2000 ]; do echo "line $i of noise, noise, noise, noise, noise, noise" >&2; i=$((i+1)); done; echo LAST >&2; exit 1`)
	_, err := c.Run(ctx)
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	if len(ce.Stderr) > maxStderr || len(ce.Stderr) < maxStderr-100 || !strings.HasSuffix(ce.Stderr, "LAST") {
		t.Errorf("stderr of %d bytes ending %q", len(ce.Stderr), ce.Stderr[len(ce.Stderr)-10:])
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ij", "0123456789AB", "x"} {
		tb.Write([]byte(s))
	}
	if got := tb.String(); got != "56789ABx" {
		t.Errorf("tail %q", got)
	}
}

func TestCLIRunContext(t *testing.T) {
	c := script(t, `exec sleep 1000`)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Run(cctx, "list")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCLIStartOutput(t *testing.T) {
	c := script(t, `head -c 100000 /dev/zero; echo -n tail`)
	rc, err := c.StartOutput(ctx, "send", "p/a@s")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil || len(data) != 100004 || !bytes.HasSuffix(data, []byte("tail")) {
		t.Errorf("read %d bytes, %v", len(data), err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCLIStartOutputFailure(t *testing.T) {
	c := script(t, `echo -n partial; echo "WARNING: could not send p/a@x: does not exist" >&2; exit 1`)
	rc, err := c.StartOutput(ctx, "send", "p/a@x")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	var ce *CommandError
	if string(data) != "partial" || !errors.As(err, &ce) || ce.ExitCode != 1 || !errors.Is(err, ErrNotFound) {
		t.Errorf("read %q, %v", data, err)
	}
	// Read keeps failing; it never turns into EOF.
	if _, err := rc.Read(make([]byte, 10)); err == io.EOF || err == nil {
		t.Errorf("second Read: %v", err)
	}
	if err := rc.Close(); !errors.As(err, &ce) {
		t.Errorf("Close: %v, want the CommandError", err)
	}
}

func TestCLIStartOutputCloseUnblocksRead(t *testing.T) {
	// The child sleeps in the background, in the same process group, holding stdout.
	c := script(t, `sleep 1000 & echo $!; wait`)
	rc, err := c.StartOutput(ctx, "send", "p/a@s")
	if err != nil {
		t.Fatal(err)
	}
	s := rc.(*outputStream)
	leader := s.p.cmd.Process.Pid
	buf := make([]byte, 100)
	n, err := rc.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", buf[:n], err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := rc.Read(buf)
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- rc.Close() }()
	select {
	case err := <-readErr:
		if err == nil || err == io.EOF {
			t.Errorf("blocked Read returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitGone(t, leader)
	waitGone(t, child)
}

func TestCLIStartOutputContext(t *testing.T) {
	c := script(t, `echo -n x; exec sleep 1000`)
	cctx, cancel := context.WithCancel(ctx)
	rc, err := c.StartOutput(cctx, "send", "p/a@s")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = io.ReadAll(rc)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestCLIStartInput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "received")
	c := script(t, `cat > "$2"`)
	in, err := c.StartInput(ctx, "receive", out)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 100000)
	if _, err := in.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := in.Abort(); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("received %d bytes, %v", len(got), err)
	}
	if _, err := in.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestCLIStartInputFailure(t *testing.T) {
	c := script(t, `head -c 10 >/dev/null; echo "cannot receive: invalid stream" >&2; exit 4`)
	in, err := c.StartInput(ctx, "receive", "p/a")
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	chunk := make([]byte, 64<<10)
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = in.Write(chunk)
	}
	var ce *CommandError
	if !errors.As(werr, &ce) || ce.ExitCode != 4 {
		t.Errorf("Write error %v, want the CommandError", werr)
	}
	if err := in.Close(); !errors.As(err, &ce) || !strings.Contains(err.Error(), "invalid stream") {
		t.Errorf("Close: %v", err)
	}
}

// Abort ends zfs's input, and a zfs that exits on it is not killed: it
// finished on its own (zfs receive discarding what it received).
func TestCLIStartInputAbortEndsInput(t *testing.T) {
	c := script(t, `cat >/dev/null; echo "cannot receive: invalid backup stream" >&2; touch "$0.ended"; exit 1`)
	in, err := c.StartInput(ctx, "receive", "p/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("part of a stream")); err != nil {
		t.Fatal(err)
	}
	if err := in.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	if _, err := os.Stat(c.Bin + ".ended"); err != nil {
		t.Errorf("zfs did not finish on the end of its input: %v", err)
	}
}

func TestCLIStartInputAbort(t *testing.T) {
	defer func(g time.Duration) { abortGrace = g }(abortGrace)
	abortGrace = 100 * time.Millisecond
	c := script(t, `exec sleep 1000`) // never reads, never exits: killed
	in, err := c.StartInput(ctx, "receive", "p/a")
	if err != nil {
		t.Fatal(err)
	}
	pid := in.(*inputStream).p.cmd.Process.Pid
	writeErr := make(chan error, 1)
	go func() {
		_, err := in.Write(make([]byte, 4<<20)) // more than a pipe holds: blocks
		writeErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := in.Abort(); err != nil {
		t.Errorf("Abort: %v", err)
	}
	select {
	case err := <-writeErr:
		if err == nil {
			t.Error("blocked Write succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Abort did not unblock Write")
	}
	waitGone(t, pid)
	if err := in.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := in.Close(); err == nil {
		t.Error("Close after Abort reported success")
	}
}

func TestCLIStartInputContext(t *testing.T) {
	c := script(t, `exec sleep 1000`)
	cctx, cancel := context.WithCancel(ctx)
	in, err := c.StartInput(cctx, "receive", "p/a")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := in.Close(); !errors.Is(err, context.Canceled) {
		t.Errorf("Close: %v", err)
	}
}
