package zfs

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pkg/errors"
)

func fuseFake(t *testing.T) *fakeRunner {
	return newFake(readTestdata(t, "usage-zfs-fuse-0.7.txt"))
}

func openzfsFake(t *testing.T) *fakeRunner {
	return newFake(readTestdata(t, "usage-openzfs-2.2.txt"))
}

func notFoundErr(args string, name string) error {
	return &CommandError{Args: strings.Fields(args), ExitCode: 1,
		Stderr: "cannot open '" + name + "': dataset does not exist"}
}

var ctx = context.Background()

func TestFeaturesCachedAndRetried(t *testing.T) {
	f := newFake("garbage")
	z := New(f)
	if _, err := z.Features(ctx); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("Features with garbage usage: %v", err)
	}
	f.usage = readTestdata(t, "usage-openzfs-2.2.txt")
	got, err := z.Features(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ListParsable || !got.Bookmarks {
		t.Errorf("features %+v", got)
	}
	f.usage = "garbage"
	if _, err := z.Features(ctx); err != nil {
		t.Fatalf("cached features not used: %v", err)
	}
	if n := f.numCalls(); n != 2 {
		t.Errorf("%d probes, want 2", n)
	}
}

func TestFeaturesRunError(t *testing.T) {
	z := New(&CLI{Bin: "/nonexistent/zfs"})
	if _, err := z.Features(ctx); err == nil || !strings.Contains(err.Error(), "detect zfs features") {
		t.Errorf("err = %v", err)
	}
}

