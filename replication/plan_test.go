package replication

import (
	"reflect"
	"strings"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/zfs"
)

func snap(ds, name string, guid, txg uint64) api.Version {
	return api.Version{Name: ds + "@" + name, Type: api.TypeSnapshot, GUID: api.GUID(guid), CreateTXG: txg}
}

func bookmark(ds, name string, guid, txg uint64) api.Version {
	return api.Version{Name: ds + "#" + name, Type: api.TypeBookmark, GUID: api.GUID(guid), CreateTXG: txg}
}

func tsnap(ds, name string, guid, txg uint64) zfs.Version {
	return zfs.Version{Name: ds + "@" + name, Type: zfs.Snapshot, GUID: guid, CreateTXG: txg}
}

// stepSummary is a step in a form that is easy to write in a table.
type stepSummary struct {
	kind  StepKind
	from  string
	to    string
	dashI bool
	snaps []string
}

func summarize(steps []Step) []stepSummary {
	var out []stepSummary
	for _, s := range steps {
		ss := stepSummary{kind: s.Kind, to: short(s.To.Name), dashI: s.Intermediates}
		if s.From != nil {
			ss.from = short(s.From.Name)
		}
		for _, v := range s.Snapshots {
			ss.snaps = append(ss.snaps, short(v.Name))
		}
		out = append(out, ss)
	}
	return out
}

