package handlers_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// cursorFake is fakeZFS with bookmarks: it records and applies them.
type cursorFake struct {
	*fakeZFS
	changes []string
}

func (c *cursorFake) Bookmark(ctx context.Context, snapshot, bookmark string) error {
	c.changes = append(c.changes, "bookmark "+snapshot+" "+bookmark)
	ds, _, _ := strings.Cut(snapshot, "@")
	for _, v := range c.versions[ds] {
		if v.Name == snapshot {
			c.versions[ds] = append(c.versions[ds], zfs.Version{Name: bookmark, Type: zfs.Bookmark, GUID: v.GUID, CreateTXG: v.CreateTXG})
		}
	}
	return nil
}

func (c *cursorFake) DestroyBookmark(ctx context.Context, bookmark string) error {
	c.changes = append(c.changes, "destroy "+bookmark)
	ds, _, _ := strings.Cut(bookmark, "#")
	var kept []zfs.Version
	for _, v := range c.versions[ds] {
		if v.Name != bookmark {
			kept = append(kept, v)
		}
	}
	c.versions[ds] = kept
	return nil
}

func cursorSession(t *testing.T, features zfs.Features) (*cursorFake, *rpc.Client) {
	z := &cursorFake{fakeZFS: newFake()}
	z.features = features
	return z, connect(t, handlers.New(z, policyFor(t, "backup"), zaptest.NewLogger(t), handlers.Cursors(z, "backup")))
}