func TestListDatasets(t *testing.T) {
	f := fuseFake(t).
		on("list -H -o name,type -t filesystem,volume", "p/b\tfilesystem\np\tfilesystem\np/a\tvolume\n", nil).
		on("list -H -o name,type -t filesystem,volume -r p/a", "p/a\tvolume\n", nil).
		on("list -H -o name,type -t filesystem,volume -r p/x", "", &CommandError{ExitCode: 1, Stderr: "cannot open 'p/x': dataset does not exist"})
	got, err := New(f).ListDatasets(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Dataset{{Name: "p", Type: Filesystem}, {Name: "p/a", Type: Volume}, {Name: "p/b", Type: Filesystem}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if n := len(f.callsExceptProbe()); n != 1 {
		t.Errorf("%d zfs processes, want 1", n)
	}
	if got, err := New(f).ListDatasets(ctx, "p/a"); err != nil || !reflect.DeepEqual(got, []Dataset{{Name: "p/a", Type: Volume}}) {
		t.Errorf("ListDatasets(p/a) = %+v, %v", got, err)
	}
	if _, err := New(f).ListDatasets(ctx, "p/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ListDatasets(p/x) error %v, want ErrNotFound", err)
	}
	before := f.numCalls()
	if _, err := New(f).ListDatasets(ctx, "-r"); !errors.Is(err, ErrInvalidName) || f.numCalls() != before {
		t.Errorf("ListDatasets(-r) error %v after %d zfs runs, want ErrInvalidName and none", err, f.numCalls()-before)
	}
}

func TestListVersionsZFSFuse(t *testing.T) {
	args := "get -H -p -o name,property,value -d 1 type,guid,createtxg,creation zrtry/a"
	out := "zrtry/a\ttype\tfilesystem\nzrtry/a\tguid\t1\nzrtry/a\tcreatetxg\t7\nzrtry/a\tcreation\t1795604900\n" +
		"zrtry/a@s2\ttype\tsnapshot\nzrtry/a@s2\tguid\t12798537530743906077\nzrtry/a@s2\tcreatetxg\t21\nzrtry/a@s2\tcreation\t1795604901\n" +
		"zrtry/a@s1\ttype\tsnapshot\nzrtry/a@s1\tguid\t11539319276311639020\nzrtry/a@s1\tcreatetxg\t16\nzrtry/a@s1\tcreation\t1795604900\n" +
		"zrtry/a/c\ttype\tfilesystem\nzrtry/a/c\tguid\t2\nzrtry/a/c\tcreatetxg\t11\nzrtry/a/c\tcreation\t1795604900\n"
	f := fuseFake(t).on(args, out, nil).
		on("get -H -p -o name,property,value -d 1 type,guid,createtxg,creation zrtry/nope", "",
			notFoundErr("get ... zrtry/nope", "zrtry/nope")).
		on("get -H -p -o name,property,value -d 1 type,guid,createtxg,creation zrtry/empty",
			"zrtry/empty\ttype\tfilesystem\nzrtry/empty\tguid\t1\nzrtry/empty\tcreatetxg\t7\nzrtry/empty\tcreation\t1795604900\n", nil)
	z := New(f)
	got, err := z.ListVersions(ctx, "zrtry/a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Version{
		{"zrtry/a@s1", Snapshot, 11539319276311639020, 16, unixTime(1795604900)},
		{"zrtry/a@s2", Snapshot, 12798537530743906077, 21, unixTime(1795604901)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if calls := f.callsExceptProbe(); len(calls) != 1 || strings.Join(calls[0], " ") != args {
		t.Errorf("calls %q", calls)
	}

	_, err = z.ListVersions(ctx, "zrtry/nope")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing dataset: %v, want ErrNotFound", err)
	}
	got, err = z.ListVersions(ctx, "zrtry/empty")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty dataset: %#v, %v", got, err)
	}
	if _, err := z.ListVersions(ctx, "zrtry/a@s1"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("snapshot as dataset: %v", err)
	}
}

func TestListVersionsOpenZFS(t *testing.T) {
	wantArgs := []string{"list", "-H", "-p", "-o", "name,type,guid,createtxg,creation,encryption,encryptionroot",
		"-t", "filesystem,volume,snapshot,bookmark", "-d", "1", "tank/a"}
	f := openzfsFake(t).on(strings.Join(wantArgs, " "), listOutputEncrypted, nil)
	got, err := New(f).ListVersions(ctx, "tank/a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Version{
		{"tank/a#s1", Bookmark, 11539319276311639020, 16, unixTime(1700000002)},
		{"tank/a@s1", Snapshot, 11539319276311639020, 16, unixTime(1700000002)},
		{"tank/a@s2", Snapshot, 12798537530743906077, 21, unixTime(1700000003)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if calls := f.callsExceptProbe(); len(calls) != 1 || !reflect.DeepEqual(calls[0], wantArgs) {
		t.Errorf("calls %q", calls)
	}
}

func TestListTree(t *testing.T) {
	t.Run("zfs-fuse all pools", func(t *testing.T) {
		f := fuseFake(t).on("get -H -p -o name,property,value -r type,guid,createtxg,creation", getOutput, nil)
		tree, err := New(f).ListTree(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(tree) != 4 || tree[1].Name != "zrtry/a" || len(tree[1].Versions) != 2 {
			t.Errorf("tree %+v", tree)
		}
	})
	t.Run("zfs-fuse subtree", func(t *testing.T) {
		f := fuseFake(t).on("get -H -p -o name,property,value -r type,guid,createtxg,creation zrtry", getOutput, nil).
			on("get -H -p -o name,property,value -r type,guid,createtxg,creation zrtry/x", "", notFoundErr("get", "zrtry/x"))
		z := New(f)
		tree, err := z.ListTree(ctx, "zrtry")
		if err != nil || len(tree) != 4 {
			t.Fatalf("tree %+v, %v", tree, err)
		}
		if _, err := z.ListTree(ctx, "zrtry/x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing root: %v", err)
		}
		if _, err := z.ListTree(ctx, "zrtry/x@y"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("bad root: %v", err)
		}
	})
	t.Run("OpenZFS", func(t *testing.T) {
		// One pass reads the resume tokens too: tank/a has one, the
		// volume a token that is not one (dropped, never passed on).
		out := withColumn(listOutputEncrypted, map[string]string{"tank/a\t": "1-e3f8a2a6b-c0-789c6360", "tank/vol\t": "-o;x"})
		f := openzfsFake(t).on("list -H -p -o name,type,guid,createtxg,creation,encryption,encryptionroot,receive_resume_token -t filesystem,volume,snapshot,bookmark -r tank", out, nil)
		tree, err := New(f).ListTree(ctx, "tank")
		if err != nil {
			t.Fatal(err)
		}
		if len(tree) != 3 || len(tree[1].Versions) != 3 || tree[2].Type != Volume {
			t.Errorf("tree %+v", tree)
		}
		if tree[0].Encrypted || !tree[1].Encrypted || tree[2].Encrypted {
			t.Errorf("encrypted: %v %v %v, want only tank/a", tree[0].Encrypted, tree[1].Encrypted, tree[2].Encrypted)
		}
		if tree[0].EncryptionRoot != "" || tree[1].EncryptionRoot != "tank/a" || tree[2].EncryptionRoot != "" {
			t.Errorf("encryption roots: %q %q %q, want only tank/a's, itself", tree[0].EncryptionRoot, tree[1].EncryptionRoot, tree[2].EncryptionRoot)
		}
		if tree[0].ResumeToken != "" || tree[1].ResumeToken != "1-e3f8a2a6b-c0-789c6360" || tree[2].ResumeToken != "" {
			t.Errorf("tokens %q %q %q, want only tank/a's", tree[0].ResumeToken, tree[1].ResumeToken, tree[2].ResumeToken)
		}
	})
	t.Run("truncated output with failure", func(t *testing.T) {
		f := fuseFake(t).on("get -H -p -o name,property,value -r type,guid,createtxg,creation",
			getOutput[:187], &CommandError{ExitCode: 1, Stderr: "internal error"})
		_, err := New(f).ListTree(ctx, "")
		var ce *CommandError
		if !errors.As(err, &ce) {
			t.Errorf("err = %v, want the CommandError", err)
		}
	})
}

func TestExists(t *testing.T) {
	f := openzfsFake(t).
		on("list -H -o name -t filesystem,volume tank/a", "tank/a\n", nil).
		on("list -H -o name -t snapshot tank/a@s1", "tank/a@s1\n", nil).
		on("list -H -o name -t bookmark tank/a#b", "", notFoundErr("list", "tank/a#b")).
		on("list -H -o name -t filesystem,volume tank/x", "", notFoundErr("list", "tank/x")).
		on("list -H -o name -t filesystem,volume tank/err", "", &CommandError{ExitCode: 1, Stderr: "permission denied"})
	z := New(f)
	tests := []struct {
		name    string
		want    bool
		wantErr bool
	}{
		{"tank/a", true, false},
		{"tank/a@s1", true, false},
		{"tank/a#b", false, false},
		{"tank/x", false, false},
		{"tank/err", false, true},
		{"-tank", false, true},
		{"tank/a@", false, true},
	}
	for _, tt := range tests {
		got, err := z.Exists(ctx, tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Exists(%q) = %v, %v", tt.name, got, err)
		}
	}
	// zfs-fuse has no bookmarks: a bookmark never exists, and nothing but the probe runs.
	f = fuseFake(t)
	if ok, err := New(f).Exists(ctx, "p/a#b"); ok || err != nil {
		t.Errorf("bookmark on zfs-fuse: %v, %v", ok, err)
	}
	if calls := f.callsExceptProbe(); len(calls) != 0 {
		t.Errorf("calls %q", calls)
	}
}

func TestSendArgs(t *testing.T) {
	tests := []struct {
		name string
		o    SendOptions
		want []string
	}{
		{"full", SendOptions{Snapshot: "pool/a@s2"}, []string{"send", "pool/a@s2"}},
		{"incremental", SendOptions{Snapshot: "pool/a@s2", From: "pool/a@s1"}, []string{"send", "-i", "pool/a@s1", "pool/a@s2"}},
		{"intermediates", SendOptions{Snapshot: "pool/a@s3", From: "pool/a@s1", Intermediates: true}, []string{"send", "-I", "pool/a@s1", "pool/a@s3"}},
		{"from bookmark", SendOptions{Snapshot: "pool/a@s2", From: "pool/a#s1"}, []string{"send", "-i", "pool/a#s1", "pool/a@s2"}},
		{"spaces", SendOptions{Snapshot: "pool/my data@snap 2", From: "pool/my data@snap 1"}, []string{"send", "-i", "pool/my data@snap 1", "pool/my data@snap 2"}},
		{"resume", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "1-e3f8a2a6b-c0-789c6360"}, []string{"send", "-t", "1-e3f8a2a6b-c0-789c6360"}},
		{"resume raw", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "1-e3f8a2a6b-c0-789c6360", Raw: true}, []string{"send", "-w", "-t", "1-e3f8a2a6b-c0-789c6360"}},
		{"raw -I", SendOptions{Snapshot: "pool/a@s3", From: "pool/a@s1", Intermediates: true, Raw: true}, []string{"send", "-w", "-I", "pool/a@s1", "pool/a@s3"}},
		{"-L -e -c", SendOptions{Snapshot: "pool/a@s2", LargeBlocks: true, Embedded: true, Compressed: true}, []string{"send", "-L", "-e", "-c", "pool/a@s2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openzfsFake(t).on(strings.Join(tt.want, " "), "STREAM", nil)
			rc, err := New(f).Send(ctx, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			if err != nil || string(data) != "STREAM" {
				t.Errorf("read %q, %v", data, err)
			}
			calls := f.callsExceptProbe()
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], tt.want) {
				t.Errorf("argv %q, want %q", calls, tt.want)
			}
		})
	}
}

