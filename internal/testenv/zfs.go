package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireZFSEnv is the environment variable that makes tests needing zfs
// fail instead of skipping when it is unusable.
const RequireZFSEnv = "ZREP_REQUIRE_ZFS"

var (
	zfsOnce    sync.Once
	zfsMissing string
)

// openZFS is the version `zfs version` reports ("zfs-2.1.11-1"); empty for
// zfs-fuse, which has no such command. Set by RequireZFS.
var openZFS string

// RequireZFS skips the test (or fails it, with ZREP_REQUIRE_ZFS=1) unless
// zfs and zpool are installed and answer: zfs-fuse with its daemon
// running, or OpenZFS with its kernel module loaded.
func RequireZFS(t testing.TB) {
	t.Helper()
	zfsOnce.Do(func() {
		for _, bin := range []string{"zfs", "zpool"} {
			if _, err := exec.LookPath(bin); err != nil {
				zfsMissing = bin + " is not installed (apt-get install zfs-fuse)"
				return
			}
		}
		if out, err := exec.Command("zpool", "list").CombinedOutput(); err != nil {
			zfsMissing = fmt.Sprintf("zpool list fails (is the zfs-fuse daemon running, or the zfs module loaded?): %v: %s", err, out)
			return
		}
		if out, err := exec.Command("zfs", "version").Output(); err == nil {
			openZFS = strings.Fields(string(out) + " ?")[0]
		}
	})
	Require(t, RequireZFSEnv, zfsMissing == "", zfsMissing)
}

// OpenZFS reports whether the zfs under test is OpenZFS (with its
// version, "zfs-2.1.11-1") rather than zfs-fuse; for tests that assert
// behaviour that differs between them. It requires zfs like RequireZFS.
func OpenZFS(t testing.TB) (string, bool) {
	t.Helper()
	RequireZFS(t)
	return openZFS, openZFS != ""
}

// Pool is a file-backed pool made for one test.
type Pool struct {
	Name       string // unique, e.g. "zrt1234src5f3a2b"
	Mountpoint string
}

// NewPool creates a pool of sizeMiB on a sparse file, with a unique name
// built from role, and destroys it in t.Cleanup (retrying while zfs-fuse
// says it is busy).
func NewPool(t testing.TB, role string, sizeMiB int) *Pool {
	t.Helper()
	RequireZFS(t)
	dir := t.TempDir()
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	p := &Pool{Name: fmt.Sprintf("zrt%d%s%s", os.Getpid()%100000, role, hex.EncodeToString(suffix)), Mountpoint: filepath.Join(dir, "mnt")}
	img := filepath.Join(dir, "pool.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	Run(t, "zpool", "create", "-m", p.Mountpoint, p.Name, img)
	t.Cleanup(func() { DestroyPool(t, p.Name) })
	return p
}

// DestroyPool destroys a pool, retrying for up to 30 s while it is busy.
func DestroyPool(t testing.TB, name string) {
	t.Helper()
	var out []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		out, err = exec.Command("zpool", "destroy", "-f", name).CombinedOutput()
		if err == nil || strings.Contains(string(out), "no such pool") {
			return
		}
	}
	t.Errorf("zpool destroy %s: %v: %s", name, err, out)
}

// Run runs a command with LC_ALL=C, fails the test if it fails, and
// returns its stdout.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := Output(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Output runs a command with LC_ALL=C and returns its stdout; the error
// includes the command line and its stderr.
func Output(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// GUID returns a dataset's or snapshot's guid as `zfs get -H -p` reports it.
func GUID(t testing.TB, name string) uint64 {
	t.Helper()
	out := strings.TrimSpace(Run(t, "zfs", "get", "-H", "-p", "-o", "value", "guid", name))
	g, err := strconv.ParseUint(out, 10, 64)
	if err != nil {
		t.Fatalf("guid of %s: %q: %v", name, out, err)
	}
	return g
}

// Snapshots lists the snapshot names (after '@') of exactly dataset, in
// creation order, with their guids; nil if the dataset does not exist.
func Snapshots(t testing.TB, dataset string) map[string]uint64 {
	t.Helper()
	out, err := Output("zfs", "get", "-H", "-p", "-o", "name,value", "-d", "1", "guid", dataset)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatal(err)
	}
	snaps := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		ds, snap, isSnap := strings.Cut(name, "@")
		if !isSnap || ds != dataset {
			continue
		}
		g, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			t.Fatalf("guid of %s: %q", name, value)
		}
		snaps[snap] = g
	}
	return snaps
}

// WriteRandom writes size random bytes to path.
func WriteRandom(t testing.TB, path string, size int) {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