// confirmOn confirms a snapshot of tank/data through cl and returns the
// bookmark the source names.
func confirmOn(t *testing.T, cl *rpc.Client, snap string, guid api.GUID) string {
	t.Helper()
	var resp api.ConfirmResponse
	if err := cl.Call(context.Background(), api.MethodConfirm, api.ConfirmRequest{Dataset: "tank/data", Snapshot: snap, GUID: guid}, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Bookmark
}

// TestConfirmMovesTheCursor: the first confirmation makes the cursor; a
// later one moves it, destroying the old cursor only after the new
// position has a bookmark; nothing but the caller's cursor is destroyed.
func TestConfirmMovesTheCursor(t *testing.T) {
	z, cl := cursorSession(t, zfs.Features{Bookmarks: true})
	confirm := func(snap string, guid api.GUID) {
		t.Helper()
		if bm := confirmOn(t, cl, snap, guid); bm != "tank/data#zrep_cursor_backup" {
			t.Errorf("bookmark %q", bm)
		}
	}
	confirm("tank/data@s2", 102)
	confirm("tank/data@s2", 102) // already there: nothing changes
	confirm("tank/data@s3", 103)
	want := []string{
		"bookmark tank/data@s2 tank/data#zrep_cursor_backup",
		"bookmark tank/data@s3 tank/data#zrep_cursornext_backup",
		"destroy tank/data#zrep_cursor_backup",
		"bookmark tank/data@s3 tank/data#zrep_cursor_backup",
		"destroy tank/data#zrep_cursornext_backup",
	}
	if !reflect.DeepEqual(z.changes, want) {
		t.Errorf("changes\n%s\nwant\n%s", strings.Join(z.changes, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range z.changes {
		if strings.HasPrefix(c, "destroy ") && c != "destroy tank/data#zrep_cursor_backup" && c != "destroy tank/data#zrep_cursornext_backup" {
			t.Errorf("destroyed something else than the cursor: %s", c)
		}
	}
}

// TestConfirmAfterAnInterruptedMove: what an interrupted move leaves is
// finished: a leftover cursornext is destroyed before the move, a cursor
// missing is made again; a bookmark of the old naming
// (zrep_cursor_<identity>_next) is no longer zrep's and stays.
func TestConfirmAfterAnInterruptedMove(t *testing.T) {
	z, cl := cursorSession(t, zfs.Features{Bookmarks: true})
	confirm := func(snap string, guid api.GUID) { t.Helper(); confirmOn(t, cl, snap, guid) }
	ctx := context.Background()
	// Cut after cursornext was made: both exist.
	_ = z.Bookmark(ctx, "tank/data@s2", "tank/data#zrep_cursor_backup")
	_ = z.Bookmark(ctx, "tank/data@s3", "tank/data#zrep_cursornext_backup")
	_ = z.Bookmark(ctx, "tank/data@s2", "tank/data#zrep_cursor_backup_next")
	z.changes = nil
	confirm("tank/data@s3", 103)
	want := []string{
		"destroy tank/data#zrep_cursornext_backup",
		"bookmark tank/data@s3 tank/data#zrep_cursornext_backup",
		"destroy tank/data#zrep_cursor_backup",
		"bookmark tank/data@s3 tank/data#zrep_cursor_backup",
		"destroy tank/data#zrep_cursornext_backup",
	}
	if !reflect.DeepEqual(z.changes, want) {
		t.Errorf("with a leftover: changes\n%s\nwant\n%s", strings.Join(z.changes, "\n"), strings.Join(want, "\n"))
	}
	// Cut after the old cursor went: only cursornext is left.
	_ = z.DestroyBookmark(ctx, "tank/data#zrep_cursor_backup")
	_ = z.Bookmark(ctx, "tank/data@s3", "tank/data#zrep_cursornext_backup")
	z.changes = nil
	confirm("tank/data@s3", 103)
	if want := []string{"bookmark tank/data@s3 tank/data#zrep_cursor_backup"}; !reflect.DeepEqual(z.changes, want) {
		t.Errorf("without the cursor: changes %q, want %q", z.changes, want)
	}
	for _, c := range z.changes {
		if strings.Contains(c, "zrep_cursor_backup_next") {
			t.Errorf("touched the old-style bookmark: %s", c)
		}
	}
}

// TestConfirmSparesOtherCursors: identities whose names extend each other
// ("backup", "backup_next") never touch each other's cursor, however their
// moves interleave.
func TestConfirmSparesOtherCursors(t *testing.T) {
	z := &cursorFake{fakeZFS: newFake()}
	z.features = zfs.Features{Bookmarks: true}
	sessions := map[string]*rpc.Client{}
	for _, id := range []string{"backup", "backup_next"} {
		sessions[id] = connect(t, handlers.New(z, policyFor(t, "backup"), zaptest.NewLogger(t), handlers.Cursors(z, id)))
	}
	confirm := func(id, snap string, guid api.GUID) { t.Helper(); confirmOn(t, sessions[id], snap, guid) }
	confirm("backup_next", "tank/data@s2", 102)
	confirm("backup", "tank/data@s2", 102)
	confirm("backup", "tank/data@s3", 103)
	confirm("backup_next", "tank/data@s3", 103)
	confirm("backup", "tank/data@s2", 102)
	cursors := map[string]uint64{}
	for _, v := range z.versions["tank/data"] {
		if v.Type == zfs.Bookmark && strings.Contains(v.Name, "zrep_") {
			cursors[v.Name] = v.GUID
		}
	}
	want := map[string]uint64{"tank/data#zrep_cursor_backup": 102, "tank/data#zrep_cursor_backup_next": 103}
	if !reflect.DeepEqual(cursors, want) {
		t.Errorf("bookmarks %v, want %v", cursors, want)
	}

	// Each identity's listings mark its own cursor, and only that; an
	// endpoint without cursors marks none.
	plain := connect(t, handlers.New(z, policyFor(t, "backup"), zaptest.NewLogger(t)))
	for who, cl := range map[string]*rpc.Client{"backup": sessions["backup"], "backup_next": sessions["backup_next"], "": plain} {
		for _, method := range []string{api.MethodListFilesystems, api.MethodListVersions} {
			var req any = api.ListFilesystemsRequest{WithVersions: true}
			if method == api.MethodListVersions {
				req = api.ListVersionsRequest{Dataset: "tank/data"}
			}
			fss, loose, cerr := listing(t, cl, method, req)
			if cerr != nil {
				t.Fatalf("%s as %q: %v", method, who, cerr)
			}
			for _, fs := range fss {
				loose = append(loose, fs.Versions...)
			}
			var marked []string
			for _, v := range loose {
				if v.Cursor {
					marked = append(marked, v.Name)
				}
			}
			var wantMarked []string
			if who != "" {
				wantMarked = []string{"tank/data#zrep_cursor_" + who}
			}
			if !reflect.DeepEqual(marked, wantMarked) {
				t.Errorf("%s as %q marks %q, want %q", method, who, marked, wantMarked)
			}
		}
	}
}

// TestConfirmRefusals: what may not be confirmed changes nothing.
func TestConfirmRefusals(t *testing.T) {
	for _, tt := range []struct {
		name     string
		features zfs.Features
		req      api.ConfirmRequest
		code     rpc.Code
	}{
		{"a denied dataset", zfs.Features{Bookmarks: true}, api.ConfirmRequest{Dataset: "tank/data/private", Snapshot: "tank/data/private@s1", GUID: 301}, rpc.CodeNotFound},
		{"another guid", zfs.Features{Bookmarks: true}, api.ConfirmRequest{Dataset: "tank/data", Snapshot: "tank/data@s2", GUID: 999}, rpc.CodeNotFound},
		{"a bookmark", zfs.Features{Bookmarks: true}, api.ConfirmRequest{Dataset: "tank/data", Snapshot: "tank/data#b1", GUID: 101}, rpc.CodeInvalidArgument},
		{"another dataset's snapshot", zfs.Features{Bookmarks: true}, api.ConfirmRequest{Dataset: "tank/data", Snapshot: "tank/vm@v1", GUID: 501}, rpc.CodeInvalidArgument},
		{"zfs without bookmarks", zfs.Features{}, api.ConfirmRequest{Dataset: "tank/data", Snapshot: "tank/data@s2", GUID: 102}, rpc.CodeUnimplemented},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z, cl := cursorSession(t, tt.features)
			err := cl.Call(context.Background(), api.MethodConfirm, tt.req, nil)
			if rpc.CodeOf(err) != tt.code || len(z.changes) != 0 {
				t.Errorf("got %v, changes %q; want %s and none", err, z.changes, tt.code)
			}
		})
	}
}

// TestConfirmNeedsThePolicy: without cursor_bookmarks there is no Confirm,
// and the endpoint stays read-only.
func TestConfirmNeedsThePolicy(t *testing.T) {
	cl := session(t, newFake(), "backup")
	err := cl.Call(context.Background(), api.MethodConfirm, api.ConfirmRequest{Dataset: "tank/data", Snapshot: "tank/data@s2", GUID: 102}, nil)
	if rpc.CodeOf(err) != rpc.CodeUnimplemented {
		t.Errorf("Confirm without cursor_bookmarks: %v", err)
	}
}
