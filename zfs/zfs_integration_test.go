package zfs

// Integration tests against the real zfs (zfs-fuse on the host, OpenZFS 2.1 and
// 2.3 in the lab's VMs: make test-openzfs). They create
// file-backed pools with unique names and destroy them in t.Cleanup. Without zfs they
// skip, unless ZREP_REQUIRE_ZFS=1, which makes them fail instead.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/testenv"
)

// newPool creates a file-backed pool with a unique name, destroyed at cleanup.
func newPool(t *testing.T) (name, mnt string) {
	t.Helper()
	p := testenv.NewPool(t, "z", 256)
	return p.Name, p.Mountpoint
}

// zfsProcesses lists the pids of processes whose command line contains all the words.
func zfsProcesses(words ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "zfs" || gone(pid) {
			continue
		}
		line := strings.Join(args, " ")
		match := true
		for _, w := range words {
			if !strings.Contains(line, w) {
				match = false
			}
		}
		if match {
			pids = append(pids, pid)
		}
	}
	return pids
}

func names(vs []Version) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// pipe sends o into a receive with r and returns the errors of both ends.
func pipe(t *testing.T, z *ZFS, o SendOptions, r RecvOptions) error {
	t.Helper()
	rc, err := z.Send(ctx, o)
	if err != nil {
		return err
	}
	defer rc.Close()
	in, err := z.Recv(ctx, r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(in, rc); err != nil {
		in.Abort()
		return err
	}
	return in.Close()
}

func TestIntegrationFeatures(t *testing.T) {
	testenv.RequireZFS(t)
	f, err := New(&CLI{}).Features(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("features of the installed zfs: %+v", f)
	version, openZFS := testenv.OpenZFS(t)
	if !openZFS {
		if f != (Features{}) {
			t.Errorf("zfs-fuse detected with features %+v", f)
		}
		return
	}
	// OpenZFS 2.x has every feature zrep detects.
	if !f.ListParsable || !f.Bookmarks || !f.RecvUnmounted || !f.ResumeTokens || !f.SendEstimate {
		t.Errorf("%s detected with features %+v, want all of them", version, f)
	}
}

func TestIntegrationList(t *testing.T) {
	pool, _ := newPool(t)
	z := New(&CLI{})
	for _, ds := range []string{pool + "/a", pool + "/sp ace", pool + "/a/c"} {
		testenv.Run(t, "zfs", "create", ds)
	}
	for _, s := range []string{pool + "/a@s1", pool + "/a@s2", pool + "/sp ace@x y", pool + "/a/c@c1"} {
		testenv.Run(t, "zfs", "snapshot", s)
	}
	before := time.Now().Add(-time.Minute)

	all, err := z.ListDatasets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	below, err := z.ListDatasets(ctx, pool+"/a")
	if want := []Dataset{{Name: pool + "/a", Type: Filesystem}, {Name: pool + "/a/c", Type: Filesystem}}; err != nil || !reflect.DeepEqual(below, want) {
		t.Errorf("ListDatasets(%s/a) = %+v, %v; want %+v", pool, below, err, want)
	}
	if _, err := z.ListDatasets(ctx, pool+"/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListDatasets(%s/nope) error %v, want ErrNotFound", pool, err)
	}
	var mine []Dataset
	for _, d := range all {
		if underRoot(d.Name, pool) {
			mine = append(mine, d)
		}
	}
	wantDS := []Dataset{{Name: pool, Type: Filesystem}, {Name: pool + "/a", Type: Filesystem}, {Name: pool + "/a/c", Type: Filesystem}, {Name: pool + "/sp ace", Type: Filesystem}}
	if !reflect.DeepEqual(mine, wantDS) {
		t.Errorf("ListDatasets: %+v", mine)
	}

	vs, err := z.ListVersions(ctx, pool+"/a")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(vs); !reflect.DeepEqual(got, []string{pool + "/a@s1", pool + "/a@s2"}) {
		t.Fatalf("ListVersions: %q", got)
	}
	for i, v := range vs {
		if g := testenv.GUID(t, v.Name); v.GUID != g {
			t.Errorf("%s: guid %d, zfs get says %d", v.Name, v.GUID, g)
		}
		if v.Type != Snapshot || v.CreateTXG == 0 || v.Creation.Before(before) || v.Creation.After(time.Now().Add(time.Minute)) ||
			v.Creation.Location() != time.UTC || v.Dataset() != pool+"/a" {
			t.Errorf("version %+v", v)
		}
		if i > 0 && vs[i-1].CreateTXG >= v.CreateTXG {
			t.Errorf("createtxg not increasing: %+v", vs)
		}
	}
	if vs, err := z.ListVersions(ctx, pool+"/sp ace"); err != nil || len(vs) != 1 || vs[0].ShortName() != "x y" {
		t.Errorf("ListVersions with spaces: %+v, %v", vs, err)
	}
	if _, err := z.ListVersions(ctx, pool+"/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListVersions of a missing dataset: %v", err)
	}

	tree, err := z.ListTree(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var treeNames []string
	for _, d := range tree {
		treeNames = append(treeNames, d.Name)
		want, err := z.ListVersions(ctx, d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 {
			want = nil
		}
		if !reflect.DeepEqual(d.Versions, want) {
			t.Errorf("ListTree %s: %+v, ListVersions: %+v", d.Name, d.Versions, want)
		}
	}
	if want := []string{pool, pool + "/a", pool + "/a/c", pool + "/sp ace"}; !reflect.DeepEqual(treeNames, want) {
		t.Errorf("ListTree(%s): %q", pool, treeNames)
	}
	sub, err := z.ListTree(ctx, pool+"/a")
	if err != nil || len(sub) != 2 || sub[0].Name != pool+"/a" || sub[1].Name != pool+"/a/c" || len(sub[1].Versions) != 1 {
		t.Errorf("ListTree(%s/a): %+v, %v", pool, sub, err)
	}
	everything, err := z.ListTree(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var mineTree []DatasetVersions
	for _, d := range everything {
		if underRoot(d.Name, pool) {
			mineTree = append(mineTree, d)
		}
	}
	if !reflect.DeepEqual(mineTree, tree) {
		t.Errorf("ListTree(\"\") differs from ListTree(%s)", pool)
	}
	if _, err := z.ListTree(ctx, pool+"/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListTree of a missing root: %v", err)
	}

	for name, want := range map[string]bool{
		pool + "/a": true, pool + "/a@s1": true, pool + "/sp ace@x y": true,
		pool + "/a@nope": false, pool + "/nope": false, pool + "/nope@s1": false, pool + "/a#b": false,
	} {
		if got, err := z.Exists(ctx, name); got != want || err != nil {
			t.Errorf("Exists(%q) = %v, %v", name, got, err)
		}
	}
}

func TestIntegrationSendRecv(t *testing.T) {
	src, srcMnt := newPool(t)
	dst, _ := newPool(t)
	z := New(&CLI{})
	testenv.Run(t, "zfs", "create", src+"/a")
	for i := 1; i <= 4; i++ {
		testenv.WriteRandom(t, filepath.Join(srcMnt, "a", fmt.Sprintf("f%d", i)), 200<<10)
		testenv.Run(t, "zfs", "snapshot", fmt.Sprintf("%s/a@s%d", src, i))
	}
	if err := z.CreatePlaceholder(ctx, dst+"/backup"); err != nil {
		t.Fatal(err)
	}
	if mp := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "mountpoint", dst+"/backup")); mp != "none" {
		t.Errorf("placeholder mountpoint %q", mp)
	}
	target := dst + "/backup/a"
	check := func(want ...string) {
		t.Helper()
		vs, err := z.ListVersions(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vs {
			got = append(got, v.ShortName())
			if srcGUID := testenv.GUID(t, src+"/a@"+v.ShortName()); v.GUID != srcGUID {
				t.Errorf("%s: guid %d, source has %d", v.Name, v.GUID, srcGUID)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s has %q, want %q", target, got, want)
		}
	}

	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: target}); err != nil {
		t.Fatalf("full send: %v", err)
	}
	check("s1")
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}, RecvOptions{Target: target}); err != nil {
		t.Fatalf("incremental send: %v", err)
	}
	check("s1", "s2")
	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s4", From: src + "/a@s2", Intermediates: true}, RecvOptions{Target: target}); err != nil {
		t.Fatalf("send -I: %v", err)
	}
	check("s1", "s2", "s3", "s4")

	// An incremental whose base the target lacks is refused by zfs receive.
	err := pipe(t, z, SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}, RecvOptions{Target: dst + "/backup/other"})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Errorf("incremental onto a missing target: %v", err)
	}

	if err := z.Rollback(ctx, target+"@s3", true); err != nil {
		t.Fatal(err)
	}
	check("s1", "s2", "s3")
	if err := z.DestroySnapshot(ctx, target+"@s1"); err != nil {
		t.Fatal(err)
	}
	check("s2", "s3")
	if err := z.DestroySnapshot(ctx, target+"@s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroying a destroyed snapshot: %v", err)
	}
	if err := z.CreatePlaceholder(ctx, dst+"/nope/x"); err == nil {
		t.Error("CreatePlaceholder without parent succeeded")
	}
}

