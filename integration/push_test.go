package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
)

// pushWorld is a pushing host's pool, a backup server's pool and the backup
// server's policy:
//
//	SRC/home        offered as "SRC/home<"   @h1 @h2
//	SRC/home/u      offered (subtree)        @u1
//	SRC/vm          offered as "SRC/vm"      @v1
//	SRC/secret      never offered            @x1
//
// laptop1 and laptop2 are sinks with roots DST/pushed/laptop1 (quota 48M)
// and DST/pushed/laptop2; backup1 is a plain source identity (it may not push).
type pushWorld struct {
	src, dst *testenv.Pool
	policy   string
	dir      string
	locks    string
}

func newPushWorld(t *testing.T) *pushWorld {
	t.Helper()
	w := &pushWorld{src: testenv.NewPool(t, "psrc", 1024), dst: testenv.NewPool(t, "pdst", 1024), dir: t.TempDir()}
	w.locks = filepath.Join(w.dir, "locks")
	s := w.src.Name
	for _, ds := range []string{"home", "home/u", "vm", "secret"} {
		testenv.Run(t, "zfs", "create", s+"/"+ds)
	}
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "home", "f1"), 1<<20)
	for _, snap := range []string{"home@h1", "home/u@u1", "home@h2", "vm@v1", "secret@x1"} {
		testenv.Run(t, "zfs", "snapshot", s+"/"+snap)
	}
	w.policy = filepath.Join(w.dir, "policy.yaml")
	policy := fmt.Sprintf(`identities:
  laptop1:
    sink: {root: %[1]s/pushed/laptop1, quota: 48M}
  laptop2:
    sink: {root: %[1]s/pushed/laptop2}
  backup1:
    datasets: {"%[2]s/home<": true}
`, w.dst.Name, s)
	if err := os.WriteFile(w.policy, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *pushWorld) root(identity string) string { return w.dst.Name + "/pushed/" + identity }

// serveCommand is the forced command of identity's key on the backup server.
func (w *pushWorld) serveCommand(identity, log string) string {
	return fmt.Sprintf("%s serve --policy %s --identity %s --lock-dir %s --log-file %s --log-level debug", binary, w.policy, identity, w.locks, log)
}

// sinkEndpoints starts a real sshd on the backup server with one key per
// identity, forced into serve, and returns each key's connection flags.
func (w *pushWorld) sinkEndpoints(t *testing.T, identities ...string) map[string][]string {
	t.Helper()
	var lines strings.Builder
	keys := map[string]string{}
	for _, id := range identities {
		key, pub := testenv.NewClientKey(t, w.dir)
		keys[id] = key
		fmt.Fprintf(&lines, "restrict,command=%q %s %s@test\n", w.serveCommand(id, filepath.Join(w.dir, "serve-"+id+".log")), pub, id)
	}
	sshd := testenv.StartSSHD(t, lines.String())
	out := map[string][]string{}
	for id, key := range keys {
		out[id] = sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions())
	}
	return out
}

// allUnder is `zfs list -t all` of everything under root, with guids:
// what a push may only add to.
func allUnder(t *testing.T, root string) []string {
	t.Helper()
	out, err := testenv.Output("zfs", "get", "-H", "-p", "-r", "-o", "name,value", "guid", root)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return lines
}

// superset fails unless after holds every line of before.
func superset(t *testing.T, before, after []string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range after {
		have[l] = true
	}
	for _, l := range before {
		if !have[l] {
			t.Errorf("the push removed or changed %q", l)
		}
	}
}

