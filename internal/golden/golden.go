// Package golden compares a test's output with a file in testdata/ (a
// golden file), for output people read: help texts, reports, metrics.
// `go test -update` rewrites the files after an intended change.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Assert fails t unless got equals testdata/NAME; with -update it first
// writes got there.
func Assert(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update after an intended change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