func TestSendFlagsZFSFuseLacks(t *testing.T) {
	for _, o := range []SendOptions{{Snapshot: "p/a@s", Raw: true}, {Snapshot: "p/a@s", Compressed: true}, {Snapshot: "p/a@s", LargeBlocks: true}} {
		f := fuseFake(t)
		if _, err := New(f).Send(ctx, o); !errors.Is(err, ErrUnsupported) || len(f.callsExceptProbe()) != 0 {
			t.Errorf("%+v on zfs-fuse: %v, calls %q", o, err, f.callsExceptProbe())
		}
	}
}

func TestSendRefusesBeforeRunning(t *testing.T) {
	tests := []struct {
		name    string
		o       SendOptions
		wantErr string
	}{
		{"from another dataset", SendOptions{Snapshot: "pool/a@s2", From: "pool/b@s1"}, "another dataset"},
		{"from a child", SendOptions{Snapshot: "pool/a@s2", From: "pool/a/b@s1"}, "another dataset"},
		{"from itself", SendOptions{Snapshot: "pool/a@s2", From: "pool/a@s2"}, "itself"},
		{"from a dataset", SendOptions{Snapshot: "pool/a@s2", From: "pool/a"}, "neither a snapshot"},
		{"-I without from", SendOptions{Snapshot: "pool/a@s2", Intermediates: true}, "needs a From"},
		{"-I from bookmark", SendOptions{Snapshot: "pool/a@s2", From: "pool/a#s1", Intermediates: true}, "not bookmark"},
		{"bookmark as snapshot", SendOptions{Snapshot: "pool/a#s2"}, "no '@'"},
		{"dataset as snapshot", SendOptions{Snapshot: "pool/a"}, "no '@'"},
		{"empty", SendOptions{}, "empty name"},
		{"leading dash", SendOptions{Snapshot: "-R"}, "starts with '-'"},
		{"leading dash from", SendOptions{Snapshot: "pool/a@s2", From: "-Rpool/a@s1"}, "starts with '-'"},
		{"newline", SendOptions{Snapshot: "pool/a@s2\n"}, "invalid character"},
		{"semicolon", SendOptions{Snapshot: "pool/a@s2;reboot"}, "invalid character ';'"},
		{"dollar", SendOptions{Snapshot: "pool/a@$(reboot)"}, "invalid character '$'"},
		{"percent range", SendOptions{Snapshot: "pool/a@s1%s2"}, "'%' is not allowed"},
		{"from bad chars", SendOptions{Snapshot: "pool/a@s2", From: "pool/a@s1`x`"}, "invalid character '`'"},
		{"token like an option", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "-w"}, "not four fields"},
		{"token with a space", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "1-a-b-c d"}, "not hexadecimal"},
		{"token with an empty field", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "1--b-c"}, "not hexadecimal"},
		{"token too long", SendOptions{Snapshot: "pool/a@s2", ResumeToken: "1-a-b-" + strings.Repeat("0", 8200)}, "resume token of"},
		{"token and from", SendOptions{Snapshot: "pool/a@s2", From: "pool/a@s1", ResumeToken: "1-a-b-c"}, "no From"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openzfsFake(t)
			_, err := New(f).Send(ctx, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if n := f.numCalls(); n != 0 {
				t.Errorf("runner was called %d times: %q", n, f.calls)
			}
		})
	}
}

