// Package printabletest checks output that must reach a terminal as text:
// nothing in it that package printable would replace.
package printabletest

import (
	"strings"
	"testing"

	"github.com/zrep/zrep/internal/printable"
)

// String fails t if s holds a character printable.String replaces (a
// control or format character, a tab, a newline) or bytes that are not
// UTF-8.
func String(t testing.TB, s string) {
	t.Helper()
	if clean := printable.String(s); clean != s {
		t.Errorf("not printable as it is: %q (printable: %q)", s, clean)
	}
}

// Lines fails t unless out is want lines, each ended by a newline and
// printable as String checks it.
func Lines(t testing.TB, out string, want int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != want || !strings.HasSuffix(out, "\n") {
		t.Errorf("%d lines, want %d, each ended by a newline:\n%s", len(lines), want, out)
	}
	for _, l := range lines {
		String(t, l)
	}
}
