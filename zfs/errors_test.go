package zfs

import (
	"testing"

	"github.com/pkg/errors"
)

// TestCommandErrorIs classifies what zfs said, as zfs-fuse and OpenZFS
// 2.1/2.3 said it in the lab.
func TestCommandErrorIs(t *testing.T) {
	tests := []struct {
		stderr string
		want   error // nil: none of the classes
	}{
		{"cannot open 'b/a': dataset does not exist", ErrNotFound},
		{"cannot open 'b/a#x': no such pool or dataset", ErrNotFound},
		{"could not find any snapshots to destroy; check snapshot names.", ErrNotFound},
		{"cannot send 'b/a@s2': incremental source (@x) does not exist", ErrNotFound},
		{"cannot receive incremental stream: destination b/a space quota exceeded.", ErrNoSpace},
		{"cannot receive new filesystem stream: out of space", ErrNoSpace},
		{"cannot destroy 'exp/sink/p1/d': permission denied", ErrPermission},
		{"cannot receive incremental stream: permission denied", ErrPermission},
		{"cannot set property for 'exp/sink': permission denied", ErrPermission},
		{"cannot receive new filesystem stream: destination 'b/a' exists", nil},
		{"", nil},
	}
	for _, tt := range tests {
		err := errors.WithStack(&CommandError{Args: []string{"x"}, ExitCode: 1, Stderr: tt.stderr})
		for _, class := range []error{ErrNotFound, ErrNoSpace, ErrPermission} {
			if got, want := errors.Is(err, class), class == tt.want; got != want {
				t.Errorf("%q: errors.Is(%v) = %v, want %v", tt.stderr, class, got, want)
			}
		}
	}
}