func TestSendFromBookmarkUnsupported(t *testing.T) {
	f := fuseFake(t)
	_, err := New(f).Send(ctx, SendOptions{Snapshot: "p/a@s2", From: "p/a#s1"})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
	if calls := f.callsExceptProbe(); len(calls) != 0 {
		t.Errorf("calls %q", calls)
	}
}

func TestSendReportsFailure(t *testing.T) {
	ce := &CommandError{Args: []string{"send", "p/a@x"}, ExitCode: 1, Stderr: "WARNING: could not send p/a@x: does not exist"}
	f := fuseFake(t).on("send p/a@x", "", ce)
	rc, err := New(f).Send(ctx, SendOptions{Snapshot: "p/a@x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if err != ce || !errors.Is(err, ErrNotFound) {
		t.Errorf("read error %v", err)
	}
}

func TestRecvArgs(t *testing.T) {
	tests := []struct {
		name  string
		usage string
		o     RecvOptions
		want  []string
	}{
		{"plain", "usage-zfs-fuse-0.7.txt", RecvOptions{Target: "backup/pool/a"}, []string{"receive", "backup/pool/a"}},
		{"force", "usage-zfs-fuse-0.7.txt", RecvOptions{Target: "backup/pool/a", Force: true}, []string{"receive", "-F", "backup/pool/a"}},
		{"unmounted", "usage-openzfs-2.2.txt", RecvOptions{Target: "b/a", Unmounted: true}, []string{"receive", "-u", "b/a"}},
		{"force unmounted", "usage-openzfs-2.2.txt", RecvOptions{Target: "b/a", Force: true, Unmounted: true}, []string{"receive", "-F", "-u", "b/a"}},
		{"resumable", "usage-openzfs-2.2.txt", RecvOptions{Target: "b/a", Unmounted: true, Resumable: true}, []string{"receive", "-u", "-s", "b/a"}},
		{"excluded properties", "usage-openzfs-2.2.txt", RecvOptions{Target: "b/a", Unmounted: true, Exclude: []string{"mountpoint", "com.example:x"}},
			[]string{"receive", "-u", "-x", "mountpoint", "-x", "com.example:x", "b/a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(readTestdata(t, tt.usage)).on(strings.Join(tt.want, " "), "", nil)
			in, err := New(f).Recv(ctx, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := in.Write([]byte("data")); err != nil {
				t.Fatal(err)
			}
			if err := in.Close(); err != nil {
				t.Fatal(err)
			}
			calls := f.callsExceptProbe()
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], tt.want) {
				t.Errorf("argv %q, want %q", calls, tt.want)
			}
			if got := f.inputs[0].buf.String(); got != "data" {
				t.Errorf("stdin got %q", got)
			}
		})
	}
}

