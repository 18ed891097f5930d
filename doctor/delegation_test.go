package doctor

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/zfs"
)

// fakeAllow answers zfs allow from the outputs it has, by dataset; a
// dataset it lacks does not exist.
type fakeAllow struct {
	out map[string]string
	err error // for every dataset
}

func (f fakeAllow) Allow(_ context.Context, dataset string) (*zfs.Allow, error) {
	if f.err != nil {
		return nil, f.err
	}
	out, ok := f.out[dataset]
	if !ok {
		return nil, errors.Wrap(zfs.ErrNotFound, "zfs allow "+dataset)
	}
	return zfs.ParseAllow(strings.NewReader(out))
}

// perms is the zfs allow output of one block per dataset, each with the
// lines given ("Local+Descendent permissions:\n\tuser zrep send").
func perms(blocks ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(blocks); i += 2 {
		h := "---- Permissions on " + blocks[i] + " "
		b.WriteString(h + strings.Repeat("-", max(0, 70-len(h))) + "\n" + blocks[i+1])
	}
	return b.String()
}

var (
	zrep     = Who{Principal: zfs.Principal{User: "zrep", UID: 990, Groups: []string{"zrep", "backup"}, GIDs: []uint32{990, 34}}, Why: "owner of /home/zrep/.ssh/authorized_keys"}
	rootUser = Who{Principal: zfs.Principal{User: "root"}, Why: "the user doctor runs as"}
)

const ld = "Local+Descendent permissions:\n"

func TestSourceDelegationCheck(t *testing.T) {
	dir := t.TempDir()
	pull := "identities:\n  b1:\n    datasets:\n      \"tank/data<\": true\n"
	exact := "identities:\n  b1:\n    datasets:\n      \"tank/data\": true\n"
	cursor := "identities:\n  b1:\n    cursor_bookmarks: true\n    datasets:\n      \"tank/data<\": true\n"
	sink := "identities:\n  l1:\n    sink: {root: backup/l1}\n"
	for _, tt := range []struct {
		name, policy string
		who          Who
		z            fakeAllow
		sev          Severity
		msg, fix     string
	}{
		{"root", pull, rootUser, fakeAllow{}, OK, "runs as root: no delegation needed", ""},
		{"send,hold", pull, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", ld+"\tuser zrep hold,send\n")}},
			OK, "identity b1: may send,hold tank/data", ""},
		{"by group, set and ancestor", pull, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", ld+"\tgroup backup @pull\n",
			"tank", "Permission sets:\n\t@pull hold,send\n")}}, OK, "may send,hold tank/data", ""},
		{"no hold", pull, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", ld+"\tuser zrep send\n\tuser other hold\n")}},
			Error, "user zrep lacks hold on tank/data: pulls of it fail", "zfs allow -u zrep send,hold tank/data"},
		{"nothing", pull, zrep, fakeAllow{out: map[string]string{"tank/data": ""}},
			Error, "user zrep lacks send,hold on tank/data", "zfs allow -u zrep send,hold tank/data"},
		{"local only", pull, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", "Local permissions:\n\tuser zrep hold,send\n")}},
			Error, "user zrep lacks send,hold on tank/data: pulls of it fail with \"permission denied\" (send sends its snapshots, send -I holds them while it runs) (send,hold is given on tank/data itself only", "zfs allow -u zrep send,hold tank/data"},
		// An exact root has no datasets below: hold on it alone does; send
		// is checked on its snapshots, which local permissions miss.
		{"exact root, local hold", exact, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", "Local permissions:\n\tuser zrep hold\n"+ld+"\tuser zrep send\n")}},
			OK, "may send,hold tank/data", ""},
		{"exact root, local send", exact, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", "Local permissions:\n\tuser zrep hold,send\n")}},
			Error, "lacks send on tank/data", "zfs allow -u zrep send,hold tank/data"},
		{"cursor bookmarks", cursor, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", ld+"\tuser zrep hold,send\n")}},
			Error, "lacks bookmark,destroy on tank/data", "zfs allow -u zrep send,hold,bookmark,destroy tank/data"},
		{"cursor bookmarks given", cursor, zrep, fakeAllow{out: map[string]string{"tank/data": perms("tank/data", ld+"\tuser zrep bookmark,destroy,hold,send\n")}},
			OK, "may send,hold,bookmark,destroy tank/data", ""},
		{"every pool", "identities:\n  b1:\n    datasets:\n      \"<\": true\n", zrep, fakeAllow{}, Warning, "may pull every pool", "on each pool: zfs allow -u zrep send,hold POOL"},
		{"zfs-fuse", pull, zrep, fakeAllow{err: errors.Wrap(zfs.ErrUnsupported, "zfs allow tank/data: internal error: /usr/lib/zfs/pyzfs.py not found")},
			Warning, "delegation could not be checked: zfs allow tank/data: internal error", "run zrep as root"},
		{"zfs fails", pull, zrep, fakeAllow{err: errors.New("zfs allow tank/data: exit status 1: oops")}, Error, "cannot read its permissions: zfs allow tank/data: exit status 1: oops", "zfs allow tank/data"},
		{"sink", sink, zrep, fakeAllow{out: map[string]string{"backup/l1": perms("backup/l1", ld+"\tuser zrep create,mount,receive:append\n")}},
			OK, "user zrep may receive:append,create,mount below backup/l1", ""},
		{"sink with plain receive", sink, zrep, fakeAllow{out: map[string]string{"backup/l1": perms("backup/l1", ld+"\tuser zrep create,mount,receive\n")}},
			Warning, "user zrep has receive, not receive:append, on backup/l1: a pusher can then destroy snapshots there with zfs receive -F (openzfs#16943)",
			"on OpenZFS 2.3.2 or later: zfs allow -u zrep receive:append backup/l1, then take receive away (zfs unallow -u zrep receive backup/l1"},
		{"sink without mount", sink, zrep, fakeAllow{out: map[string]string{"backup/l1": perms("backup/l1", ld+"\tuser zrep create\n")}},
			Error, "user zrep lacks receive:append,mount on backup/l1: pushes are received below it", "zfs allow -u zrep receive:append,create,mount backup/l1"},
		{"sink with receive, without mount", sink, zrep, fakeAllow{out: map[string]string{"backup/l1": perms("backup/l1", ld+"\tuser zrep create,receive\n")}},
			Error, "user zrep lacks mount on backup/l1", "zfs allow -u zrep receive:append,create,mount backup/l1"},
		{"sink missing", sink, zrep, fakeAllow{out: map[string]string{}},
			Error, "does not exist: a user other than root cannot create it with mountpoint=none", "as root: zfs create -o mountpoint=none backup/l1 && zfs allow -u zrep receive:append,create,mount backup/l1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, dir, "policy.yaml", tt.policy)
			fs := SourceDelegationCheck(file, tt.who, tt.z)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			if tt.fix != "" && !hasFix(fs, tt.fix) {
				t.Errorf("no fix with %q in:\n%s", tt.fix, dump(fs))
			}
			if tt.sev == OK && (hasError(fs) || len(fs) != 1) {
				t.Errorf("more than the OK finding:\n%s", dump(fs))
			}
		})
	}
}

