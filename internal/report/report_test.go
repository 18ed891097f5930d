package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/golden"
	"github.com/zrep/zrep/internal/printable/printabletest"
	"github.com/zrep/zrep/replication"
)

// run is a synthetic run with every kind of outcome, fixed times and sizes.
func run() []replication.Event {
	v := func(name string, guid uint64) api.Version {
		return api.Version{Name: name, Type: api.TypeSnapshot, GUID: api.GUID(guid), CreateTXG: guid}
	}
	s1, s2, s3 := v("tank/data@s1", 1), v("tank/data@s2", 2), v("tank/data@s3", 3)
	full := replication.Step{Kind: replication.StepFull, To: s1, Snapshots: []api.Version{s1}}
	incr := replication.Step{Kind: replication.StepIncremental, From: &s1, To: s3, Intermediates: true, Snapshots: []api.Version{s2, s3}}
	c1 := v("tank/cut@c1", 7)
	resumed := replication.Step{Kind: replication.StepFull, To: c1, Snapshots: []api.Version{c1}, Resumed: true, ResumedBytes: 3 << 20}
	div := &replication.Diverged{Dataset: "tank/vm", Target: "bk/tank/vm", Common: "tank/vm@v1", TargetOnly: []string{"@local"},
		SourceSnapshots: []string{"@v1", "@v2"}, TargetSnapshots: []string{"@v1", "@local"}}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	results := []replication.Result{
		{Dataset: "tank/data", Target: "bk/tank/data", Outcome: replication.OutcomeReplicated, Snapshots: 3, Bytes: 3 << 30, Duration: 12345 * time.Millisecond},
		{Dataset: "tank/empty", Target: "bk/tank/empty", Outcome: replication.OutcomeNoSnapshots},
		{Dataset: "tank/old", Target: "bk/tank/old", Outcome: replication.OutcomeUpToDate},
		{Dataset: "tank/vm", Target: "bk/tank/vm", Outcome: replication.OutcomeDiverged, Error: div.Error()},
		{Dataset: "tank/gone", Target: "bk/tank/gone", Outcome: replication.OutcomeFailed, Error: "not on the source: it does not exist, or this key may not see it"},
	}
	return []replication.Event{
		{Type: replication.EventPlan, Time: t0, Plan: []replication.DatasetPlan{
			{Dataset: "tank/data", Target: "bk/tank/data", Action: replication.ActionReplicate, Steps: []replication.Step{full, incr}},
			{Dataset: "tank/cut", Target: "bk/tank/cut", Action: replication.ActionReplicate, TargetExists: true, Steps: []replication.Step{resumed}},
			{Dataset: "tank/stale", Target: "bk/tank/stale", Action: replication.ActionReplicate, Steps: []replication.Step{full},
				ClearResume: "the snapshot it resumes, tank/stale@x (guid 9), is no longer on the source"},
			{Dataset: "tank/empty", Target: "bk/tank/empty", Action: replication.ActionNoSource},
			{Dataset: "tank/old", Target: "bk/tank/old", Action: replication.ActionUpToDate},
			{Dataset: "tank/vm", Target: "bk/tank/vm", Action: replication.ActionDiverged, Diverged: div},
		}},
		{Type: replication.EventStepStart, Time: t0, Dataset: "tank/data", Step: &full, StepIndex: 1, StepCount: 2},
		{Type: replication.EventProgress, Time: t0.Add(time.Second), Dataset: "tank/data", Step: &full, StepIndex: 1, StepCount: 2, Bytes: 1 << 20, EstimatedBytes: 2 << 30},
		{Type: replication.EventStepDone, Time: t0.Add(10 * time.Second), Dataset: "tank/data", Step: &full, StepIndex: 1, StepCount: 2,
			Bytes: 2 << 30, BytesPerSecond: float64(2<<30) / 10, Duration: 10 * time.Second},
		{Type: replication.EventStepStart, Time: t0, Dataset: "tank/data", Step: &incr, StepIndex: 2, StepCount: 2},
		{Type: replication.EventStepDone, Time: t0, Dataset: "tank/data", Step: &incr, StepIndex: 2, StepCount: 2, Bytes: 1 << 30, BytesPerSecond: 1 << 29, Duration: 2 * time.Second},
		{Type: replication.EventError, Time: t0, Dataset: "tank/vm", Target: "bk/tank/vm", Error: div.Error()},
		{Type: replication.EventSummary, Time: t0, Summary: &replication.Summary{Results: results, Failed: 2}},
	}
}

