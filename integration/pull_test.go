package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/replication"
)

// TestPull runs the puller's whole life cycle through real OpenSSH and
// through the embedded sshd: full, incremental, nothing to do, dry run,
// a diverged target refused and then forced, and the JSON event stream.
func TestPull(t *testing.T) {
	for _, transport := range []string{"openssh", "embedded"} {
		t.Run(transport, func(t *testing.T) {
			w := newWorld(t)
			e := w.openSSH(t)
			if transport == "embedded" {
				e = w.embedded(t)
			}
			testPullLifeCycle(t, w, e)
		})
	}
}

func testPullLifeCycle(t *testing.T, w *world, e endpoint) {
	s := w.src.Name
	pull := func(extra ...string) result {
		return zrep(t, args("pull", e.flags, "--root", w.root(), extra)...)
	}
	checkAll := func() {
		t.Helper()
		for _, ds := range w.allowed() {
			sameSnapshots(t, ds, w.target(ds))
		}
		for _, denied := range []string{"data/private", "database", "vm/disk0"} {
			if snaps := testenv.Snapshots(t, w.target(s+"/"+denied)); snaps != nil {
				t.Fatalf("denied %s was received: %v", denied, snaps)
			}
		}
	}

	// Dry run first: the plan, and nothing created.
	r := pull("--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "full @s1, then incremental @s1 -> @s2") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := testenv.Output("zfs", "list", w.root()); err == nil {
		t.Fatal("dry run created the root")
	}

	// Full pull: every allowed dataset, nested child included, guids equal.
	r = pull()
	if r.code != 0 {
		t.Fatalf("full pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkAll()
	if mp := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "mountpoint", w.root())); mp != "none" {
		t.Errorf("created parent %s has mountpoint %q, want none", w.root(), mp)
	}

	// Incremental pull: new data and snapshots on a parent and its child.
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "file2"), 2<<20)
	testenv.Run(t, "zfs", "snapshot", s+"/data@s3")
	testenv.Run(t, "zfs", "snapshot", s+"/data@s4")
	testenv.Run(t, "zfs", "snapshot", s+"/data/child@c2")
	sessionsBefore := countSessions(t, e)
	r = pull()
	// One connection (one session) serves the whole run, several datasets
	// and steps included.
	if n := countSessions(t, e) - sessionsBefore; n != 1 {
		t.Errorf("the incremental pull opened %d sessions, want 1", n)
	}
	if r.code != 0 || !strings.Contains(r.stdout, "incremental @s2 -> @s4 (2 snapshots)") {
		t.Fatalf("incremental pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkAll()

	// Nothing to do.
	r = pull()
	if r.code != 0 || strings.Count(r.stdout, "up-to-date") < 3 || strings.Contains(r.stdout, "step ") {
		t.Fatalf("nothing-to-do pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// Dry run with work pending changes nothing.
	testenv.Run(t, "zfs", "snapshot", s+"/vm@v2")
	before := testenv.Snapshots(t, w.target(s+"/vm"))
	r = pull("--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "incremental @v1 -> @v2") {
		t.Fatalf("dry run: exit %d\n%s", r.code, r.stdout)
	}
	if after := testenv.Snapshots(t, w.target(s+"/vm")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("dry run changed the target: %v -> %v", before, after)
	}

	// A diverged target is refused and left unchanged.
	testenv.Run(t, "zfs", "snapshot", w.target(s+"/vm")+"@local")
	before = testenv.Snapshots(t, w.target(s+"/vm"))
	r = pull()
	if r.code != 1 {
		t.Fatalf("diverged pull: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"has diverged", "@local", "source snapshots: @v1, @v2", "target snapshots: @v1, @local", "--force-rollback"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("diverged message lacks %q:\n%s", want, r.stdout)
		}
	}
	if after := testenv.Snapshots(t, w.target(s+"/vm")); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused pull changed the target: %v -> %v", before, after)
	}
	// The other datasets were still brought up to date (here: already were).
	if !strings.Contains(r.stdout, s+"/data -> "+w.target(s+"/data")+": up-to-date") {
		t.Errorf("a diverged dataset stopped the others:\n%s", r.stdout)
	}

	// --force-rollback: the target's own snapshot goes, the source's arrives.
	r = pull("--force-rollback", "--dataset", s+"/vm")
	if r.code != 0 {
		t.Fatalf("forced pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, s+"/vm", w.target(s+"/vm"))

	// --json: one event per line, plan first, summary last.
	testenv.Run(t, "zfs", "snapshot", s+"/data@s5")
	r = pull("--json")
	if r.code != 0 {
		t.Fatalf("json pull: exit %d\n%s", r.code, r.stderr)
	}
	events := parseEvents(t, r.stdout)
	if events[0].Type != replication.EventPlan || events[len(events)-1].Type != replication.EventSummary {
		t.Fatalf("event order: first %s, last %s", events[0].Type, events[len(events)-1].Type)
	}
	sum := events[len(events)-1].Summary
	if sum == nil || sum.Failed != 0 || len(sum.Results) != 3 {
		t.Fatalf("summary %+v", sum)
	}
	seen := map[replication.EventType]int{}
	for _, ev := range events {
		seen[ev.Type]++
	}
	if seen[replication.EventStepStart] != 1 || seen[replication.EventStepDone] != 1 || seen[replication.EventDatasetDone] != 3 {
		t.Errorf("event counts %v", seen)
	}
	checkAll()

	// --dataset with a name the key cannot see fails that dataset only.
	r = pull("--dataset", s+"/data/private", "--dataset", s+"/data")
	if r.code != 1 || !strings.Contains(r.stdout, "this key may not see it") {
		t.Errorf("pull of a denied --dataset: exit %d\n%s", r.code, r.stdout)
	}

	// The server logged the session with the identity and ssh's variables.
	logText, _ := os.ReadFile(e.log)
	if !strings.Contains(string(logText), identity) {
		t.Errorf("server log lacks the identity:\n%s", logText)
	}
}

func parseEvents(t *testing.T, out string) []replication.Event {
	t.Helper()
	var events []replication.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev replication.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON event: %q: %v", sc.Text(), err)
		}
		if ev.Time.IsZero() {
			t.Errorf("event without a time: %s", sc.Text())
		}
		events = append(events, ev)
	}
	if len(events) == 0 {
		t.Fatal("no events")
	}
	return events
}

// An unreachable source is a clear error and exit status 3.
func TestPullUnreachable(t *testing.T) {
	w := newWorld(t)
	key, _ := testenv.NewClientKey(t, w.dir)
	port := freePort(t) // nothing listens there
	r := zrep(t, args("pull", sshFlags("root@127.0.0.1", port, key, []string{"StrictHostKeyChecking=yes"}), "--root", w.root())...)
	if r.code != 3 || !strings.Contains(strings.ToLower(r.stderr), "connection refused") {
		t.Fatalf("exit %d, want 3 with ssh's reason\n%s", r.code, r.stderr)
	}
}

// A connection cut in the middle of a transfer leaves the target as it was
// before the transfer, and the next run completes it.
func TestPullCutConnection(t *testing.T) {
	w := newWorld(t)
	e := w.openSSH(t)
	s := w.src.Name
	ds := s + "/vm"
	mustZrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", ds)...)
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "vm", "big"), 384<<20)
	testenv.Run(t, "zfs", "snapshot", ds+"@big")
	before := testenv.Snapshots(t, w.target(ds))

	cmd := exec.Command(binary, args("pull", e.flags, "--root", w.root(), "--dataset", ds, "--json")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	cut := false
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		var ev replication.Event
		_ = json.Unmarshal(sc.Bytes(), &ev)
		if !cut && ev.Type == replication.EventProgress && ev.Bytes > 0 {
			// Cut the connection: kill the puller's ssh.
			for _, pid := range children(t, cmd.Process.Pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			cut = true
		}
	}
	err = cmd.Wait()
	if !cut {
		t.Fatalf("the transfer ended before it could be cut:\n%s", strings.Join(lines, "\n"))
	}
	if err == nil {
		t.Fatalf("pull succeeded although its connection was cut:\n%s", strings.Join(lines, "\n"))
	}
	t.Logf("cut pull: %v\n%s", err, stderr.String())
	if after := testenv.Snapshots(t, w.target(ds)); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("cut transfer changed the target: %v -> %v", before, after)
	}
	// The next run completes (zfs-fuse may briefly hold the target busy).
	var r result
	for i := 0; i < 10; i++ {
		if r = zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", ds)...); r.code == 0 || !strings.Contains(r.stdout, "busy") {
			break
		}
		time.Sleep(time.Second)
	}
	if r.code != 0 {
		t.Fatalf("pull after the cut: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, ds, w.target(ds))
}

// children lists the direct child processes of pid.
func children(t *testing.T, pid int) []int {
	t.Helper()
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// countSessions counts the sessions the server side has logged so far.
func countSessions(t *testing.T, e endpoint) int {
	t.Helper()
	b, err := os.ReadFile(e.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), "session start")
}