func hasFix(fs []Finding, fix string) bool {
	for _, f := range fs {
		if strings.Contains(f.Fix, fix) {
			return true
		}
	}
	return false
}

// The samples recorded on OpenZFS: zrep-test's permissions on
// drallow/a/b/c, as the source and sink checks see them.
func TestDelegationOnRecordedOutput(t *testing.T) {
	who := Who{Principal: zfs.Principal{User: "zrep-test", UID: 998, Groups: []string{"zrep-test"}, GIDs: []uint32{998}}, Why: "--user"}
	for _, tt := range []struct {
		sample string
		sev    Severity
		msg    string
	}{
		{"2.3-c.txt", OK, "may receive:append,create,mount below drallow/a/b/c"},
		{"2.1-c.txt", Warning, "has receive, not receive:append"},
	} {
		b, err := os.ReadFile("../zfs/testdata/allow/" + tt.sample)
		if err != nil {
			t.Fatal(err)
		}
		z := fakeAllow{out: map[string]string{"drallow/a/b/c": string(b)}}
		policy := write(t, t.TempDir(), "policy.yaml", "identities:\n  b1:\n    datasets:\n      \"drallow/a/b/c<\": true\n  l1:\n    sink: {root: drallow/a/b/c}\n")
		fs := SourceDelegationCheck(policy, who, z)(context.Background())
		want(t, fs, OK, "identity b1: may send,hold drallow/a/b/c")
		want(t, fs, tt.sev, tt.msg)
	}
}