func TestLinesGolden(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, Lines)
	for _, ev := range run() {
		r.Report(ev)
	}
	golden.Assert(t, "lines.golden", buf.Bytes())
}

func TestJSONEvents(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, JSON)
	for _, ev := range run() {
		r.Report(ev)
	}
	golden.Assert(t, "events.golden.jsonl", buf.Bytes())
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, line := range lines {
		var ev replication.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not one JSON event per line: %q", line)
		}
	}
	if len(lines) != len(run()) {
		t.Errorf("%d lines for %d events", len(lines), len(run()))
	}
}

// Progress is printed at most once a second per transfer.
func TestJSONThrottlesProgress(t *testing.T) {
	var buf bytes.Buffer
	r := New(&buf, JSON)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Report(replication.Event{Type: replication.EventStepStart, Time: t0})
	for i := 1; i <= 50; i++ {
		r.Report(replication.Event{Type: replication.EventProgress, Time: t0.Add(time.Duration(i) * 100 * time.Millisecond), Bytes: int64(i)})
	}
	if n := strings.Count(buf.String(), `"progress"`); n != 5 {
		t.Errorf("%d progress lines for 5 s of transfer, want 5", n)
	}
}

// TestLinesArePrintable: names and errors can come from the other end (a
// sink reports its run to the pusher; a source names its datasets and
// words its errors). Whatever they hold, the lines printed have no
// control character but the newline that ends each.
func TestLinesArePrintable(t *testing.T) {
	const bad = "\x1b]52;c;b3duZWQ=\x07\x1b[1A\rOK\n\u009b2J\x9b"
	snap := api.Version{Name: "tank/x" + bad + "@s1", Type: api.TypeSnapshot}
	step := replication.Step{Kind: replication.StepFull, To: snap, Snapshots: []api.Version{snap}}
	res := replication.Result{Dataset: "tank/x" + bad, Target: "bk" + bad, Outcome: replication.Outcome("failed" + bad), Error: "boom" + bad}
	events := []replication.Event{
		{Type: replication.EventPlan, Plan: []replication.DatasetPlan{
			{Dataset: "tank/x" + bad, Target: "bk" + bad, Action: replication.ActionReplicate, Steps: []replication.Step{step},
				ClearResume: "why" + bad, RollbackTo: "tank/x@r" + bad},
			{Dataset: "tank/y" + bad, Target: "bk" + bad, Action: replication.Action("odd" + bad)},
			{Dataset: "tank/z" + bad, Target: "bk" + bad, Action: replication.ActionDiverged},
		}},
		{Type: replication.EventStepStart, Dataset: "tank/x" + bad, Step: &step, StepIndex: 1, StepCount: 1},
		{Type: replication.EventStepDone, Dataset: "tank/x" + bad, StepIndex: 1, StepCount: 1},
		{Type: replication.EventError, Dataset: "tank/x" + bad, Error: "boom" + bad},
		{Type: replication.EventSummary, Summary: &replication.Summary{Results: []replication.Result{res}}},
	}
	var buf bytes.Buffer
	r := New(&buf, Lines)
	for _, ev := range events {
		r.Report(ev)
	}
	out := buf.String()
	printabletest.Lines(t, out, 8) // one per plan, step, error and result, and the summary
	if !strings.Contains(out, "boom?]52;c;b3duZWQ=??[1A?OK ?2J\uFFFD") {
		t.Errorf("the error's text is not shown with its control characters replaced:\n%s", out)
	}
}
