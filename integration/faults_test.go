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

// faultWorld is a source pool behind a real OpenSSH sshd whose forced
// command serves it through a zfs wrapper, and a destination pool. Every
// fault test checks the same four things: a clear error naming the dataset
// and the cause, nothing lost on either side, no zfs, ssh or serve process
// left over, and a next run that completes.
type faultWorld struct {
	src, dst *testenv.Pool
	dir      string
	sshd     *testenv.SSHD
	flags    []string // --ssh... for pull
	serveLog string
	tmp      string // TMPDIR of serve (and of the soak's pulls)
}

// newFaultWorld makes the pools (sizes in MiB) and starts sshd. serveZFS,
// when not empty, is the body of the source's zfs wrapper (see wrapZFS;
// DIR in it stands for the test's directory).
func newFaultWorld(t *testing.T, srcMiB, dstMiB int, serveZFS string) *faultWorld {
	t.Helper()
	w := &faultWorld{src: testenv.NewPool(t, "fsrc", srcMiB), dst: testenv.NewPool(t, "fdst", dstMiB), dir: t.TempDir()}
	policy := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  %s:\n    datasets:\n      %q: true\n", identity, w.src.Name+"<")), 0o644); err != nil {
		t.Fatal(err)
	}
	zfsBin := "zfs"
	if serveZFS != "" {
		zfsBin = wrapZFS(t, w.dir, "serve-zfs", strings.ReplaceAll(serveZFS, "DIR", w.dir))
	}
	w.serveLog = filepath.Join(w.dir, "serve.log")
	// Temporary files of serve and its zfs go to the world's own directory,
	// where the soak counts them.
	w.tmp = filepath.Join(w.dir, "tmp")
	if err := os.Mkdir(w.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	serve := fmt.Sprintf("env TMPDIR=%s %s serve --policy %s --identity %s --zfs-bin %s --log-file %s --log-level debug", w.tmp, binary, policy, identity, zfsBin, w.serveLog)
	key, pub := testenv.NewClientKey(t, w.dir)
	w.sshd = testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n", serve, pub))
	w.flags = sshFlags(currentUser(t)+"@127.0.0.1", w.sshd.Port, key, w.sshd.SSHOptions())
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(w.serveLog)
			t.Logf("serve log:\n%s", b)
		}
	})
	return w
}

func (w *faultWorld) root() string            { return w.dst.Name + "/backup" }
func (w *faultWorld) target(ds string) string { return w.root() + "/" + ds }

// dataset creates SRC/name with size bytes of random data and the snapshots.
func (w *faultWorld) dataset(t *testing.T, name string, size int, snaps ...string) string {
	t.Helper()
	ds := w.src.Name + "/" + name
	testenv.Run(t, "zfs", "create", ds)
	if size > 0 {
		testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, name, "data"), size)
	}
	for _, s := range snaps {
		testenv.Run(t, "zfs", "snapshot", ds+"@"+s)
	}
	return ds
}

// pull runs pull with the world's connection flags.
func (w *faultWorld) pull(t *testing.T, extra ...string) result {
	t.Helper()
	return zrep(t, args("pull", w.flags, "--root", w.root(), extra)...)
}

// pullUntilDone runs pull until it succeeds: zfs-fuse may hold a target
// busy, or free space late, for a moment after a failed receive.
func (w *faultWorld) pullUntilDone(t *testing.T, extra ...string) {
	t.Helper()
	var r result
	for i := 0; i < 10; i++ {
		if r = w.pull(t, extra...); r.code == 0 {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the next run does not complete: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
}

// failsClearly checks that a pull failed with an error naming dataset and
// saying each of causes.
func failsClearly(t *testing.T, r result, dataset string, causes ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("pull succeeded, want a failure of %s\n%s", dataset, r.stdout)
	}
	out := r.stdout + r.stderr
	for _, want := range append([]string{dataset}, causes...) {
		if !strings.Contains(out, want) {
			t.Fatalf("exit %d; the output does not say %q:\n%s\n%s", r.code, want, r.stdout, r.stderr)
		}
	}
	t.Logf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
}

// noLeftovers checks that no process mentions the world's pools or directory.
func (w *faultWorld) noLeftovers(t *testing.T) {
	t.Helper()
	noLeftovers(t, w.src.Name, w.dst.Name, w.dir)
}

// noLeftovers waits (generously: processes end asynchronously on a busy
// machine) until no process mentions any of names: no zfs send or receive,
// no ssh, no serve, no wrapper.
func noLeftovers(t *testing.T, names ...string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if left = processesMentioning(names...); len(left) == 0 {
			return
		}
	}
	t.Fatalf("processes left over:\n%s", strings.Join(left, "\n"))
}