// TestPush pushes through real OpenSSH: full, incremental, nothing to do,
// into the identity's root only, with the offered datasets only; the JSON
// events end in a summary.
func TestPush(t *testing.T) {
	w := newPushWorld(t)
	s := w.src.Name
	ends := w.sinkEndpoints(t, "laptop1", "laptop2")
	push := func(id string, extra ...string) result {
		return zrep(t, args("push", ends[id], "--dataset", s+"/home<", "--dataset", s+"/vm", extra)...)
	}
	offered := []string{s + "/home", s + "/home/u", s + "/vm"}

	r := push("laptop1", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "plan "+s+"/home -> "+w.root("laptop1")+"/"+s+"/home: full @h1") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := allUnder(t, w.root("laptop1")); got != nil {
		t.Fatalf("a dry run created %v", got)
	}

	r = push("laptop1")
	if r.code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, ds := range offered {
		sameSnapshots(t, ds, w.root("laptop1")+"/"+ds)
	}
	if snaps := testenv.Snapshots(t, w.root("laptop1")+"/"+s+"/secret"); snaps != nil {
		t.Errorf("a dataset that was not offered arrived: %v", snaps)
	}
	got := strings.Fields(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "quota,mountpoint", w.root("laptop1")))
	if len(got) != 2 || got[0] != "48M" || got[1] != "none" {
		t.Errorf("the sink root has quota, mountpoint %v; want 48M, none", got)
	}

	// Incremental: new snapshots on a parent and its child.
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "home", "f2"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", s+"/home@h3")
	testenv.Run(t, "zfs", "snapshot", s+"/home/u@u2")
	before := allUnder(t, w.root("laptop1"))
	r = push("laptop1", "--json")
	if r.code != 0 {
		t.Fatalf("incremental push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	superset(t, before, allUnder(t, w.root("laptop1")))
	for _, ds := range offered {
		sameSnapshots(t, ds, w.root("laptop1")+"/"+ds)
	}
	var last struct {
		Type    string `json:"type"`
		Summary *struct {
			Failed  int `json:"failed"`
			Results []struct {
				Outcome string `json:"outcome"`
			} `json:"results"`
		} `json:"summary"`
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Type != "summary" || last.Summary == nil || len(last.Summary.Results) != 3 {
		t.Fatalf("last JSON event %q: %v", lines[len(lines)-1], err)
	}

	// Nothing to do.
	r = push("laptop1")
	if r.code != 0 || !strings.Contains(r.stdout, "3 up-to-date") {
		t.Fatalf("nothing to do: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Another identity lands under its own root, and leaves laptop1's alone.
	before = allUnder(t, w.root("laptop1"))
	if r = push("laptop2"); r.code != 0 {
		t.Fatalf("laptop2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, ds := range offered {
		sameSnapshots(t, ds, w.root("laptop2")+"/"+ds)
	}
	if after := allUnder(t, w.root("laptop1")); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("laptop2's push changed laptop1's root:\n%v\n%v", before, after)
	}
}

// TestPushRefusals: keys used for what their identity may not do are
// refused with a reason the other side prints.
func TestPushRefusals(t *testing.T) {
	w := newPushWorld(t)
	ends := w.sinkEndpoints(t, "laptop1", "backup1")
	r := zrep(t, args("push", ends["backup1"], "--dataset", w.src.Name+"/vm")...)
	if r.code == 0 || !strings.Contains(r.stderr, `identity "backup1" has no sink in the policy: it cannot push`) {
		t.Errorf("push with a source key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zrep(t, args("ls", ends["laptop1"])...)
	if r.code == 0 || !strings.Contains(r.stderr, `identity "laptop1" may only push`) {
		t.Errorf("ls with a sink key: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := allUnder(t, w.dst.Name+"/pushed"); got != nil {
		t.Errorf("refused sessions created %v", got)
	}
}

// TestPushConcurrent: a second push into a root while one runs is refused
// as busy, and the first completes.
func TestPushConcurrent(t *testing.T) {
	w := newPushWorld(t)
	ends := w.sinkEndpoints(t, "laptop1")
	slow := filepath.Join(w.dir, "slow-zfs")
	realZFS, err := exec.LookPath("zfs")
	if err != nil {
		t.Fatal(err)
	}
	// The first pusher's sends wait for the test to release them.
	gate := filepath.Join(w.dir, "gate")
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = send ]; then while [ ! -e %s ]; do sleep 0.1; done; fi\nexec %s \"$@\"\n", gate, realZFS)
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	first := exec.Command(binary, args("push", ends["laptop1"], "--dataset", w.src.Name+"/vm", "--zfs-bin", slow)...)
	// Read while the process writes it: a SyncBuffer, not a strings.Builder.
	var firstOut testenv.SyncBuffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the first push holds the lock: its sink logged the plan.
	log := filepath.Join(w.dir, "serve-laptop1.log")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "push: receiving") && strings.Contains(string(b), "listing") || strings.Contains(firstOut.String(), "plan ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first push did not start:\n%s\n%s", firstOut.String(), b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := zrep(t, args("push", ends["laptop1"], "--dataset", w.src.Name+"/vm")...)
	if r.code != 1 || !strings.Contains(r.stderr, "is busy") || !strings.Contains(r.stderr, "another push into this root is running") {
		t.Errorf("second push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first push: %v\n%s", err, firstOut.String())
	}
	sameSnapshots(t, w.src.Name+"/vm", w.root("laptop1")+"/"+w.src.Name+"/vm")
}
