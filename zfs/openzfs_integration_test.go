package zfs

// Integration tests of what OpenZFS has and zfs-fuse lacks (bookmarks, size
// estimates, receive -u) and of behaviour to rely on in both. Each asserts
// what the zfs under test really does: on OpenZFS the feature works, on
// zfs-fuse zrep reports it unsupported (or answers as documented) without
// running anything. Nothing skips.

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/testenv"
)

// sourceWithTwoSnapshots makes pool/a with 1 MiB of random data in @s1 and
// another 1 MiB in @s2.
func sourceWithTwoSnapshots(t *testing.T) (pool string) {
	t.Helper()
	pool, mnt := newPool(t)
	testenv.Run(t, "zfs", "create", pool+"/a")
	testenv.WriteRandom(t, filepath.Join(mnt, "a", "f1"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", pool+"/a@s1")
	testenv.WriteRandom(t, filepath.Join(mnt, "a", "f2"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", pool+"/a@s2")
	return pool
}

func TestIntegrationBookmarks(t *testing.T) {
	src := sourceWithTwoSnapshots(t)
	z := New(&CLI{})
	version, openZFS := testenv.OpenZFS(t)
	if !openZFS {
		// zfs-fuse has no bookmarks: Exists says no and Send refuses without running zfs.
		if ok, err := z.Exists(ctx, src+"/a#b1"); ok || err != nil {
			t.Errorf("zfs-fuse: Exists(bookmark) = %v, %v", ok, err)
		}
		_, err := z.Send(ctx, SendOptions{Snapshot: src + "/a@s2", From: src + "/a#b1"})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("zfs-fuse: send from a bookmark: %v, want ErrUnsupported", err)
		}
		return
	}
	t.Logf("%s", version)
	testenv.Run(t, "zfs", "bookmark", src+"/a@s1", src+"/a#b1")
	vs, err := z.ListVersions(ctx, src+"/a")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Version{}
	for _, v := range vs {
		got[v.Name] = v
	}
	b, s1 := got[src+"/a#b1"], got[src+"/a@s1"]
	if len(vs) != 3 || b.Type != Bookmark || b.GUID == 0 || b.GUID != s1.GUID || b.CreateTXG != s1.CreateTXG || !b.Creation.Equal(s1.Creation) {
		t.Fatalf("versions of %s/a: %+v", src, vs)
	}
	for name, want := range map[string]bool{src + "/a#b1": true, src + "/a#nope": false} {
		if ok, err := z.Exists(ctx, name); ok != want || err != nil {
			t.Errorf("Exists(%s) = %v, %v", name, ok, err)
		}
	}

	// An incremental from the bookmark applies once its snapshot is gone.
	dst, _ := newPool(t)
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: dst + "/a"}); err != nil {
		t.Fatal(err)
	}
	if err := z.DestroySnapshot(ctx, src+"/a@s1"); err != nil {
		t.Fatal(err)
	}
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s2", From: src + "/a#b1"}, RecvOptions{Target: dst + "/a"}); err != nil {
		t.Fatalf("incremental from a bookmark: %v", err)
	}
	if g := testenv.GUID(t, dst+"/a@s2"); g != got[src+"/a@s2"].GUID {
		t.Errorf("received @s2 has guid %d, source %d", g, got[src+"/a@s2"].GUID)
	}
	_, err = z.Send(ctx, SendOptions{Snapshot: src + "/a@s2", From: src + "/a#b1", Intermediates: true})
	if err == nil || !strings.Contains(err.Error(), "-I needs a snapshot") {
		t.Errorf("send -I from a bookmark: %v", err)
	}
}

func TestIntegrationEstimateSend(t *testing.T) {
	src := sourceWithTwoSnapshots(t)
	z := New(&CLI{})
	full, err := z.EstimateSend(ctx, SendOptions{Snapshot: src + "/a@s2"})
	if err != nil {
		t.Fatal(err)
	}
	incr, err := z.EstimateSend(ctx, SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		if full != 0 || incr != 0 {
			t.Errorf("zfs-fuse cannot estimate, yet: full %d, incremental %d", full, incr)
		}
		return
	}
	// Random data does not compress: the stream carries it plus headers.
	if full < 2<<20 || full > 3<<20 {
		t.Errorf("full send of 2 MiB estimated at %d bytes", full)
	}
	if incr < 1<<20 || incr > 3<<19 {
		t.Errorf("incremental send of 1 MiB estimated at %d bytes", incr)
	}
	if _, err := z.EstimateSend(ctx, SendOptions{Snapshot: src + "/a@nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("estimate of a missing snapshot: %v", err)
	}
}

func TestIntegrationRecvUnmounted(t *testing.T) {
	src := sourceWithTwoSnapshots(t)
	dst, _ := newPool(t)
	z := New(&CLI{})
	f, err := z.Features(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		_, err := z.Recv(ctx, RecvOptions{Target: dst + "/a", Unmounted: true})
		if !errors.Is(err, ErrUnsupported) || f.RecvUnmounted {
			t.Errorf("zfs-fuse: receive -u: %v (features %+v), want ErrUnsupported", err, f)
		}
		return
	}
	mounted := func(ds string) string {
		return strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "mounted", ds))
	}
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: dst + "/a", Unmounted: true}); err != nil {
		t.Fatal(err)
	}
	if m := mounted(dst + "/a"); m != "no" {
		t.Errorf("received with -u, %s/a is mounted: %q", dst, m)
	}
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}, RecvOptions{Target: dst + "/a", Unmounted: true}); err != nil {
		t.Fatalf("incremental receive -u: %v", err)
	}
	if m := mounted(dst + "/a"); m != "no" {
		t.Errorf("after an incremental with -u, %s/a is mounted: %q", dst, m)
	}
	// Without -u the received file system is mounted, as on zfs-fuse.
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: dst + "/b"}); err != nil {
		t.Fatal(err)
	}
	if m := mounted(dst + "/b"); m != "yes" {
		t.Errorf("received without -u, %s/b is not mounted: %q", dst, m)
	}
}

// TestIntegrationRecvOntoChangedTarget: both zfs refuse an incremental onto
// a target whose data changed since its latest snapshot, with the same
// words; both accept one onto a target whose newer snapshot of its own
// holds no change (zrep's planner refuses that divergence itself).
func TestIntegrationRecvOntoChangedTarget(t *testing.T) {
	src := sourceWithTwoSnapshots(t)
	dst, dstMnt := newPool(t)
	z := New(&CLI{})
	incremental := SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}

	for _, ds := range []string{"changed", "snapshotted"} {
		if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: dst + "/" + ds}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WriteRandom(t, filepath.Join(dstMnt, "changed", "local"), 4096)
	testenv.Run(t, "zfs", "snapshot", dst+"/snapshotted@local")

	err := pipe(t, z, incremental, RecvOptions{Target: dst + "/changed"})
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Stderr, "has been modified") {
		t.Errorf("incremental onto a changed target: %v", err)
	}
	if snaps := testenv.Snapshots(t, dst+"/changed"); len(snaps) != 1 {
		t.Errorf("refused receive left %v", snaps)
	}

	if err := pipe(t, z, incremental, RecvOptions{Target: dst + "/snapshotted"}); err != nil {
		t.Errorf("incremental onto a target with an unchanged snapshot of its own: %v", err)
	}
	if snaps := testenv.Snapshots(t, dst+"/snapshotted"); len(snaps) != 3 {
		t.Errorf("after the receive: %v, want s1, local, s2", snaps)
	}
}