func TestIntegrationSendClosedEarly(t *testing.T) {
	pool, mnt := newPool(t)
	z := New(&CLI{})
	testenv.Run(t, "zfs", "create", pool+"/big")
	testenv.WriteRandom(t, filepath.Join(mnt, "big", "data"), 32<<20)
	snap := pool + "/big@s1"
	testenv.Run(t, "zfs", "snapshot", snap)

	rc, err := z.Send(ctx, SendOptions{Snapshot: snap})
	if err != nil {
		t.Fatal(err)
	}
	pid := rc.(*outputStream).p.cmd.Process.Pid
	if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !gone(pid) {
		t.Errorf("zfs send (pid %d) still running after Close", pid)
	}
	if pids := zfsProcesses("send", snap); len(pids) != 0 {
		t.Errorf("zfs send processes left: %v", pids)
	}
	// The daemon is not stuck: the whole stream can be sent afterwards.
	rc, err = z.Send(ctx, SendOptions{Snapshot: snap})
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n < 32<<20 {
		t.Errorf("second send: %d bytes, %v", n, err)
	}
	rc.Close()
}

func TestIntegrationRecvAborted(t *testing.T) {
	src, srcMnt := newPool(t)
	dst, _ := newPool(t)
	z := New(&CLI{})
	testenv.Run(t, "zfs", "create", src+"/a")
	testenv.WriteRandom(t, filepath.Join(srcMnt, "a", "small"), 10<<10)
	testenv.Run(t, "zfs", "snapshot", src+"/a@s1")
	testenv.WriteRandom(t, filepath.Join(srcMnt, "a", "big"), 32<<20)
	testenv.Run(t, "zfs", "snapshot", src+"/a@s2")
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", dst+"/b")
	target := dst + "/b/a"

	// cut sends o, feeds about 1 MiB of it to a receive and aborts the receive.
	cut := func(o SendOptions, target string) {
		t.Helper()
		rc, err := z.Send(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		in, err := z.Recv(ctx, RecvOptions{Target: target})
		if err != nil {
			t.Fatal(err)
		}
		pid := in.(*inputStream).p.cmd.Process.Pid
		if _, err := io.CopyN(in, rc, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := in.Abort(); err != nil {
			t.Errorf("Abort: %v", err)
		}
		if err := in.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if !gone(pid) {
			t.Errorf("zfs receive (pid %d) still running after Abort", pid)
		}
		if pids := zfsProcesses("receive", target); len(pids) != 0 {
			t.Errorf("zfs receive processes left: %v", pids)
		}
	}

	// A cut full stream leaves no dataset behind, as soon as Abort returned:
	// a next run, started at once, must not find an empty target.
	cut(SendOptions{Snapshot: src + "/a@s2"}, target)
	if ok, err := z.Exists(ctx, target); err != nil || ok {
		t.Fatalf("after an aborted full receive: %s exists %v (%v)", target, ok, err)
	}

	if err := pipe(t, z, SendOptions{Snapshot: src + "/a@s1"}, RecvOptions{Target: target}); err != nil {
		t.Fatal(err)
	}
	before, err := z.ListVersions(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	// A cut incremental stream leaves the target as it was.
	cut(SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}, target)
	var after []Version
	waitFor(t, func() bool {
		after, err = z.ListVersions(ctx, target)
		return err == nil && reflect.DeepEqual(after, before)
	}, "target changed after an aborted receive")
	if len(after) != 1 || after[0].GUID != testenv.GUID(t, src+"/a@s1") {
		t.Errorf("after abort: %+v", after)
	}
	// And the same incremental still applies afterwards. zfs-fuse's daemon may still hold
	// the target for a moment after the killed receive ("dataset is busy").
	start := time.Now()
	for {
		err := pipe(t, z, SendOptions{Snapshot: src + "/a@s2", From: src + "/a@s1"}, RecvOptions{Target: target})
		if err == nil {
			break
		}
		if !isBusy(err) || time.Since(start) > 30*time.Second {
			t.Fatalf("incremental after abort: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("incremental after abort applied after %v", time.Since(start).Round(time.Millisecond))
	if vs, err := z.ListVersions(ctx, target); err != nil || len(vs) != 2 || vs[1].GUID != testenv.GUID(t, src+"/a@s2") {
		t.Errorf("after the incremental: %+v, %v", vs, err)
	}
}

// waitFor polls cond for a few seconds: zfs-fuse finishes an aborted receive in its daemon.
func waitFor(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Error(msg)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestIntegrationSendMissing(t *testing.T) {
	pool, _ := newPool(t)
	z := New(&CLI{})
	testenv.Run(t, "zfs", "create", pool+"/a")
	testenv.Run(t, "zfs", "snapshot", pool+"/a@s1")

	for _, o := range []SendOptions{
		{Snapshot: pool + "/a@nope"},
		{Snapshot: pool + "/nope@s1"},
		{Snapshot: pool + "/a@s1", From: pool + "/a@nope"},
	} {
		rc, err := z.Send(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		var ce *CommandError
		if !errors.As(err, &ce) || ce.ExitCode == 0 || !errors.Is(err, ErrNotFound) {
			t.Errorf("send %+v: read %d bytes, err %v", o, len(data), err)
		} else {
			t.Logf("send %+v: %v", o, err)
		}
		if err := rc.Close(); !errors.As(err, &ce) {
			t.Errorf("Close: %v, want the CommandError", err)
		}
	}
}

func TestIntegrationContextCancel(t *testing.T) {
	pool, mnt := newPool(t)
	z := New(&CLI{})
	testenv.Run(t, "zfs", "create", pool+"/big")
	testenv.WriteRandom(t, filepath.Join(mnt, "big", "data"), 16<<20)
	testenv.Run(t, "zfs", "snapshot", pool+"/big@s1")
	cctx, cancel := context.WithCancel(ctx)
	rc, err := z.Send(cctx, SendOptions{Snapshot: pool + "/big@s1"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		// The stream may have been complete before the kill; then it must have ended cleanly.
		if err != nil {
			t.Errorf("after cancel: %v", err)
		}
	}
}
