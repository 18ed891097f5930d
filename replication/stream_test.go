package replication

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/nvlist"
	"github.com/zrep/zrep/sendstream/streamtest"
	"github.com/zrep/zrep/zfs"
)

// TestRunRefusesUnplannedStreams: a source that answers a Send with another
// stream than the one asked for. Each is refused by the inspection; where
// the refusal comes at the stream's first snapshot, zfs receive never
// starts and the target is unchanged; the other datasets go on.
func TestRunRefusesUnplannedStreams(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	b1 := snap("tank/b", "s1", 21, 10)
	const ta = runRoot + "/tank/a"
	snaps := func(vs ...api.Version) []streamtest.Snap {
		var out []streamtest.Snap
		for _, v := range vs {
			out = append(out, streamtest.Snap{Name: shortName(v.Name), GUID: uint64(v.GUID)})
		}
		return out
	}
	// The target has tank/a@s1: the plan is one -I stream @s1 -> @s3.
	existing := map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}}
	tests := []struct {
		name     string
		forged   []byte
		want     []string
		received bool // zfs receive was given the part before the refusal
	}{
		{"a package stream (-R) instead of -I", func() []byte {
			b := streamtest.New()
			b.Begin(streamtest.Begin{HeaderType: streamtest.Compound, ToName: "tank/a@s3", Payload: packageHeader(t)}).End()
			b.Substream("tank/a@s2", 12, 11, 0, 100).Substream("tank/a@s3", 13, 12, 0, 100).End()
			return b.Bytes()
		}(), []string{"not asked for", "carries fss", "before zfs receive saw a byte", "broken or compromised"}, false},
		{"a plain stream from an older base", streamtest.Stream("tank/a", 7, snaps(a3), false, 100),
			[]string{"not asked for", "a plain stream of tank/a@s3 where a zfs send -I stream was asked for"}, false},
		{"-I whose first snapshot has another guid", streamtest.Stream("tank/a", 11, []streamtest.Snap{{Name: "s2", GUID: 99}, {Name: "s3", GUID: 13}}, true, 100),
			[]string{"tank/a@s2 with guid 99 where guid 12 was asked for", "the target is unchanged"}, false},
		{"-I whose second snapshot is another dataset's", func() []byte {
			b := streamtest.New()
			b.Begin(streamtest.Begin{HeaderType: streamtest.Compound, ToName: "tank/a@s3"}).End()
			b.Substream("tank/a@s2", 12, 11, 0, 100).Substream("tank/secret@s3", 13, 12, 0, 100).End()
			return b.Bytes()
		}(), []string{"tank/secret@s3 where tank/a@s3 was asked for", "zfs receive was stopped before that point"}, true},
		{"garbage first", append([]byte("Welcome!\n"), streamtest.Stream("tank/a", 11, snaps(a2, a3), true, 100)...),
			[]string{"malformed stream", "does not start with a BEGIN record"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(fsys("tank/a", a1, a2, a3), fsys("tank/b", b1))
			src.forge["tank/a@s3"] = tt.forged
			dst := newFakeTarget(existing)
			sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
			if err != nil {
				t.Fatal(err)
			}
			a, b := sum.Results[0], sum.Results[1]
			if a.Outcome != OutcomeFailed || b.Outcome != OutcomeReplicated {
				t.Fatalf("outcomes %s (%s), %s; want tank/a failed, tank/b replicated", a.Outcome, a.Error, b.Outcome)
			}
			for _, w := range append(tt.want, "tank/a: incremental @s1 -> @s3 (2 snapshots) into "+ta) {
				if !strings.Contains(a.Error, w) {
					t.Errorf("error %q lacks %q", a.Error, w)
				}
			}
			var recvs []string
			for _, r := range dst.recvs {
				recvs = append(recvs, r.opts.Target)
				if r.opts.Target == ta && (r.aborted != 1 || r.closed != 0) {
					t.Errorf("receive into %s: aborted %d, closed %d; want aborted once", ta, r.aborted, r.closed)
				}
			}
			want := []string{runRoot + "/tank/b"}
			if tt.received {
				want = []string{ta, runRoot + "/tank/b"}
			}
			if !reflect.DeepEqual(recvs, want) {
				t.Errorf("zfs receive ran for %q, want %q", recvs, want)
			}
			if got := dst.state(); !reflect.DeepEqual(got[:4], []string{"backup:", "backup/host1:", "backup/host1/tank:", ta + ": s1=11"}) {
				t.Errorf("target after the refusal: %q", got)
			}
		})
	}
}

