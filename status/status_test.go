package status

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/golden"
	"github.com/zrep/zrep/internal/printable/printabletest"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/zfs"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeTarget holds trees by root; a root that is missing is not found,
// one mapped to nil fails.
type fakeTarget map[string][]zfs.DatasetVersions

func (f fakeTarget) ListTree(_ context.Context, root string) ([]zfs.DatasetVersions, error) {
	tree, ok := f[root]
	switch {
	case !ok:
		return nil, errors.Wrapf(zfs.ErrNotFound, "%s is not a filesystem or volume", root)
	case tree == nil:
		return nil, errors.New("zfs list: the daemon is not running")
	}
	return tree, nil
}

func snap(name string, txg uint64, age time.Duration) zfs.Version {
	return zfs.Version{Name: name, Type: zfs.Snapshot, GUID: txg * 7, CreateTXG: txg, Creation: now.Add(-age)}
}

func fs(name string, versions ...zfs.Version) zfs.DatasetVersions {
	return zfs.DatasetVersions{Dataset: zfs.Dataset{Name: name, Type: zfs.Filesystem}, Versions: versions}
}

// world is four sources in all the states a status shows.
func world(t *testing.T) ([]pullconfig.Source, Options) {
	dir := t.TempDir()
	statePath := func(name string) string { return filepath.Join(dir, name+".json") }
	sources := []pullconfig.Source{{Name: "web1", Root: "bk/web1"}, {Name: "db", Root: "bk/db"}, {Name: "new", Root: "bk/new"},
		{Name: "gone", Root: "bk/gone"}, {Name: "broken", Root: "bk/broken"}}
	target := fakeTarget{
		"bk/web1": {
			fs("bk/web1"), fs("bk/web1/tank"),
			fs("bk/web1/tank/data", snap("bk/web1/tank/data@s1", 10, 50*time.Hour), snap("bk/web1/tank/data@s2", 20, 2*time.Hour),
				zfs.Version{Name: "bk/web1/tank/data#b", Type: zfs.Bookmark, CreateTXG: 30, Creation: now}),
			fs("bk/web1/tank/vm", snap("bk/web1/tank/vm@v1", 11, 75*time.Hour+30*time.Minute)),
		},
		"bk/db":     {fs("bk/db"), fs("bk/db/pg", snap("bk/db/pg@daily", 5, 26*time.Hour))},
		"bk/gone":   {fs("bk/gone"), fs("bk/gone/tank", snap("bk/gone/tank@x", 3, 10*24*time.Hour))},
		"bk/broken": nil,
	}
	save := func(name string, prev *pullstate.State, run pullstate.Run) *pullstate.State {
		st := pullstate.Next(prev, run)
		if err := pullstate.Save(statePath(name), st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	save("web1", nil, pullstate.Run{Source: "web1", Root: "bk/web1", Started: now.Add(-2*time.Hour - time.Minute), Finished: now.Add(-2 * time.Hour),
		Outcome: pullstate.OK, Summary: &replication.Summary{Results: []replication.Result{
			{Dataset: "tank/data", Target: "bk/web1/tank/data", Outcome: replication.OutcomeReplicated, Snapshots: 1, Bytes: 3 << 20},
			{Dataset: "tank/vm", Target: "bk/web1/tank/vm", Outcome: replication.OutcomeUpToDate},
		}}})
	prev := save("db", nil, pullstate.Run{Source: "db", Root: "bk/db", Started: now.Add(-26 * time.Hour), Finished: now.Add(-26 * time.Hour),
		Outcome: pullstate.OK, Summary: &replication.Summary{Results: []replication.Result{
			{Dataset: "pg", Target: "bk/db/pg", Outcome: replication.OutcomeReplicated, Snapshots: 1, Bytes: 1000},
		}}})
	save("db", prev, pullstate.Run{Source: "db", Root: "bk/db", Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour + 90*time.Second),
		Outcome: pullstate.Failed, Error: "1 of 2 datasets failed: pg/new", Summary: &replication.Summary{Results: []replication.Result{
			{Dataset: "pg", Target: "bk/db/pg", Outcome: replication.OutcomeUpToDate},
			{Dataset: "pg/new", Target: "bk/db/pg/new", Outcome: replication.OutcomeFailed, Bytes: 512,
				Error: "pg/new: full @a into bk/db/pg/new: stream cut after 512 B;\nthe target is unchanged by this step"},
		}}})
	save("gone", nil, pullstate.Run{Source: "gone", Root: "bk/gone", Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour + time.Second),
		Outcome: pullstate.Unreachable, Error: "ssh backup@gone: connection refused (exit status 255): ssh: connect to host gone port 22: Connection refused"})
	return sources, Options{StatePath: statePath, Target: target, Now: now}
}