func TestRecvRefuses(t *testing.T) {
	f := fuseFake(t)
	z := New(f)
	if _, err := z.Recv(ctx, RecvOptions{Target: "b/a", Unmounted: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("-u on zfs-fuse: %v", err)
	}
	if _, err := z.Recv(ctx, RecvOptions{Target: "b/a", Exclude: []string{"mountpoint"}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("-x on zfs-fuse: %v", err)
	}
	if _, err := z.Recv(ctx, RecvOptions{Target: "b/a", Resumable: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("-s on zfs-fuse: %v", err)
	}
	z2 := New(newFake(readTestdata(t, "usage-openzfs-2.2.txt")))
	for _, prop := range []string{"", "-F", "-o", "mountpoint=/etc", "a b", "Mountpoint", "x\n"} {
		if _, err := z2.Recv(ctx, RecvOptions{Target: "b/a", Exclude: []string{prop}}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Recv -x %q: %v", prop, err)
		}
	}
	for _, target := range []string{"", "-F", "b/a@s1", "b/a#x", "b//a", "b/a\n", "b/a;x"} {
		if _, err := z.Recv(ctx, RecvOptions{Target: target}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Recv(%q): %v", target, err)
		}
	}
	if calls := f.callsExceptProbe(); len(calls) != 0 {
		t.Errorf("calls %q", calls)
	}
}

func TestMutations(t *testing.T) {
	f := fuseFake(t).
		on("get -H -p -o property,value quota b/sink", "quota\t0\n", nil).
		on("set quota=1073741824 b/sink", "", nil).
		on("get -H -p -o property,value quota b/same", "quota\t1073741824\n", nil).
		on("create -o mountpoint=none b/pool", "", nil).
		on("rollback b/a@s1", "", nil).
		on("rollback -r b/a@s1", "", nil).
		on("destroy b/a@s1", "", nil).
		on("destroy b/a@gone", "", &CommandError{ExitCode: 1, Stderr: "could not find any snapshots to destroy; check snapshot names."})
	z := New(f)
	z.delegated = false
	if err := z.SetQuota(ctx, "b/sink", 1<<30); err != nil {
		t.Error(err)
	}
	if err := z.SetQuota(ctx, "b/same", 1<<30); err != nil {
		t.Error(err)
	}
	if err := z.CreatePlaceholder(ctx, "b/pool"); err != nil {
		t.Error(err)
	}
	if err := z.Rollback(ctx, "b/a@s1", false); err != nil {
		t.Error(err)
	}
	if err := z.Rollback(ctx, "b/a@s1", true); err != nil {
		t.Error(err)
	}
	if err := z.DestroySnapshot(ctx, "b/a@s1"); err != nil {
		t.Error(err)
	}
	if err := z.DestroySnapshot(ctx, "b/a@gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroy of a missing snapshot: %v", err)
	}
	want := [][]string{
		{"get", "-H", "-p", "-o", "property,value", "quota", "b/sink"},
		{"set", "quota=1073741824", "b/sink"},
		{"get", "-H", "-p", "-o", "property,value", "quota", "b/same"},
		{"create", "-o", "mountpoint=none", "b/pool"},
		{"rollback", "b/a@s1"},
		{"rollback", "-r", "b/a@s1"},
		{"destroy", "b/a@s1"},
		{"destroy", "b/a@gone"},
	}
	if calls := f.callsExceptProbe(); !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q", calls)
	}

	// Refused before running anything.
	f = fuseFake(t)
	z = New(f)
	for _, name := range []string{"b", "b/a@s", "-b/a", "b/a%x"} {
		if err := z.CreatePlaceholder(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CreatePlaceholder(%q): %v", name, err)
		}
		if err := z.SetQuota(ctx, name+"@x", 1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("SetQuota(%q): %v", name+"@x", err)
		}
	}
	for _, name := range []string{"b/a", "b/a#x", "b/a@s1%s3", "b/a@s1,s2", "-r", "b/a@"} {
		if err := z.DestroySnapshot(ctx, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("DestroySnapshot(%q): %v", name, err)
		}
		if err := z.Rollback(ctx, name, true); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Rollback(%q): %v", name, err)
		}
	}
	if n := f.numCalls(); n != 0 {
		t.Errorf("calls %q", f.calls)
	}
}

