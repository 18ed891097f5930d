package vmlab

import (
	"reflect"
	"testing"
)

func TestParseSimulation(t *testing.T) {
	out := `Reading package lists...
Building dependency tree...
The following NEW packages will be installed:
  zfs-dkms zfsutils-linux
Inst zfsutils-linux (2.3.2-2~bpo12+2 Debian:12.11/bookworm-backports [amd64])
Inst linux-image-6.1.0-56-amd64 (6.1.192-2 Debian-Security:12/bookworm-security [amd64])
Conf zfsutils-linux (2.3.2-2~bpo12+2 Debian:12.11/bookworm-backports [amd64])
Inst dkms (3.0.10-8+deb12u1 Debian:12.11/bookworm [all])
`
	got := parseSimulation(out)
	want := []string{"dkms=3.0.10-8+deb12u1", "linux-image-6.1.0-56-amd64=6.1.192-2", "zfsutils-linux=2.3.2-2~bpo12+2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	p := &Plan{Resolved: append(got, "zfs-dkms=2.3.2-2~bpo12+2", "linux-image-amd64=6.1.192-2")}
	if p.Kernel() != "linux-image-6.1.0-56-amd64 6.1.192-2" || p.ZFS() != "zfs-dkms 2.3.2-2~bpo12+2" {
		t.Fatalf("kernel %q, zfs %q", p.Kernel(), p.ZFS())
	}
}

func TestCacheKeyChangesWithEveryInput(t *testing.T) {
	v21, _ := LookupVersion("2.1")
	v23, _ := LookupVersion("2.3")
	base, err := CacheKey(v21, []string{"deb http://a bookworm main"}, []string{"zfs-dkms=2.1.11-1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]func() (string, error){
		"version": func() (string, error) {
			return CacheKey(v23, []string{"deb http://a bookworm main"}, []string{"zfs-dkms=2.1.11-1"})
		},
		"sources": func() (string, error) {
			return CacheKey(v21, []string{"deb http://b bookworm main"}, []string{"zfs-dkms=2.1.11-1"})
		},
		"packages": func() (string, error) {
			return CacheKey(v21, []string{"deb http://a bookworm main"}, []string{"zfs-dkms=2.1.11-2"})
		},
	} {
		k, err := key()
		if err != nil {
			t.Fatal(err)
		}
		if k == base {
			t.Errorf("changing the %s keeps the cache key %s", name, k)
		}
	}
	again, _ := CacheKey(v21, []string{"deb http://a bookworm main"}, []string{"zfs-dkms=2.1.11-1"})
	if again != base || len(base) != 16 {
		t.Fatalf("key %q then %q", base, again)
	}
}
