package golden

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	failed []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...) }

func TestAssert(t *testing.T) {
	tests := []struct {
		name, file, got string
		want            string // in the failure; "" for none
	}{
		{"equal", "example.golden", "same\n", ""},
		{"different", "example.golden", "other\n", "output differs from testdata/example.golden"},
		{"missing", "missing.golden", "x", "go test -update creates it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			Assert(r, tt.file, []byte(tt.got))
			switch {
			case tt.want == "" && len(r.failed) > 0:
				t.Errorf("failed: %v", r.failed)
			case tt.want != "" && (len(r.failed) != 1 || !strings.Contains(r.failed[0], tt.want)):
				t.Errorf("failures %q, want one saying %q", r.failed, tt.want)
			}
		})
	}
}