func TestPlanDataset(t *testing.T) {
	const src, dst = "tank/data", "backup/tank/data"
	s1, s2, s3, s4 := snap(src, "s1", 11, 10), snap(src, "s2", 22, 20), snap(src, "s3", 33, 30), snap(src, "s4", 44, 40)
	t1, t2 := tsnap(dst, "s1", 11, 5), tsnap(dst, "s2", 22, 6)
	target := func(vs ...zfs.Version) *zfs.DatasetVersions {
		return &zfs.DatasetVersions{Dataset: zfs.Dataset{Name: dst, Type: zfs.Filesystem}, Versions: vs}
	}
	tests := []struct {
		name       string
		source     []api.Version
		target     *zfs.DatasetVersions
		force      bool
		action     Action
		steps      []stepSummary
		rollbackTo string
		destroy    []string
		forceRecv  bool
		common     string
		targetOnly []string
	}{
		{name: "no source snapshots", target: nil, action: ActionNoSource},
		{name: "only bookmarks on the source", source: []api.Version{bookmark(src, "b1", 11, 10)}, action: ActionNoSource},
		{name: "new target, one snapshot", source: []api.Version{s1}, action: ActionReplicate,
			steps: []stepSummary{{kind: StepFull, to: "@s1", snaps: []string{"@s1"}}}},
		{name: "new target, several snapshots: full then one -I stream", source: []api.Version{s1, s2, s3}, action: ActionReplicate,
			steps: []stepSummary{
				{kind: StepFull, to: "@s1", snaps: []string{"@s1"}},
				{kind: StepIncremental, from: "@s1", to: "@s3", dashI: true, snaps: []string{"@s2", "@s3"}},
			}},
		{name: "source listed out of order", source: []api.Version{s3, s1, s2}, action: ActionReplicate,
			steps: []stepSummary{
				{kind: StepFull, to: "@s1", snaps: []string{"@s1"}},
				{kind: StepIncremental, from: "@s1", to: "@s3", dashI: true, snaps: []string{"@s2", "@s3"}},
			}},
		{name: "up to date", source: []api.Version{s1, s2}, target: target(t1, t2), action: ActionUpToDate},
		{name: "one new snapshot: -i", source: []api.Version{s1, s2}, target: target(t1), action: ActionReplicate,
			steps: []stepSummary{{kind: StepIncremental, from: "@s1", to: "@s2", snaps: []string{"@s2"}}}},
		{name: "several new snapshots: -I from the newest common", source: []api.Version{s1, s2, s3, s4}, target: target(t1, t2), action: ActionReplicate,
			steps: []stepSummary{{kind: StepIncremental, from: "@s2", to: "@s4", dashI: true, snaps: []string{"@s3", "@s4"}}}},
		{name: "source pruned old snapshots", source: []api.Version{s2, s3}, target: target(t1, t2), action: ActionReplicate,
			steps: []stepSummary{{kind: StepIncremental, from: "@s2", to: "@s3", snaps: []string{"@s3"}}}},
		{name: "target has a snapshot the source lacks after the common one", source: []api.Version{s1, s2, s3},
			target: target(t1, t2, tsnap(dst, "local", 99, 7)), action: ActionDiverged, common: src + "@s2", targetOnly: []string{"@local"}},
		{name: "diverged, forced: roll back to the common snapshot", source: []api.Version{s1, s2, s3},
			target: target(t1, t2, tsnap(dst, "local", 99, 7)), force: true, action: ActionReplicate,
			rollbackTo: dst + "@s2", forceRecv: true,
			steps: []stepSummary{{kind: StepIncremental, from: "@s2", to: "@s3", snaps: []string{"@s3"}}}},
		{name: "diverged with nothing new on the source, forced: roll back only", source: []api.Version{s1, s2},
			target: target(t1, t2, tsnap(dst, "local", 99, 7)), force: true, action: ActionReplicate, rollbackTo: dst + "@s2", forceRecv: true},
		{name: "same name, other guid: no common snapshot", source: []api.Version{s1, s2}, target: target(tsnap(dst, "s1", 12345, 5)),
			action: ActionDiverged, common: ""},
		{name: "no common snapshot, forced: destroy the target's snapshots, full receive", source: []api.Version{s1, s2},
			target: target(tsnap(dst, "old", 5, 5)), force: true, action: ActionReplicate, destroy: []string{dst + "@old"}, forceRecv: true,
			steps: []stepSummary{
				{kind: StepFull, to: "@s1", snaps: []string{"@s1"}},
				{kind: StepIncremental, from: "@s1", to: "@s2", dashI: true, snaps: []string{"@s2"}},
			}},
		{name: "existing target without snapshots is refused", source: []api.Version{s1}, target: target(), action: ActionDiverged},
		{name: "common snapshot survives on the source only as a bookmark", source: []api.Version{s1, bookmark(src, "b2", 22, 20), s3, s4},
			target: target(t1, t2), action: ActionReplicate,
			steps: []stepSummary{
				{kind: StepIncremental, from: "#b2", to: "@s3", snaps: []string{"@s3"}},
				{kind: StepIncremental, from: "@s3", to: "@s4", dashI: true, snaps: []string{"@s4"}},
			}},
		{name: "snapshot preferred over its bookmark", source: []api.Version{s1, bookmark(src, "b2", 22, 20), s2, s3},
			target: target(t1, t2), action: ActionReplicate,
			steps: []stepSummary{{kind: StepIncremental, from: "@s2", to: "@s3", snaps: []string{"@s3"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanDataset(api.Filesystem{Name: src, Type: "filesystem", Versions: tt.source}, dst, tt.target, PlanOptions{ForceRollback: tt.force})
			if p.Action != tt.action {
				t.Fatalf("action = %s, want %s (plan %+v)", p.Action, tt.action, p)
			}
			if got := summarize(p.Steps); !reflect.DeepEqual(got, tt.steps) {
				t.Errorf("steps =\n%+v\nwant\n%+v", got, tt.steps)
			}
			if p.RollbackTo != tt.rollbackTo || !reflect.DeepEqual(p.DestroySnapshots, tt.destroy) || p.Force != tt.forceRecv {
				t.Errorf("rollback %q destroy %v force %v; want %q %v %v", p.RollbackTo, p.DestroySnapshots, p.Force, tt.rollbackTo, tt.destroy, tt.forceRecv)
			}
			if tt.action == ActionDiverged {
				if p.Diverged == nil {
					t.Fatal("diverged without an explanation")
				}
				if p.Diverged.Common != tt.common || !reflect.DeepEqual(p.Diverged.TargetOnly, tt.targetOnly) {
					t.Errorf("diverged = %+v, want common %q target-only %v", p.Diverged, tt.common, tt.targetOnly)
				}
			}
			if p.TargetExists != (tt.target != nil) {
				t.Errorf("TargetExists = %v", p.TargetExists)
			}
		})
	}
}

func TestDivergedMessageNamesBothSides(t *testing.T) {
	p := PlanDataset(
		api.Filesystem{Name: "tank/a", Versions: []api.Version{snap("tank/a", "s1", 1, 1), snap("tank/a", "s2", 2, 2)}},
		"bk/tank/a",
		&zfs.DatasetVersions{Dataset: zfs.Dataset{Name: "bk/tank/a"}, Versions: []zfs.Version{tsnap("bk/tank/a", "s1", 1, 1), tsnap("bk/tank/a", "mine", 9, 2)}},
		PlanOptions{})
	msg := p.Diverged.Error()
	for _, want := range []string{"bk/tank/a", "tank/a", "@mine", "source snapshots: @s1, @s2", "target snapshots: @s1, @mine", "--force-rollback", "nothing was changed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestListShortensLongLists(t *testing.T) {
	var names []string
	for i := 0; i < 2000; i++ {
		names = append(names, "@s")
	}
	if got := list(names); !strings.Contains(got, "1994 more") || len(got) > 100 {
		t.Errorf("list of 2000 = %q", got)
	}
	if got := list(nil); got != "none" {
		t.Errorf("list(nil) = %q", got)
	}
}
