package resumetoken_test

import (
	"strings"
	"testing"

	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/zfs"
)

// sameVerdict fails unless resumetoken's toname check and
// zfs.ValidateSnapshotName agree on name.
func sameVerdict(t *testing.T, name string) {
	t.Helper()
	why := resumetoken.SnapshotNameProblem(name)
	err := zfs.ValidateSnapshotName(name)
	if (why == "") != (err == nil) {
		t.Errorf("%q: resumetoken says %q, zfs says %v", name, why, err)
	}
}

func TestSnapshotNameAgreesWithZFS(t *testing.T) {
	long := strings.Repeat("a", 300)
	names := []string{
		"pool/fs@snap", "p@s", "tank/a b/c-d_e.f:g@h-i_j.k:l m", "pool/fs", "pool/fs#b", "pool/fs@a#b",
		"pool/fs@a@b", "", "@", "@s", "pool@", "pool/@s", "/pool@s", "pool//fs@s", "pool/fs/@s",
		"pool/./fs@s", "pool/../fs@s", "pool/fs@.", "pool/fs@..", "pool/fs@...", "1pool@s", "-pool@s",
		"_pool@s", "mirror@s", "mirrors@s", "raidz2@s", "draid@s", "spare1@s", "log@s", "logs@s",
		"c0@s", "c0t0d0@s", "cpool@s", "C0@s", "pool/fs%recv@s", "pool/fs@s%", "pool/fs@s\x00",
		"pool/fs@s\n", "pool/f\x7fs@s", "pool/fs@é", "pool/fs@s/t", "pool:x/fs@s",
		"pool/" + long[:249] + "@s", "pool/" + long[:248] + "@s", long[:239] + "/f@s", long[:240] + "/f@s",
		long[:238] + "@s", long[:253] + "@s", long,
	}
	for _, n := range names {
		sameVerdict(t, n)
	}
}

func FuzzSnapshotName(f *testing.F) {
	for _, s := range []string{"pool/fs@snap", "pool/fs", "mirror/a@b", "c0/x@y", "a/../b@c", "p@s#t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		sameVerdict(t, name)
	})
}