func TestStatusGolden(t *testing.T) {
	for _, tt := range []struct {
		name    string
		warnLag time.Duration
		lagging bool
	}{
		{"status.golden", 0, false},
		{"status-warn-lag-1d.golden", 24 * time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sources, o := world(t)
			o.WarnLag = tt.warnLag
			r := Collect(context.Background(), sources, o)
			var buf bytes.Buffer
			if err := Render(&buf, r); err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, tt.name, buf.Bytes())
			if r.Lagging() != tt.lagging || !r.Incomplete() {
				t.Errorf("Lagging() = %t, Incomplete() = %t", r.Lagging(), r.Incomplete())
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	sources, o := world(t)
	o.WarnLag = 48 * time.Hour
	r := Collect(context.Background(), sources, o)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "status.json.golden", append(b, '\n'))
}

// The lag is the age of the newest snapshot on the target, whatever the
// state says: a source whose pulls stopped days ago lags that much.
func TestLagFromTargetSnapshots(t *testing.T) {
	sources, o := world(t)
	o.WarnLag = 74 * time.Hour
	r := Collect(context.Background(), sources[:1], o)
	ds := r.Sources[0].Datasets
	if len(ds) != 2 || ds[0].Dataset != "tank/data" || ds[1].Dataset != "tank/vm" {
		t.Fatalf("datasets %+v", ds)
	}
	if ds[0].Lag != 2*time.Hour || ds[0].NewestSnapshot != "bk/web1/tank/data@s2" || ds[0].Lagging {
		t.Errorf("tank/data: %+v", ds[0])
	}
	if ds[1].Lag != 75*time.Hour+30*time.Minute || !ds[1].Lagging || !r.Lagging() {
		t.Errorf("tank/vm: %+v", ds[1])
	}
	o.WarnLag = 76 * time.Hour
	if r := Collect(context.Background(), sources[:1], o); r.Lagging() {
		t.Errorf("lagging with a warn-lag above every lag: %+v", r.Sources[0])
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 40 * time.Second: "40s", 12*time.Minute + 5*time.Second: "12m", 5*time.Hour + 3*time.Minute: "5h3m", 2 * time.Hour: "2h", 48 * time.Hour: "2d",
		74*time.Hour + 59*time.Minute: "3d2h",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestRenderIsPrintable: the state file keeps what the last run saw, and
// some of it is the source's (a name it listed, the error text it sent).
// status prints it without control characters, each row on its line.
func TestRenderIsPrintable(t *testing.T) {
	const bad = "\x1b]0;owned\x07\r\n\t\u009b\x9b"
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	r := &Report{Time: now, Sources: []Source{{Name: "web1", Root: "bk/web1",
		LastRun: &Run{Finished: now, Outcome: pullstate.Failed, Error: "boom" + bad},
		Error:   "partial" + bad,
		Datasets: []Dataset{{Dataset: "tank/x" + bad, Target: "bk/web1/tank/x",
			LastRun: &pullstate.Dataset{Outcome: replication.Outcome("failed" + bad), Error: "why" + bad}}},
	}}}
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	printabletest.Lines(t, out, 6) // run, why, incomplete, table header and row, the dataset's why
	if !strings.Contains(out, "tank/x?]0;owned??  ?\uFFFD: why?]0;owned?? ?\uFFFD") {
		t.Errorf("the dataset's error is not shown with its control characters replaced:\n%s", out)
	}
}
