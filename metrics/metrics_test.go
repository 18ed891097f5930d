package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zrep/zrep/internal/golden"
	"github.com/zrep/zrep/internal/testtools"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/status"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// report is three sources: one up to date, one whose last pull failed on
// a dataset, one never reached.
func report() *status.Report {
	return &status.Report{Time: now, Sources: []status.Source{
		{Name: "web1", Root: "bk/web1",
			LastRun: &status.Run{Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour + 90*time.Second), Duration: 90 * time.Second,
				Outcome: pullstate.OK, Bytes: 4096, LastSuccess: now.Add(-time.Hour + 90*time.Second), Failures: 2},
			Datasets: []status.Dataset{
				{Dataset: "tank/data", Target: "bk/web1/tank/data", NewestSnapshot: "bk/web1/tank/data@s2", NewestCreated: now.Add(-2 * time.Hour),
					LastRun: &pullstate.Dataset{Dataset: "tank/data", Outcome: replication.OutcomeReplicated, Bytes: 4096, Duration: 1500 * time.Millisecond,
						LastSuccess: now.Add(-time.Hour), Failures: 1}},
			}},
		{Name: "db", Root: "bk/db",
			LastRun: &status.Run{Finished: now.Add(-time.Minute), Duration: time.Second, Outcome: pullstate.Failed, Error: "x", Failures: 1},
			Datasets: []status.Dataset{
				{Dataset: "pg", Target: "bk/db/pg",
					LastRun: &pullstate.Dataset{Dataset: "pg", Outcome: replication.OutcomeFailed, Error: "stream cut", Failures: 1}},
			}},
		{Name: "new", Root: "bk/new", Datasets: []status.Dataset{}},
	}}
}

func TestEncodeGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, report()); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "metrics.prom", buf.Bytes())
}

// The file parses as Prometheus text and holds exactly the values of the
// report.
func TestEncodeParses(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, report()); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		mf := families[name]
		if mf == nil {
			return 0, false
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
		return 0, false
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{name: "zrep_dataset_newest_snapshot_timestamp_seconds", labels: map[string]string{"source": "web1", "dataset": "tank/data"}, want: float64(now.Add(-2 * time.Hour).Unix())},
		{name: "zrep_dataset_newest_snapshot_timestamp_seconds", labels: map[string]string{"source": "db", "dataset": "pg"}, absent: true},
		{name: "zrep_dataset_last_success_timestamp_seconds", labels: map[string]string{"source": "web1", "dataset": "tank/data"}, want: float64(now.Add(-time.Hour).Unix())},
		{name: "zrep_dataset_last_run_bytes", labels: map[string]string{"source": "web1", "dataset": "tank/data"}, want: 4096},
		{name: "zrep_dataset_last_run_duration_seconds", labels: map[string]string{"source": "web1", "dataset": "tank/data"}, want: 1.5},
		{name: "zrep_dataset_last_run_success", labels: map[string]string{"source": "db", "dataset": "pg"}, want: 0},
		{name: "zrep_dataset_failures_total", labels: map[string]string{"source": "db", "dataset": "pg"}, want: 1},
		{name: "zrep_source_last_run_outcome", labels: map[string]string{"source": "db", "outcome": "failed"}, want: 1},
		{name: "zrep_source_last_run_outcome", labels: map[string]string{"source": "db", "outcome": "ok"}, want: 0},
		{name: "zrep_source_last_run_outcome", labels: map[string]string{"source": "new", "outcome": "ok"}, absent: true},
		{name: "zrep_source_last_success_timestamp_seconds", labels: map[string]string{"source": "db"}, absent: true},
		{name: "zrep_source_failures_total", labels: map[string]string{"source": "web1"}, want: 2},
		{name: "zrep_source_last_run_duration_seconds", labels: map[string]string{"source": "web1"}, want: 90},
	} {
		got, ok := value(tt.name, tt.labels)
		switch {
		case tt.absent && ok:
			t.Errorf("%s%v = %v, want no such series", tt.name, tt.labels, got)
		case !tt.absent && (!ok || got != tt.want):
			t.Errorf("%s%v = %v (present %t), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
}

// promtool, Prometheus's own checker, accepts the file: format, names,
// units, help texts.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testtools.Require(t, "promtool", "prometheus")
	path := filepath.Join(t.TempDir(), "zrep.prom")
	if err := WriteTextfile(path, report()); err != nil {
		t.Fatal(err)
	}
	PromtoolCheck(t, promtool, path)

	// The check can fail: promtool complains about a badly named counter.
	bad := filepath.Join(t.TempDir(), "bad.prom")
	if err := os.WriteFile(bad, []byte("# HELP foo_count x\n# TYPE foo_count counter\nfoo_count 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin, _ = os.Open(bad)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a counter without _total: %s", out)
	}
}

// PromtoolCheck runs promtool check metrics on a file and fails the test
// on any complaint.
func PromtoolCheck(t *testing.T, promtool, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
