package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zrep/zrep/replication"
)

// Lines of sources written at once reach the output whole, each with its
// source's prefix, even when written in pieces.
func TestPrefixedLines(t *testing.T) {
	var out bytes.Buffer
	lw := NewLineWriter(&out)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := lw.Prefixed("[" + name + "] ")
			for i := range 50 {
				fmt.Fprintf(w, "line %d ", i)
				fmt.Fprintf(w, "of %s\n", name)
			}
			fmt.Fprint(w, "held until its newline")
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 150 {
		t.Fatalf("%d lines, want 150:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		var name string
		var i int
		if _, err := fmt.Sscanf(l, "[%1s] line %d of", &name, &i); err != nil || !strings.HasSuffix(l, "of "+name) {
			t.Errorf("mangled line %q", l)
		}
	}
}

func TestForSource(t *testing.T) {
	var out bytes.Buffer
	lw := NewLineWriter(&out)
	ForSource(lw, Terminal, "web1").Report(replication.Event{Type: replication.EventError, Dataset: "tank/a", Error: "boom"})
	if got, want := out.String(), "[web1] tank/a: ERROR: boom\n"; got != want {
		t.Errorf("lines: %q, want %q", got, want)
	}
	out.Reset()
	ForSource(lw, JSON, "web1").Report(replication.Event{Type: replication.EventError, Dataset: "tank/a", Error: "boom"})
	var ev map[string]any
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil || ev["source"] != "web1" || ev["type"] != "error" || ev["dataset"] != "tank/a" {
		t.Errorf("json: %s (%v)", out.String(), err)
	}
}
