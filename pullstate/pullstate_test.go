package pullstate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/zrep/zrep/replication"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestNext(t *testing.T) {
	sum := &replication.Summary{Results: []replication.Result{
		{Dataset: "tank/a", Target: "bk/s/tank/a", Outcome: replication.OutcomeReplicated, Snapshots: 2, Bytes: 100, Duration: time.Second},
		{Dataset: "tank/b", Target: "bk/s/tank/b", Outcome: replication.OutcomeFailed, Error: "boom"},
	}}
	s1 := Next(nil, Run{Source: "s", Root: "bk/s", Started: t0, Finished: t0.Add(time.Minute), Outcome: Failed, Error: "1 dataset failed", Summary: sum})
	want := &State{Version: 1, Source: "s", Root: "bk/s", Started: t0, Finished: t0.Add(time.Minute), Duration: time.Minute,
		Outcome: Failed, Error: "1 dataset failed", Bytes: 100, Failures: 1, Datasets: []Dataset{
			{Dataset: "tank/a", Target: "bk/s/tank/a", Time: t0.Add(time.Minute), Outcome: replication.OutcomeReplicated, Snapshots: 2, Bytes: 100, Duration: time.Second, LastSuccess: t0.Add(time.Minute)},
			{Dataset: "tank/b", Target: "bk/s/tank/b", Time: t0.Add(time.Minute), Outcome: replication.OutcomeFailed, Error: "boom", Failures: 1},
		}}
	if !reflect.DeepEqual(s1, want) {
		t.Fatalf("first run:\n got %+v\nwant %+v", s1, want)
	}
	// Unreachable: the datasets keep their records, the counters go on.
	t1 := t0.Add(time.Hour)
	s2 := Next(s1, Run{Source: "s", Root: "bk/s", Started: t1, Finished: t1.Add(time.Second), Outcome: Unreachable, Error: "ssh: connection refused"})
	if s2.Failures != 2 || !s2.LastSuccess.IsZero() || s2.Bytes != 0 || !reflect.DeepEqual(s2.Datasets, s1.Datasets) {
		t.Errorf("unreachable run: %+v", s2)
	}
	// Then all is well.
	t2 := t1.Add(time.Hour)
	ok := &replication.Summary{Results: []replication.Result{
		{Dataset: "tank/b", Target: "bk/s/tank/b", Outcome: replication.OutcomeReplicated, Snapshots: 1, Bytes: 7},
		{Dataset: "tank/a", Target: "bk/s/tank/a", Outcome: replication.OutcomeUpToDate},
	}}
	s3 := Next(s2, Run{Source: "s", Root: "bk/s", Started: t2, Finished: t2, Outcome: OK, Summary: ok})
	if s3.Failures != 2 || !s3.LastSuccess.Equal(t2) || s3.Bytes != 7 || s3.Error != "" {
		t.Errorf("ok run: %+v", s3)
	}
	if b := s3.Datasets[1]; b.Dataset != "tank/b" || b.Failures != 1 || !b.LastSuccess.Equal(t2) || b.Error != "" || b.Outcome != replication.OutcomeReplicated {
		t.Errorf("tank/b after recovering: %+v", b)
	}
	// A new root starts a new history.
	if s4 := Next(s3, Run{Source: "s", Root: "bk/other", Started: t2, Finished: t2, Outcome: Failed}); s4.Failures != 1 || len(s4.Datasets) != 0 {
		t.Errorf("new root: %+v", s4)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "web1.json")
	if s, err := Load(path); s != nil || err != nil {
		t.Fatalf("Load of a missing file: %v, %v", s, err)
	}
	s := Next(nil, Run{Source: "web1", Root: "bk/web1", Started: t0, Finished: t0, Outcome: OK})
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, s)
	}
	if err := os.WriteFile(path, []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Error("Load accepted version 9")
	}
	if err := os.WriteFile(path, []byte(`{`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil {
		t.Error("Load accepted broken JSON")
	}
}
