package replication

import (
	"context"
	"reflect"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/zfs"
)

// TestRunConfirmsToCursorSources: after a dataset is verified (or found up
// to date) its newest snapshot is confirmed, unless the source lists the
// caller's cursor there already (another bookmark of it does not count);
// a source without cursors is asked once per run.
func TestRunConfirmsToCursorSources(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	b1 := snap("tank/b", "s1", 21, 10)
	target := func() *fakeTarget {
		return newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil})
	}

	src := newFakeSource(fsys("tank/a", a1, a2, a3), fsys("tank/b", b1))
	src.cursors = true
	dst := target()
	if _, err := Run(context.Background(), src, dst, Options{Root: runRoot}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tank/a@s3=13", "tank/b@s1=21"}; !reflect.DeepEqual(src.confirms, want) {
		t.Errorf("confirms %q, want %q", src.confirms, want)
	}
	// Someone else's bookmark of tank/a@s3 (the snapshot tool's, another
	// backup's cursor): still confirmed.
	src.fss[0].Versions = append(src.fss[0].Versions, api.Version{Name: "tank/a#daily", Type: api.TypeBookmark, GUID: 13, CreateTXG: 30})
	src.confirms = nil
	if _, err := Run(context.Background(), src, dst, Options{Root: runRoot}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tank/a@s3=13", "tank/b@s1=21"}; !reflect.DeepEqual(src.confirms, want) {
		t.Errorf("with another bookmark: confirms %q, want %q", src.confirms, want)
	}
	// The source lists the caller's cursor at tank/a@s3: nothing to confirm there.
	src.fss[0].Versions = append(src.fss[0].Versions, api.Version{Name: "tank/a#zrep_cursor_b", Type: api.TypeBookmark, GUID: 13, CreateTXG: 30, Cursor: true})
	src.confirms = nil
	if _, err := Run(context.Background(), src, dst, Options{Root: runRoot}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tank/b@s1=21"}; !reflect.DeepEqual(src.confirms, want) {
		t.Errorf("up-to-date run: confirms %q, want %q", src.confirms, want)
	}

	// A source without cursors: one Confirm answered unimplemented, then none.
	plain := newFakeSource(fsys("tank/a", a1), fsys("tank/b", b1))
	if _, err := Run(context.Background(), plain, target(), Options{Root: runRoot}); err != nil {
		t.Fatal(err)
	}
	if len(plain.confirms) != 1 {
		t.Errorf("confirms to a source without cursors: %q", plain.confirms)
	}
}

// TestRunFromACursor: every snapshot the target has was pruned on the
// source, but its cursor bookmark remains: the next incremental starts
// from the cursor.
func TestRunFromACursor(t *testing.T) {
	const ta = runRoot + "/tank/a"
	cursor := api.Version{Name: "tank/a#zrep_cursor_b", Type: api.TypeBookmark, GUID: 12, CreateTXG: 20}
	src := newFakeSource(fsys("tank/a", cursor, snap("tank/a", "s3", 13, 30), snap("tank/a", "s4", 14, 40)))
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
		ta: {tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6)}})
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Results[0]; r.Outcome != OutcomeReplicated {
		t.Fatalf("%s: %s", r.Outcome, r.Error)
	}
	var sends []string
	for _, req := range src.sends {
		sends = append(sends, sendString(req))
	}
	if want := []string{"tank/a #zrep_cursor_b=12 -i @s3=13", "tank/a @s3=13 -I @s4=14"}; !reflect.DeepEqual(sends, want) {
		t.Errorf("sends %q, want %q", sends, want)
	}
}
