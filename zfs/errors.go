package zfs

import (
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// ErrNotFound matches (errors.Is) an error about a dataset, snapshot or bookmark that does not exist.
var ErrNotFound = errors.New("dataset does not exist")

// ErrNoSpace matches (errors.Is) an error of zfs running out of space: the
// pool is full, or a quota on the dataset or one of its parents is reached.
var ErrNoSpace = errors.New("out of space")

// ErrPermission matches (errors.Is) an error of zfs refusing an operation
// for want of permission: an unprivileged user without the `zfs allow`
// permission it needs.
var ErrPermission = errors.New("permission denied")

// ErrUnsupported matches (errors.Is) a request for a feature the installed zfs lacks.
var ErrUnsupported = errors.New("not supported by this zfs")

// CommandError reports a zfs process that exited with a non-zero status (or was killed).
// Error() reads like
// `zfs send -i pool/a@s1 pool/a@s2: exit status 1: cannot open 'pool/a@s2': dataset does not exist`.
type CommandError struct {
	Args     []string // arguments after "zfs"
	ExitCode int      // exit status, -1 if killed by a signal
	Stderr   string   // the last 64 KiB of its stderr, trimmed
	Err      error    // the underlying error: *exec.ExitError, or the context's error if it was cancelled
}

// Error describes the command, how it failed and what it said.
func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString("zfs")
	for _, a := range e.Args {
		b.WriteByte(' ')
		b.WriteString(quoteArg(a))
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("exit status ")
		b.WriteString(strconv.Itoa(e.ExitCode))
	}
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *CommandError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true when zfs said that the object
// does not exist, errors.Is(err, ErrNoSpace) when it ran out of space, and
// errors.Is(err, ErrPermission) when it was refused for want of permission.
func (e *CommandError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return isNotFound(e.Stderr)
	case ErrNoSpace:
		return strings.Contains(e.Stderr, "out of space") || strings.Contains(e.Stderr, "quota exceeded")
	case ErrPermission:
		return strings.Contains(e.Stderr, "permission denied")
	}
	return false
}

// isNotFound recognises zfs's messages about missing datasets, snapshots and bookmarks.
func isNotFound(stderr string) bool {
	switch {
	case strings.Contains(stderr, "dataset does not exist"),
		strings.Contains(stderr, "could not find any snapshots to destroy"):
		return true
	case strings.Contains(stderr, "no such pool or dataset"):
		// OpenZFS about a missing bookmark: "cannot open 'pool/a#b': no such pool or dataset"
		return true
	case strings.Contains(stderr, "could not send") && strings.Contains(stderr, "does not exist"):
		// zfs-fuse: "WARNING: could not send pool/a@x: does not exist"
		return true
	case strings.Contains(stderr, "incremental source") && strings.Contains(stderr, "does not exist"):
		// "cannot send 'pool/a@s2': incremental source (@x) does not exist"
		return true
	}
	return false
}

// isBusy recognises zfs's "dataset is busy" and "pool is busy" answers.
func isBusy(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && strings.Contains(ce.Stderr, "is busy")
}

// quoteArg quotes an argument for messages when it is not plainly readable.
func quoteArg(a string) string {
	if a == "" {
		return "''"
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !isAlnum(c) && strings.IndexByte("-_.:/@#%=,+", c) < 0 {
			return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return a
}

// wrapCmd adds context to err unless it is a *CommandError, which already names the command.
func wrapCmd(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ce *CommandError
	if errors.As(err, &ce) {
		return errors.WithStack(err)
	}
	return errors.Wrapf(err, format, args...)
}
