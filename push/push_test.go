package push

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/printable/printabletest"
	"github.com/zrep/zrep/replication"
)

type recorder struct{ events []replication.Event }

func (r *recorder) Report(ev replication.Event) { r.events = append(r.events, ev) }

// TestReportCleansTheSinksStrings: the sink is not trusted with the
// pusher's terminal. Whatever string of its events holds control
// characters (names in the plan and its steps, the reason a resume token
// is discarded, errors, the summary's results), the pusher's reporter
// receives it printable.
func TestReportCleansTheSinksStrings(t *testing.T) {
	const bad = `\u001b]52;c;b3duZWQ=\u0007\r\n\u009b2J`
	snap := `{"name":"tank/a` + bad + `@s1","type":"snapshot` + bad + `","guid":"1","createtxg":1}`
	step := `{"kind":"full` + bad + `","from":` + snap + `,"to":` + snap + `,"snapshots":[` + snap + `]}`
	plan := `{"dataset":"tank/a` + bad + `","type":"filesystem` + bad + `","target":"bk` + bad + `","action":"replicate` + bad +
		`","target_exists":true,"rollback_to":"r` + bad + `","destroy_snapshots":["d` + bad + `"],"steps":[` + step +
		`],"clear_resume":"why` + bad + `","diverged":{"dataset":"x` + bad + `","common":"c` + bad + `","target_only":["@t` + bad + `"]}}`
	result := `{"dataset":"tank/a` + bad + `","target":"bk` + bad + `","outcome":"failed` + bad + `","error":"e` + bad + `"}`
	events := []string{
		`{"type":"plan","plan":[` + plan + `]}`,
		`{"type":"step_start` + bad + `","dataset":"tank/a` + bad + `","step":` + step + `}`,
		`{"type":"error","dataset":"","error":"whole` + bad + `"}`,
		`{"type":"dataset_done","result":` + result + `}`,
		`{"type":"summary","summary":{"results":[` + result + `],"failed":1}}`,
	}
	rec := &recorder{}
	p := &pusher{rep: rec}
	for _, ev := range events {
		if !json.Valid([]byte(ev)) {
			t.Fatalf("the test's event is not JSON: %s", ev)
		}
		if _, err := p.report(context.Background(), api.ReportRequest{Event: json.RawMessage(ev)}); err != nil {
			t.Fatalf("report: %v", err)
		}
	}
	if len(rec.events) != len(events) {
		t.Fatalf("%d events reported, want %d", len(rec.events), len(events))
	}
	var n int
	for _, ev := range rec.events {
		n += checkStrings(t, ev)
	}
	if n < 25 {
		t.Errorf("only %d strings reached the reporter: the events lost fields", n)
	}
	if p.failure != "whole?]52;c;b3duZWQ=?? ?2J" {
		t.Errorf("the sink's failure, as the push's error will show it: %q", p.failure)
	}
}

// checkStrings fails for every string of ev (as JSON shows it) that is not
// printable as it is, and returns how many strings it checked.
func checkStrings(t *testing.T, ev replication.Event) int {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			n++
			printabletest.String(t, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return n
}