// packageHeader is the XDR header of a -R stream: a file system list with
// a mountpoint property.
func packageHeader(t *testing.T) []byte {
	t.Helper()
	return xdrList(t, map[string]any{"tosnap": "s3", "fss": map[string]any{"0x1": map[string]any{"name": "tank/a", "props": map[string]any{"mountpoint": "/etc"}}}})
}

// xdrList packs a list of strings and nested lists (map keys in order) as
// libzfs packs a stream's header.
func xdrList(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := nvlist.Pack(toList(m), nvlist.XDR)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func toList(m map[string]any) *nvlist.List {
	l := &nvlist.List{Flags: 1}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].(type) {
		case string:
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: k, Type: nvlist.String, Value: v})
		case map[string]any:
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: k, Type: nvlist.NVList, Value: toList(v)})
		}
	}
	return l
}

// TestExcludedProps: receive -x where the local zfs has it, with only the
// properties that apply to the dataset's type, no key property for a raw
// receive (zfs refuses them), and none for a delegated user (the kernel
// refuses what it has no permission for).
func TestExcludedProps(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features zfs.Features
		typ      string
		raw      bool
		want     []string
	}{
		{"zfs-fuse", zfs.Features{}, "filesystem", false, nil},
		{"file system", zfs.Features{RecvExclude: true}, "filesystem", false,
			[]string{"mountpoint", "canmount", "overlay", "sharenfs", "sharesmb", "exec", "setuid", "devices", "keylocation"}},
		{"volume", zfs.Features{RecvExclude: true}, "volume", false, []string{"keylocation"}},
		{"raw file system", zfs.Features{RecvExclude: true}, "filesystem", true,
			[]string{"mountpoint", "canmount", "overlay", "sharenfs", "sharesmb", "exec", "setuid", "devices"}},
		{"raw volume", zfs.Features{RecvExclude: true}, "volume", true, nil},
		{"delegated", zfs.Features{RecvExclude: true, Delegated: true}, "filesystem", false, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10)))
			src.fss[0].Type, src.fss[0].Encrypted = tt.typ, tt.raw
			dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil})
			dst.features.RecvExclude, dst.features.Delegated = tt.features.RecvExclude, tt.features.Delegated
			if _, err := Run(context.Background(), src, dst, Options{Root: runRoot, Raw: tt.raw}); err != nil {
				t.Fatal(err)
			}
			if len(dst.recvs) != 1 || !reflect.DeepEqual(dst.recvs[0].opts.Exclude, tt.want) {
				t.Fatalf("receives %+v, want one excluding %q", dst.recvs, tt.want)
			}
		})
	}
}

// TestRunSkipsBadlyListedDatasets: names a source (or a pusher) reports
// that are not plain dataset names, and versions that are not of their
// dataset, never reach a target's name or zfs.
func TestRunSkipsBadlyListedDatasets(t *testing.T) {
	good := fsys("tank/a", snap("tank/a", "s1", 11, 10))
	bad := []api.Filesystem{
		{Name: "tank/../etc", Type: "filesystem"},
		{Name: "/etc", Type: "filesystem"},
		{Name: "tank/x@y", Type: "filesystem"},
		{Name: "tank/b", Type: "snapshot"},
		fsys("tank/c", snap("tank/other", "s1", 1, 1)),
		fsys("tank/d", api.Version{Name: "tank/d#s1", Type: api.TypeSnapshot, GUID: 1, CreateTXG: 1}),
		fsys("tank/e", api.Version{Name: "tank/e@x/y", Type: api.TypeSnapshot, GUID: 1, CreateTXG: 1}),
		fsys("tank/f", api.Version{Name: "tank/f@s1", Type: api.TypeSnapshot, GUID: 1, CreateTXG: 1, Cursor: true}),
		{Name: "tank/\x1b]0;owned\x07\r\u009b", Type: "filesystem"}, // reported, printable
	}
	src := newFakeSource(append([]api.Filesystem{good}, bad...)...)
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil})
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != len(bad)+1 || sum.Failed != len(bad) {
		t.Fatalf("results %+v", sum.Results)
	}
	for _, r := range sum.Results {
		if r.Dataset == "tank/a" {
			if r.Outcome != OutcomeReplicated {
				t.Errorf("tank/a: %s %s", r.Outcome, r.Error)
			}
			continue
		}
		if r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "listed it wrongly") || r.Target != "" {
			t.Errorf("%q: %s, target %q: %s", r.Dataset, r.Outcome, r.Target, r.Error)
		}
		if strings.IndexFunc(r.Dataset+r.Error, unicode.IsControl) >= 0 {
			t.Errorf("the source's name reaches the result with control characters: %q: %q", r.Dataset, r.Error)
		}
	}
	for _, req := range src.sends {
		if req.Dataset != "tank/a" {
			t.Errorf("sent %s", req.Dataset)
		}
	}
}