// processesMentioning lists the processes (but this one) whose command
// line holds one of names.
func processesMentioning(names ...string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		if strings.HasPrefix(cmdline, "sshd: ") || strings.Contains(cmdline, testenv.SSHDBin+" -D") {
			continue // sshd itself, stopped with the test
		}
		for _, n := range names {
			if strings.Contains(cmdline, n) {
				found = append(found, e.Name()+": "+cmdline)
				break
			}
		}
	}
	return found
}

// unchanged checks that dataset still has exactly the snapshots (and guids) of before.
func unchanged(t *testing.T, dataset string, before map[string]uint64) {
	t.Helper()
	if after := testenv.Snapshots(t, dataset); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("%s changed: %v -> %v", dataset, before, after)
	}
}

// TestFaultTargetPoolFull: the target pool fills up in the middle of a
// receive. The error names the dataset and says the pool is full; what was
// received before stays; once space is freed the next run completes.
func TestFaultTargetPoolFull(t *testing.T) {
	// OpenZFS keeps back a slop of half the pool up to 128 MiB: the target
	// pool must hold big and small beyond that once the filler is gone.
	w := newFaultWorld(t, 512, 320, "")
	small := w.dataset(t, "small", 1<<20, "s1")
	big := w.dataset(t, "big", 96<<20, "b1")
	if r := w.pull(t, "--dataset", small); r.code != 0 {
		t.Fatalf("first pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Fill the target pool but for about 40 MiB.
	avail, err := strconv.ParseInt(strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-p", "-o", "value", "available", w.dst.Name)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	filler := w.dst.Name + "/filler"
	testenv.Run(t, "zfs", "create", filler)
	testenv.WriteRandom(t, filepath.Join(w.dst.Mountpoint, "filler", "f"), int(avail-40<<20))
	srcBefore, smallBefore := testenv.Snapshots(t, big), testenv.Snapshots(t, w.target(small))

	r := w.pull(t)
	failsClearly(t, r, big, "full")
	unchanged(t, w.target(small), smallBefore)
	unchanged(t, big, srcBefore)
	if out, _ := testenv.Output("zfs", "list", "-H", "-t", "snapshot", "-r", w.target(big)); strings.TrimSpace(out) != "" {
		t.Fatalf("a partial receive left snapshots: %s", out)
	}
	w.noLeftovers(t)

	destroy(t, filler) // zfs-fuse may say busy for a moment
	w.pullUntilDone(t)
	sameSnapshots(t, big, w.target(big))
	sameSnapshots(t, small, w.target(small))
	w.noLeftovers(t)
}

// TestFaultSendFailsMidStream: zfs send on the source exits non-zero after
// some bytes. The puller reports the source's own error text, the target is
// as before, and the next run (with a working zfs) completes.
func TestFaultSendFailsMidStream(t *testing.T) {
	const failing = `if [ "$1" = send ] && [ -f DIR/fail ]; then
  case " $* " in *" -n "*) ;; *)
    ZFS "$@" | head -c 2000000
    echo "cannot send: I/O error reading the pool (wrapper)" >&2
    exit 1;;
  esac
fi`
	w := newFaultWorld(t, 512, 512, failing)
	ds := w.dataset(t, "data", 8<<20, "s1")
	if err := os.WriteFile(filepath.Join(w.dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	before := testenv.Snapshots(t, ds)
	r := w.pull(t)
	failsClearly(t, r, ds, "I/O error reading the pool (wrapper)")
	unchanged(t, ds, before)
	if out, _ := testenv.Output("zfs", "list", "-H", "-t", "snapshot", "-r", w.target(ds)); strings.TrimSpace(out) != "" {
		t.Fatalf("a cut receive left snapshots: %s", out)
	}
	w.noLeftovers(t)

	// An incremental cut the same way leaves the target as it was.
	if err := os.Remove(filepath.Join(w.dir, "fail")); err != nil {
		t.Fatal(err)
	}
	w.pullUntilDone(t)
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "more"), 8<<20)
	testenv.Run(t, "zfs", "snapshot", ds+"@s2")
	if err := os.WriteFile(filepath.Join(w.dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	targetBefore := testenv.Snapshots(t, w.target(ds))
	failsClearly(t, w.pull(t), ds, "I/O error reading the pool (wrapper)")
	unchanged(t, w.target(ds), targetBefore)
	w.noLeftovers(t)

	if err := os.Remove(filepath.Join(w.dir, "fail")); err != nil {
		t.Fatal(err)
	}
	w.pullUntilDone(t)
	sameSnapshots(t, ds, w.target(ds))
}

// TestFaultSnapshotDestroyedWhileSent: an intermediate snapshot of a -I
// stream is destroyed on the source while the stream is sent. zfs either
// sends it all (zfs-fuse does: the send holds what it reads) or fails;
// either way every snapshot the target then holds has the source's guid,
// nothing else changed, a failure names the dataset, and the next run
// completes.
func TestFaultSnapshotDestroyedWhileSent(t *testing.T) {
	// The wrapper pauses a send of @s3 after its first MiB until the test
	// has destroyed @s2.
	const pausing = `if [ "$1" = send ]; then
  case " $* " in *" -n "*) ;; *@s3" "*)
    ZFS "$@" | { head -c 1048576; touch DIR/sending; while [ ! -f DIR/destroyed ]; do sleep 0.1; done; cat; }
    exit $?;;
  esac
fi`
	w := newFaultWorld(t, 512, 512, pausing)
	ds := w.dataset(t, "data", 4<<20, "s1")
	w.pullUntilDone(t)
	for _, s := range []string{"s2", "s3"} {
		testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", s), 8<<20)
		testenv.Run(t, "zfs", "snapshot", ds+"@"+s)
	}
	guids := testenv.Snapshots(t, ds)

	cmd := exec.Command(binary, args("pull", w.flags, "--root", w.root())...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(w.dir, "sending"))
	// zfs-fuse holds the destroy of a snapshot a -I stream is sending
	// until the send ends (and then refuses it): the send goes on after a
	// moment either way.
	destroy := exec.Command("zfs", "destroy", ds+"@s2")
	var destroyOut strings.Builder
	destroy.Stdout, destroy.Stderr = &destroyOut, &destroyOut
	if err := destroy.Start(); err != nil {
		t.Fatal(err)
	}
	destroyed := make(chan error, 1)
	go func() { destroyed <- destroy.Wait() }()
	var derr error
	select {
	case derr = <-destroyed:
	case <-time.After(2 * time.Second):
	}
	if err := os.WriteFile(filepath.Join(w.dir, "destroyed"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if derr == nil {
		derr = <-destroyed
	}
	t.Logf("destroying @s2 while it was sent: %v %s; the pull: %v\n%s", derr, destroyOut.String(), err, out.String())
	if err != nil && !strings.Contains(out.String(), ds) {
		t.Fatalf("the failure does not name %s", ds)
	}
	for name, guid := range testenv.Snapshots(t, w.target(ds)) {
		if guids[name] != guid {
			t.Fatalf("%s@%s has guid %d on the target, %d on the source", w.target(ds), name, guid, guids[name])
		}
	}
	w.noLeftovers(t)
	w.pullUntilDone(t)
	got := testenv.Snapshots(t, w.target(ds))
	if got["s3"] != guids["s3"] || got["s1"] != guids["s1"] {
		t.Fatalf("after the next run the target has %v, want s1 and s3 of %v", got, guids)
	}
}

// waitFile waits (generously) until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

// TestFaultReceiveFails: the target's zfs receive fails. A receive that
// fails in the middle (a wrapper exiting like a read-only file system) and a
// name conflict that appears during the run are each reported with the
// dataset and zfs's words; the other datasets complete; once the cause is
// gone the next run completes. A target set readonly=on is no fault: zfs
// receives into it (readonly governs file access, not receives).
func TestFaultReceiveFails(t *testing.T) {
	w := newFaultWorld(t, 512, 512, "")
	a := w.dataset(t, "a", 4<<20, "s1")
	b := w.dataset(t, "b", 1<<20, "s1")
	// The puller's zfs: receives fail while DIR/fail-recv exists; the
	// first receive into a's target creates b's target (once), as if
	// someone else had made it in the meantime.
	local := wrapZFS(t, w.dir, "local-zfs", strings.ReplaceAll(fmt.Sprintf(`case "$1" in receive|recv)
  if [ -f DIR/fail-recv ]; then
    head -c 1048576 >/dev/null
    echo "cannot receive new filesystem stream: Read-only file system (wrapper)" >&2
    exit 1
  fi
  case " $* " in *" %s "*)
    if [ -f DIR/conflict ]; then rm DIR/conflict; ZFS create -o mountpoint=none %s; fi;;
  esac;;
esac`, w.target(a), w.target(b)), "DIR", w.dir))
	pull := func() result { return w.pull(t, "--zfs-bin", local) }

	t.Run("receive fails", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(w.dir, "fail-recv"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		failsClearly(t, pull(), a, "Read-only file system (wrapper)")
		w.noLeftovers(t)
		for _, ds := range []string{a, b} {
			if out, _ := testenv.Output("zfs", "list", "-H", "-t", "snapshot", "-r", w.target(ds)); strings.TrimSpace(out) != "" {
				t.Fatalf("a failed receive left snapshots: %s", out)
			}
		}
		if err := os.Remove(filepath.Join(w.dir, "fail-recv")); err != nil {
			t.Fatal(err)
		}
		w.pullUntilDone(t, "--zfs-bin", local)
		sameSnapshots(t, a, w.target(a))
		sameSnapshots(t, b, w.target(b))
	})

	t.Run("name conflict", func(t *testing.T) {
		// Both datasets start afresh under a new root.
		for _, ds := range []string{a, b} {
			destroy(t, w.target(ds))
		}
		if err := os.WriteFile(filepath.Join(w.dir, "conflict"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := pull()
		failsClearly(t, r, b, "exists")
		sameSnapshots(t, a, w.target(a)) // the other dataset completed
		w.noLeftovers(t)
		// The operator removes the stray dataset; the next run completes.
		destroy(t, w.target(b))
		w.pullUntilDone(t, "--zfs-bin", local)
		sameSnapshots(t, b, w.target(b))
	})

	t.Run("readonly target", func(t *testing.T) {
		testenv.Run(t, "zfs", "set", "readonly=on", w.target(a))
		testenv.Run(t, "zfs", "snapshot", a+"@s2")
		w.pullUntilDone(t, "--zfs-bin", local)
		sameSnapshots(t, a, w.target(a))
	})
}

// TestFaultSlowListing: the source's zfs takes longer to list than the
// puller's ping interval and timeout. The source answers the pings while it
// lists, so the session stays alive and the run completes.
func TestFaultSlowListing(t *testing.T) {
	// Each listing takes 6 s; a source that answered no PING would be
	// given up after 0.5 + 2.5 s. 2.5 s is the answer's margin on a busy
	// machine, not a measurement.
	w := newFaultWorld(t, 256, 256, `case "$1" in list|get) sleep 6;; esac`)
	ds := w.dataset(t, "data", 1<<20, "s1")
	r := w.pull(t, "--rpc-ping-interval", "500ms", "--rpc-ping-timeout", "2500ms")
	if r.code != 0 {
		t.Fatalf("pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, ds, w.target(ds))
	w.noLeftovers(t)
}

// startPull starts a pull with --json and returns once the first progress
// event shows bytes arriving; wait returns its exit status and output.
func (w *faultWorld) startPull(t *testing.T, extra ...string) (cmd *exec.Cmd, wait func() (int, string)) {
	t.Helper()
	cmd = exec.Command(binary, args("pull", w.flags, "--root", w.root(), "--json", extra)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	progress := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		seen := false
		for sc.Scan() {
			lines <- sc.Text()
			var ev replication.Event
			if !seen && json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == replication.EventProgress && ev.Bytes > 0 {
				seen = true
				close(progress)
			}
		}
		if !seen {
			close(progress)
		}
	}()
	<-progress
	return cmd, func() (int, string) {
		var out []string
		for l := range lines {
			out = append(out, l)
		}
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, strings.Join(out, "\n") + "\n" + stderr.String()
	}
}

// TestFaultSSHDRestart: sshd restarts while a transfer runs. Restarted
// alone (Debian's ssh.service restarts only the listener), the running
// session goes on and the run completes; restarted with its sessions
// killed, the pull fails saying the connection was lost, the target is as
// before, and the next run completes.
func TestFaultSSHDRestart(t *testing.T) {
	w := newFaultWorld(t, 512, 512, "")
	ds := w.dataset(t, "data", 1<<20, "s1")
	w.pullUntilDone(t)
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprint("kill sessions=", kill), func(t *testing.T) {
			snap := fmt.Sprintf("big%v", kill)
			testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", snap), 64<<20)
			testenv.Run(t, "zfs", "snapshot", ds+"@"+snap)
			before := testenv.Snapshots(t, w.target(ds))
			// 8 s at this rate: sshd restarts in the middle.
			_, wait := w.startPull(t, "--bwlimit", "8MiB")
			w.sshd.Restart(t, kill)
			code, out := wait()
			if !kill {
				if code != 0 {
					t.Fatalf("the session did not survive sshd's restart: exit %d\n%s", code, out)
				}
				sameSnapshots(t, ds, w.target(ds))
				return
			}
			if code == 0 {
				// The transfer may have finished before the restart.
				t.Logf("the transfer finished before sshd restarted:\n%s", out)
			} else {
				if !strings.Contains(out, ds) || !strings.Contains(out, "stream cut") {
					t.Fatalf("exit %d; want an error naming %s and the cut:\n%s", code, ds, out)
				}
				t.Logf("exit %d:\n%s", code, out)
				unchanged(t, w.target(ds), before)
			}
			w.noLeftovers(t)
			w.pullUntilDone(t)
			sameSnapshots(t, ds, w.target(ds))
		})
	}
}

// TestFaultNetworkStall: the network stalls (the puller's ssh is stopped
// with SIGSTOP, so nothing moves either way). The puller gives up after its
// ping interval and ping timeout, saying the source stopped answering, and
// ends its ssh; the source's serve and zfs send end with the connection;
// the next run completes.
func TestFaultNetworkStall(t *testing.T) {
	w := newFaultWorld(t, 512, 512, "")
	ds := w.dataset(t, "data", 64<<20, "s1")
	cmd, wait := w.startPull(t, "--rpc-ping-interval", "1s", "--rpc-ping-timeout", "3s", "--bwlimit", "8MiB")
	start := time.Now()
	var sshPids []int
	for _, pid := range children(t, cmd.Process.Pid) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "ssh" {
			sshPids = append(sshPids, pid)
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
	}
	if len(sshPids) == 0 {
		t.Fatal("no ssh process under the puller")
	}
	code, out := wait()
	elapsed := time.Since(start)
	// The documented bound: ping interval + ping timeout, then ssh is
	// ended (2 s grace, SIGTERM, 1 s, SIGKILL); the margin is for a busy
	// machine, not a measurement.
	if bound := 1*time.Second + 3*time.Second + 3*time.Second; elapsed > bound+2*time.Minute {
		t.Errorf("the puller gave up after %s, documented bound %s", elapsed, bound)
	}
	if code == 0 || !strings.Contains(out, ds) || !strings.Contains(out, "nothing received within 3s of a PING") {
		t.Fatalf("exit %d after %s; want an error naming %s and the silence:\n%s", code, elapsed, ds, out)
	}
	t.Logf("gave up after %s (exit %d):\n%s", elapsed.Round(time.Millisecond), code, out)
	for _, pid := range sshPids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			_ = syscall.Kill(pid, syscall.SIGCONT)
			t.Errorf("ssh %d outlived the puller", pid)
		}
	}
	if got, _ := testenv.Output("zfs", "list", "-H", "-t", "snapshot", "-r", w.target(ds)); strings.TrimSpace(got) != "" {
		t.Fatalf("a stalled receive left snapshots: %s", got)
	}
	w.noLeftovers(t)
	w.pullUntilDone(t)
	sameSnapshots(t, ds, w.target(ds))
}
