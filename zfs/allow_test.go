package zfs

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

func parseAllowFile(t *testing.T, name string) *Allow {
	t.Helper()
	a, err := ParseAllow(strings.NewReader(readTestdata(t, "allow/"+name)))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return a
}

func TestParseAllowSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/allow/*.txt")
	if len(files) != 8 {
		t.Fatalf("samples: %q", files)
	}
	for _, f := range files {
		a := parseAllowFile(t, filepath.Base(f))
		last := a.Blocks[len(a.Blocks)-1]
		if last.Dataset != "drallow" || len(last.Sets) != 3 || len(last.Entries) != 3 {
			t.Errorf("%s: pool block %+v", f, last)
		}
	}
	// The whole of one, with every kind of line.
	recv := "receive:append"
	want := &Allow{Blocks: []AllowBlock{
		{Dataset: "drallow/a/b/c", Sets: map[string][]string{"@with space": {"send"}}, Create: []string{"@recv", "destroy"},
			Entries: []AllowEntry{
				{Scope: Local, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"send"}},
				{Scope: Descendent, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"hold"}},
				{Scope: LocalDescendent, Kind: User, Name: "root", ID: -1, Perms: []string{"@with space"}},
				{Scope: LocalDescendent, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"@with space", "create", "mount", recv}},
				{Scope: LocalDescendent, Kind: Everyone, ID: -1, Perms: []string{"@outer"}},
			}},
		{Dataset: "drallow/a/b", Sets: map[string][]string{},
			Entries: []AllowEntry{
				{Scope: Local, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"@recv", "send"}},
				{Scope: LocalDescendent, Kind: User, Name: "(unknown: 54321)", ID: 54321, Perms: []string{"hold"}},
				{Scope: LocalDescendent, Kind: Group, Name: "(unknown: 54322)", ID: 54322, Perms: []string{"hold"}},
			}},
		{Dataset: "drallow/a", Sets: map[string][]string{"@a1": {"release"}}, Create: []string{"rollback"},
			Entries: []AllowEntry{{Scope: LocalDescendent, Kind: Everyone, ID: -1, Perms: []string{"destroy"}}}},
		{Dataset: "drallow", Sets: map[string][]string{
			"@outer": {"@snapper", "bookmark"}, "@recv": {"create", "mount", "receive"}, "@snapper": {"hold", "send", "snapshot"}},
			Entries: []AllowEntry{
				{Scope: Local, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"userprop"}},
				{Scope: Descendent, Kind: Group, Name: "zrepdr", ID: -1, Perms: []string{"bookmark", "mount"}},
				{Scope: LocalDescendent, Kind: User, Name: "zrep-test", ID: -1, Perms: []string{"@snapper"}},
			}},
	}}
	if got := parseAllowFile(t, "2.3-c.txt"); !reflect.DeepEqual(got, want) {
		t.Errorf("2.3-c.txt:\n got %+v\nwant %+v", got, want)
	}
	if got := parseAllowFile(t, "2.3-long.txt"); got.Blocks[0].Dataset != "drallow/long-name-that-makes-the-header-longer-than-seventy-chars-x" {
		t.Errorf("long name: %q", got.Blocks[0].Dataset)
	}
	if got := parseAllowFile(t, "2.1-space.txt"); got.Blocks[0].Dataset != "drallow/a/with space" {
		t.Errorf("name with a space: %q", got.Blocks[0].Dataset)
	}
}

func TestParseAllowRejects(t *testing.T) {
	hdr := func(name string) string {
		s := "---- Permissions on " + name + " "
		return s + strings.Repeat("-", max(0, 70-len(s))) + "\n"
	}
	for _, tt := range []struct{ name, in, msg string }{
		{"garbage", "hello\n", `unexpected line "hello"`},
		{"section first", "Local permissions:\n\tuser a send\n", "before the first"},
		{"entry without section", hdr("p") + "\tuser a send\n", "unexpected line"},
		{"short header", "---- Permissions on p ---\n", "25 columns, expected 70"},
		{"header without space", "---- Permissions on p-----------------------------------------------------\n", "bad header"},
		{"bad dataset", hdr("p//a"), "bad header"},
		{"twice", hdr("p") + hdr("p"), "listed twice"},
		{"unknown kind", hdr("p") + "Local permissions:\n\tuserx a send\n", "expected user, group or everyone"},
		{"no perms", hdr("p") + "Local permissions:\n\tuser a\n", "expected user NAME PERMISSIONS"},
		{"upper case perm", hdr("p") + "Local permissions:\n\tuser a Send\n", "expected user NAME PERMISSIONS"},
		{"empty perm", hdr("p") + "Local permissions:\n\teveryone send,,hold\n", "expected everyone PERMISSIONS"},
		{"bad id", hdr("p") + "Local permissions:\n\tuser (unknown: x) send\n", "bad id"},
		{"huge id", hdr("p") + "Local permissions:\n\tgroup (unknown: 99999999999) send\n", "bad id"},
		{"set without @", hdr("p") + "Permission sets:\n\tsnapper send\n", "expected @SET PERMISSIONS"},
		{"set twice", hdr("p") + "Permission sets:\n\t@s send\n\t@s hold\n", "defined twice"},
		{"two create lines", hdr("p") + "Create time permissions:\n\tsend\n\thold\n", "one line of create time"},
		{"untabbed", hdr("p") + "Local permissions:\n    user a send\n", "unexpected line"},
		{"long line", hdr("p") + "Local permissions:\n\teveryone " + strings.Repeat("a", maxLine) + "\n", "longer than"},
		{"too long", strings.Repeat(hdr("p"), maxAllowOutput/70+1), "longer than 1048576 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAllow(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %+v, %v; want an error with %q", a, err, tt.msg)
			}
		})
	}
	if a, err := ParseAllow(strings.NewReader("")); err != nil || len(a.Blocks) != 0 {
		t.Errorf("empty output: %+v, %v", a, err)
	}
}

func TestEffective(t *testing.T) {
	zrep := Principal{User: "zrep-test", UID: 998, Groups: []string{"zrep-test"}, GIDs: []uint32{998}}
	member := Principal{User: "alice", UID: 1000, Groups: []string{"alice", "zrepdr"}, GIDs: []uint32{1000, 1001}}
	stranger := Principal{User: "bob", UID: 1002, Groups: []string{"bob"}, GIDs: []uint32{1002}}
	unknownUID := Principal{UID: 54321}
	unknownGID := Principal{User: "carol", UID: 1003, GIDs: []uint32{1003, 54322}}
	root := Principal{User: "root", Groups: []string{"root"}, GIDs: []uint32{0}}
	c := parseAllowFile(t, "2.3-c.txt")
	space := parseAllowFile(t, "2.3-space.txt")
	for _, tt := range []struct {
		what      string
		a         *Allow
		name      string
		who       Principal
		has, lack string
	}{
		// send local on c; hold via @snapper (Local+Descendent on drallow);
		// create,mount,receive:append Local+Descendent on c; bookmark via
		// everyone @outer on c, @outer defined on drallow; destroy
		// everyone on drallow/a; userprop is Local on drallow only.
		{"c", c, "drallow/a/b/c", zrep, "bookmark,create,destroy,hold,mount,receive:append,send,snapshot", "userprop,rollback,release,receive"},
		// A snapshot is a descendant: Local entries do not apply, the
		// Descendent hold on c does.
		{"snapshot of c", c, "drallow/a/b/c@s", zrep, "bookmark,create,destroy,hold,mount,receive:append,send,snapshot", "userprop"},
		// @recv,send are Local on drallow/a/b: its own, not its snapshots'
		// (send comes from @snapper there) nor its children's.
		{"b", c, "drallow/a/b", zrep, "create,mount,receive,send,hold,destroy", "bookmark"},
		{"snapshot of b", c, "drallow/a/b@s", zrep, "send,hold,destroy,snapshot", "create,mount,receive"},
		{"new child of b", c, "drallow/a/b/new", zrep, "send,hold,destroy", "create,receive"},
		{"pool", c, "drallow", zrep, "hold,send,snapshot,userprop", "bookmark,destroy,mount"},
		{"group on pool", c, "drallow", member, "", "mount,bookmark,destroy,send"},
		{"group below", c, "drallow/a", member, "mount,bookmark,destroy", "send,hold"},
		{"stranger", c, "drallow/a/b/c", stranger, "destroy,bookmark,hold,send,snapshot", "mount,create"},
		{"stranger on pool", c, "drallow", stranger, "", "send,destroy"},
		{"unknown uid", c, "drallow/a/b", unknownUID, "hold,destroy", "send"},
		{"unknown gid", c, "drallow/a/b/c", unknownGID, "hold,destroy", "create"},
		{"root by name", c, "drallow/a/b/c", root, "send,destroy", "create"},
		{"name with a space", space, "drallow/a/with space", zrep, "compression,quota,destroy,hold,send", "rollback,release"},
		{"not below", c, "other/a", zrep, "", "send,destroy"},
	} {
		t.Run(tt.what, func(t *testing.T) {
			got := tt.a.Effective(tt.name, tt.who)
			if tt.has != "" {
				if m := got.Missing(strings.Split(tt.has, ",")...); m != nil {
					t.Errorf("lacks %v; has %v", m, got.Sorted())
				}
			}
			for _, p := range strings.Split(tt.lack, ",") {
				if got[p] {
					t.Errorf("has %s; has %v", p, got.Sorted())
				}
			}
			for p := range got {
				if isSet(p) {
					t.Errorf("set %s in the result", p)
				}
			}
		})
	}
}

// The set rules of dsl_deleg_access_impl, on made-up outputs.
func TestEffectiveSets(t *testing.T) {
	hdr := func(name string) string {
		s := "---- Permissions on " + name + " "
		return s + strings.Repeat("-", max(0, 70-len(s))) + "\n"
	}
	anyone := Principal{User: "x", UID: 5}
	for _, tt := range []struct {
		what, in, name, want string
	}{
		{"nearest definition wins",
			hdr("p/a") + "Permission sets:\n\t@s hold\nLocal+Descendent permissions:\n\teveryone @s\n" +
				hdr("p") + "Permission sets:\n\t@s send\n", "p/a/b", "hold"},
		{"a definition below the grant does not count",
			hdr("p/a") + "Permission sets:\n\t@s hold\n" +
				hdr("p") + "Local+Descendent permissions:\n\teveryone @s\n", "p/a/b", ""},
		{"nested sets expand from where they are found",
			hdr("p/a") + "Permission sets:\n\t@outer @inner\nLocal+Descendent permissions:\n\teveryone @outer\n" +
				hdr("p") + "Permission sets:\n\t@inner send\n", "p/a", "send"},
		{"cycles end",
			hdr("p") + "Permission sets:\n\t@a @b,send\n\t@b @a,hold\nLocal+Descendent permissions:\n\teveryone @a\n", "p/x", "hold,send"},
		{"undefined set", hdr("p") + "Local+Descendent permissions:\n\teveryone @nope,send\n", "p", "send"},
		{"create time grants nothing", hdr("p") + "Create time permissions:\n\tdestroy\n", "p/a", ""},
		{"order zfs printed does not matter",
			hdr("p") + "Permission sets:\n\t@s send\n" +
				hdr("p/a") + "Permission sets:\n\t@s hold\nDescendent permissions:\n\teveryone @s\n", "p/a/b", "hold"},
	} {
		t.Run(tt.what, func(t *testing.T) {
			a, err := ParseAllow(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(a.Effective(tt.name, anyone).Sorted(), ","); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestZFSAllow(t *testing.T) {
	out := readTestdata(t, "allow/2.3-pool.txt")
	f := openzfsFake(t).
		on("allow drallow", out, nil).
		on("allow nopool", "", notFoundErr("allow nopool", "nopool")).
		on("allow garbage", "hello\n", nil)
	z := New(f)
	a, err := z.Allow(ctx, "drallow")
	if err != nil || len(a.Blocks) != 1 || a.Blocks[0].Dataset != "drallow" {
		t.Errorf("Allow: %+v, %v", a, err)
	}
	if _, err := z.Allow(ctx, "nopool"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing dataset: %v", err)
	}
	if _, err := z.Allow(ctx, "garbage"); err == nil || !strings.Contains(err.Error(), `zfs allow garbage: zfs output line 1: unexpected line "hello"`) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := z.Allow(ctx, "-o"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := z.Allow(ctx, "p@s"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("snapshot: %v", err)
	}
	// zfs-fuse, as on this project's development machine: the message
	// is on stdout.
	f = fuseFake(t).on("allow p", "internal error: /usr/lib/zfs/pyzfs.py not found\n", &CommandError{Args: []string{"allow", "p"}, ExitCode: 255})
	if _, err := New(f).Allow(ctx, "p"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "pyzfs.py not found") {
		t.Errorf("zfs-fuse: %v", err)
	}
}

func FuzzParseAllow(f *testing.F) {
	files, _ := filepath.Glob("testdata/allow/*.txt")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("---- Permissions on p ------------------------------------------------\nLocal permissions:\n\tuser (unknown: 1) @a b,c\n")
	f.Fuzz(func(t *testing.T, out string) {
		a, err := ParseAllow(strings.NewReader(out))
		if err != nil {
			return
		}
		who := Principal{User: "zrep-test", UID: 1, Groups: []string{"zrepdr"}, GIDs: []uint32{54322}}
		for _, b := range a.Blocks {
			if ValidateDatasetName(b.Dataset) != nil {
				t.Fatalf("block for %q", b.Dataset)
			}
			for _, e := range b.Entries {
				if len(e.Perms) == 0 || e.Scope == 0 || e.Scope > LocalDescendent {
					t.Fatalf("entry %+v", e)
				}
			}
			for _, name := range []string{b.Dataset, b.Dataset + "@s", b.Dataset + "/x"} {
				for p := range a.Effective(name, who) {
					if isSet(p) || !validPermName(p) {
						t.Fatalf("Effective(%q) has %q", name, p)
					}
				}
			}
		}
	})
}