// TestDelegatedPlaceholder: a user other than root may not set mountpoint,
// so placeholders are created with -u, inheriting mountpoint=none, and
// never under a parent that would mount them.
func TestDelegatedPlaceholder(t *testing.T) {
	f := openzfsFake(t).
		on("get -H -p -o property,value mountpoint b/root", "mountpoint\tnone\n", nil).
		on("create -u b/root/host", "", nil).
		on("get -H -p -o property,value mountpoint b/mounted", "mountpoint\t/b/mounted\n", nil)
	z := New(f)
	z.delegated = true
	if err := z.CreatePlaceholder(ctx, "b/root/host"); err != nil {
		t.Error(err)
	}
	err := z.CreatePlaceholder(ctx, "b/mounted/host")
	if err == nil || !strings.Contains(err.Error(), "zfs set mountpoint=none b/mounted") {
		t.Errorf("under a mounted parent: %v", err)
	}
	want := [][]string{
		{"get", "-H", "-p", "-o", "property,value", "mountpoint", "b/root"},
		{"create", "-u", "b/root/host"},
		{"get", "-H", "-p", "-o", "property,value", "mountpoint", "b/mounted"},
	}
	if calls := f.callsExceptProbe(); !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q", calls)
	}
	if features, err := z.Features(ctx); err != nil || !features.Delegated {
		t.Errorf("Features = %+v, %v; want Delegated", features, err)
	}

	// zfs-fuse has no create -u (and no zfs allow that works).
	z = New(fuseFake(t))
	z.delegated = true
	if err := z.CreatePlaceholder(ctx, "b/root/host"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("zfs-fuse, delegated: %v", err)
	}
}

