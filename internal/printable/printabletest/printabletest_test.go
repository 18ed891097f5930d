package printabletest

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that keeps its failures.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func TestLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		out   string
		want  int
		fails int
	}{
		{"printable", "plan a -> b: full\nsummary: 1 replicated\n", 2, 0},
		{"a line too many", "a\nb\nc\n", 2, 1},
		{"no final newline", "a\nb", 2, 1},
		{"an escape sequence", "a\x1b[2J\nb\n", 2, 1},
		{"a carriage return and a C1 control", "a\rb\nc\u009b\n", 2, 2},
		{"a tab, a bidi override, a byte that is not UTF-8", "a\tb\nc\u202e\n\x9b\n", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			Lines(r, tc.out, tc.want)
			if len(r.failures) != tc.fails {
				t.Errorf("%d failures, want %d: %q", len(r.failures), tc.fails, r.failures)
			}
		})
	}
}
