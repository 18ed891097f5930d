package zfs

import (
	"context"
	"io"
)

// Runner runs the zfs binary; tests substitute a fake.
type Runner interface {
	// Run runs zfs with args to completion and returns its stdout.
	// A non-zero exit returns a *CommandError.
	Run(ctx context.Context, args ...string) ([]byte, error)
	// StartOutput starts zfs and returns its stdout as a stream (for zfs send).
	// Read returns io.EOF only after zfs exited with status 0; a non-zero exit makes
	// Read return the *CommandError instead of EOF, so a truncated stream never looks
	// complete. Close kills (SIGKILL) and reaps zfs if still running; Close is safe
	// concurrently with a blocked Read (it unblocks it) and safe to call twice.
	StartOutput(ctx context.Context, args ...string) (io.ReadCloser, error)
	// StartInput starts zfs and returns its stdin (for zfs receive).
	StartInput(ctx context.Context, args ...string) (InputStream, error)
}

// InputStream feeds a zfs process's stdin.
type InputStream interface {
	io.Writer
	// Close closes stdin, waits for zfs to exit and returns a *CommandError on non-zero exit.
	Close() error
	// Abort ends zfs's input early and reaps zfs (the stream was cut), killing it if it
	// does not exit by itself; zfs receive is atomic, so the target stays as it was.
	// Safe after Close, and twice.
	Abort() error
}