func TestPullDelegationCheck(t *testing.T) {
	src := pullconfig.Source{Name: "web1", Root: "backup/web1"}
	for _, tt := range []struct {
		name     string
		who      Who
		z        fakeAllow
		sev      Severity
		msg, fix string
	}{
		{"root", rootUser, fakeAllow{}, OK, "runs as root: no delegation needed", ""},
		{"all", zrep, fakeAllow{out: map[string]string{"backup/web1": perms("backup/web1", ld+"\tuser zrep create,destroy,mount,receive\n")}},
			OK, "user zrep may create,mount,receive,destroy below backup/web1", ""},
		{"no destroy", zrep, fakeAllow{out: map[string]string{"backup/web1": perms("backup/web1", ld+"\tuser zrep create,mount,receive\n")}},
			Warning, "but not destroy: a dataset whose interrupted receive can no longer be resumed fails until root discards it (zfs receive -A DATASET)", "zfs allow -u zrep destroy backup/web1"},
		{"no mount", zrep, fakeAllow{out: map[string]string{"backup/web1": perms("backup/web1", ld+"\tuser zrep create,receive\n")}},
			Error, "user zrep lacks mount on backup/web1: pulls receive below it (mount is needed even though nothing is mounted)", "zfs allow -u zrep create,mount,receive backup/web1"},
		{"descendants only", zrep, fakeAllow{out: map[string]string{"backup/web1": perms("backup/web1", "Descendent permissions:\n\tuser zrep create,destroy,mount,receive\n")}},
			Error, "lacks create,mount,receive on backup/web1", "zfs allow -u zrep create,mount,receive backup/web1"},
		{"root missing", zrep, fakeAllow{out: map[string]string{}},
			Error, "does not exist: a user other than root cannot create it", "as root: zfs create -o mountpoint=none backup/web1 && zfs allow -u zrep create,mount,receive backup/web1"},
		{"zfs-fuse", zrep, fakeAllow{err: errors.Wrap(zfs.ErrUnsupported, "zfs allow backup/web1")}, Warning, "delegation could not be checked", "run zrep as root"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := PullDelegationCheck(src, tt.who, tt.z)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			if tt.fix != "" && !hasFix(fs, tt.fix) {
				t.Errorf("no fix with %q in:\n%s", tt.fix, dump(fs))
			}
			if len(fs) != 1 {
				t.Errorf("more than one finding:\n%s", dump(fs))
			}
		})
	}
}

type fakeFeatures struct {
	f   zfs.Features
	err error
}

func (f fakeFeatures) Features(context.Context) (zfs.Features, error) { return f.f, f.err }

func usageFeatures(t *testing.T, name string) zfs.Features {
	b, err := os.ReadFile("../zfs/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return zfs.DetectFeatures(string(b))
}

func TestFeaturesCheck(t *testing.T) {
	for _, tt := range []struct {
		name string
		z    fakeFeatures
		sev  Severity
		msg  string
	}{
		{"openzfs 2.3.2", fakeFeatures{f: usageFeatures(t, "usage-openzfs-2.3.2.txt")}, OK, "has resumable receives, bookmarks, raw sends, encryption, unmounted receives, create -u, list -p, compressed sends, large blocks, send estimates"},
		{"zfs-fuse", fakeFeatures{f: usageFeatures(t, "usage-zfs-fuse-0.7.txt")}, Warning, "zfs-fuse or another old zfs: an interrupted transfer starts over"},
		{"no zfs", fakeFeatures{err: errors.New(`detect zfs features: exec: "zfs": executable file not found in $PATH`)}, Error, "cannot run zfs: detect zfs features"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := FeaturesCheck(tt.z)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			if len(fs) != 1 {
				t.Errorf("more than one finding:\n%s", dump(fs))
			}
		})
	}
}

// The delegation findings as people read them, pinned by a golden file.
func TestDelegationGolden(t *testing.T) {
	policy := write(t, t.TempDir(), "policy.yaml",
		"identities:\n  b1:\n    cursor_bookmarks: true\n    datasets:\n      \"tank/data<\": true\n      \"tank/vm\": true\n  l1:\n    sink: {root: backup/l1}\n")
	z := fakeAllow{out: map[string]string{
		"tank/data": perms("tank/data", "Local permissions:\n\tuser zrep send\n"+ld+"\tuser zrep hold\n"),
		"tank/vm":   perms("tank/vm", ld+"\tuser zrep bookmark,destroy,hold,send\n"),
		"backup/l1": perms("backup/l1", ld+"\tuser zrep create,mount,receive\n"),
		"backup/w1": perms("backup/w1", ld+"\tuser zrep create,mount,receive\n"),
	}}
	r := Run(context.Background(), []Check{
		FeaturesCheck(fakeFeatures{f: usageFeatures(t, "usage-openzfs-2.1.11.txt")}),
		SourceDelegationCheck(policy, zrep, z),
		PullDelegationCheck(pullconfig.Source{Name: "web1", Root: "backup/w1"}, zrep, z),
		PullDelegationCheck(pullconfig.Source{Name: "web2", Root: "backup/w2"}, rootUser, z),
	})
	for i := range r.Findings { // the temporary policy file's name varies
		r.Findings[i].Subject = strings.ReplaceAll(r.Findings[i].Subject, policy, "/etc/zrep/policy.yaml")
	}
	assertRendered(t, "render-delegation.golden", r)
}