func TestDestroyRetriesBusy(t *testing.T) {
	busy := &CommandError{ExitCode: 1, Stderr: "cannot destroy 'b/a@s1': dataset is busy"}
	f := fuseFake(t)
	f.seq["destroy b/a@s1"] = []fakeResult{{err: busy}, {err: busy}}
	f.on("destroy b/a@s1", "", nil)
	z := New(f)
	z.busyInterval = time.Millisecond
	if err := z.DestroySnapshot(ctx, "b/a@s1"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.callsExceptProbe()); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}

	// Still busy at the deadline: the busy error is returned.
	f = fuseFake(t).on("destroy b/a@s1", "", busy)
	z = New(f)
	z.busyInterval = time.Millisecond
	z.busyTimeout = 20 * time.Millisecond
	if err := z.DestroySnapshot(ctx, "b/a@s1"); !errors.Is(err, busy) {
		t.Errorf("err = %v", err)
	}
	if n := len(f.callsExceptProbe()); n < 2 {
		t.Errorf("%d attempts", n)
	}

	// Other errors are not retried.
	f = fuseFake(t).on("destroy b/a@s1", "", &CommandError{ExitCode: 1, Stderr: "permission denied"})
	z = New(f)
	z.busyInterval = time.Millisecond
	if err := z.DestroySnapshot(ctx, "b/a@s1"); err == nil {
		t.Error("no error")
	}
	if n := len(f.callsExceptProbe()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestCommandErrorMessage(t *testing.T) {
	tests := []struct {
		err  *CommandError
		want string
	}{
		{&CommandError{Args: []string{"send", "-i", "pool/a@s1", "pool/a@s2"}, ExitCode: 1,
			Stderr: "cannot open 'pool/a@s2': dataset does not exist", Err: errors.New("exit status 1")},
			"zfs send -i pool/a@s1 pool/a@s2: exit status 1: cannot open 'pool/a@s2': dataset does not exist"},
		{&CommandError{Args: []string{"destroy", "pool/my data@s 1"}, ExitCode: 1},
			"zfs destroy 'pool/my data@s 1': exit status 1"},
		{&CommandError{Args: []string{"list"}, ExitCode: -1, Err: context.Canceled},
			"zfs list: context canceled"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	if !errors.Is(tests[2].err, context.Canceled) {
		t.Error("a cancelled command does not match context.Canceled")
	}
}

func TestNotFoundMapping(t *testing.T) {
	tests := []struct {
		stderr string
		want   bool
	}{
		{"cannot open 'p/x': dataset does not exist", true},
		{"cannot open 'p/a@nope': dataset does not exist", true},
		{"WARNING: could not send p/a@nope: does not exist", true},
		{"warning: cannot send 'p/a@s2': incremental source (@nope) does not exist", true},
		{"could not find any snapshots to destroy; check snapshot names.", true},
		{"cannot open 'p/a#nope': no such pool or dataset", true}, // OpenZFS, a missing bookmark
		{"cannot destroy 'p/a@s1': dataset is busy", false},
		{"cannot receive incremental stream: destination p/a has been modified\nsince most recent snapshot", false},
		{"", false},
	}
	for _, tt := range tests {
		err := errors.Wrap(&CommandError{ExitCode: 1, Stderr: tt.stderr}, "context")
		if got := errors.Is(err, ErrNotFound); got != tt.want {
			t.Errorf("%q: Is(ErrNotFound) = %v", tt.stderr, got)
		}
	}
	if errors.Is(errors.New("dataset does not exist"), ErrNotFound) {
		t.Error("a plain error with the same text matched")
	}
}

func TestEstimateSend(t *testing.T) {
	openzfs := readTestdata(t, "usage-openzfs-2.2.txt")
	out := "incremental\ts1\ttank/a@s2\t1234567\nsize\t1234567\n"
	f := newFake(openzfs).on("send -n -v -P -I tank/a@s1 tank/a@s2", out, nil)
	got, err := New(f).EstimateSend(context.Background(), SendOptions{Snapshot: "tank/a@s2", From: "tank/a@s1", Intermediates: true})
	if err != nil || got != 1234567 {
		t.Fatalf("EstimateSend = %d, %v; want 1234567", got, err)
	}

	// zfs-fuse cannot estimate: no process runs, the size is unknown.
	fuse := newFake(readTestdata(t, "usage-zfs-fuse-0.7.txt"))
	got, err = New(fuse).EstimateSend(context.Background(), SendOptions{Snapshot: "tank/a@s2"})
	if err != nil || got != 0 || len(fuse.callsExceptProbe()) != 0 {
		t.Fatalf("zfs-fuse: %d, %v, calls %v", got, err, fuse.callsExceptProbe())
	}

	// Bad names never reach zfs.
	if _, err := New(newFake(openzfs)).EstimateSend(context.Background(), SendOptions{Snapshot: "-R@x"}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("option-like snapshot: %v", err)
	}
	for in, want := range map[string]int64{"": 0, "size\tx\n": 0, "full\ttank/a@s1\t5\nsize\t5": 5, "size\t-3\n": 0} {
		if got := parseSendSize([]byte(in)); got != want {
			t.Errorf("parseSendSize(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestAbortResume(t *testing.T) {
	f := openzfsFake(t).on("receive -A b/root/a", "", nil)
	z := New(f)
	if err := z.AbortResume(ctx, "b/root/a"); err != nil {
		t.Fatal(err)
	}
	if err := z.AbortResume(ctx, "-F"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("AbortResume(-F): %v", err)
	}
}

func TestBookmarks(t *testing.T) {
	f := openzfsFake(t).
		on("bookmark p/a@s1 p/a#zrep_cursor_b1", "", nil).
		on("destroy p/a#zrep_cursor_b1", "", nil)
	z := New(f)
	if err := z.Bookmark(ctx, "p/a@s1", "p/a#zrep_cursor_b1"); err != nil {
		t.Fatal(err)
	}
	if err := z.DestroyBookmark(ctx, "p/a#zrep_cursor_b1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"p/a@s1", "p/b#x"}, {"p/a", "p/a#x"}, {"p/a@s1", "p/a@x"}, {"p/a@s1", "-r"}} {
		if err := z.Bookmark(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("Bookmark(%q, %q) accepted", bad[0], bad[1])
		}
	}
	for _, bad := range []string{"p/a@s1", "p/a", "-r", "p/a#x,y"} {
		if err := z.DestroyBookmark(ctx, bad); err == nil {
			t.Errorf("DestroyBookmark(%q) accepted", bad)
		}
	}
	want := [][]string{{"bookmark", "p/a@s1", "p/a#zrep_cursor_b1"}, {"destroy", "p/a#zrep_cursor_b1"}}
	if calls := f.callsExceptProbe(); !reflect.DeepEqual(calls, want) {
		t.Errorf("calls %q", calls)
	}
	if err := New(fuseFake(t)).Bookmark(ctx, "p/a@s1", "p/a#b"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("zfs-fuse: %v", err)
	}
}

// withColumn appends a column to each line of zfs list output: the value
// for the first prefix of values the line starts with, "-" otherwise.
func withColumn(out string, values map[string]string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		value := "-"
		for prefix, v := range values {
			if strings.HasPrefix(line, prefix) {
				value = v
			}
		}
		b.WriteString(strings.TrimSuffix(line, "\n") + "\t" + value + "\n")
	}
	return b.String()
}
