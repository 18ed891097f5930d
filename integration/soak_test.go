package integration

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
)

var (
	soak         = flag.Bool("soak", false, "run TestSoak (make soak)")
	soakDuration = flag.Duration("soak-duration", 10*time.Minute, "TestSoak: how long to pull and kill")
	soakSeed     = flag.Uint64("soak-seed", 0, "TestSoak: the random seed (0: from the clock)")
)

// TestSoak pulls in a loop for -soak-duration while the source keeps
// taking snapshots, killing at random moments the puller, the source's
// serve or the puller's ssh (or nothing). Then one clean run: every
// dataset complete and guid-verified, and no process, file descriptor or
// temporary file left behind, counted before and after.
func TestSoak(t *testing.T) {
	if !*soak {
		t.Skip("a 10-minute soak: run it with make soak")
	}
	seed := *soakSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-soak-seed to repeat)", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))

	// Sparse pools, large enough for 10 minutes of snapshots (about 4.5 MiB
	// a run, a run every second or two).
	w := newFaultWorld(t, 6144, 6144, "")
	var datasets []string
	for i := range 4 {
		datasets = append(datasets, w.dataset(t, fmt.Sprintf("d%d", i), 1<<20, "s0"))
	}
	w.pullUntilDone(t)
	daemons := longLived(t, w)
	before := takeCensus(t, w, daemons)

	outcomes := map[string]int{}
	deadline := time.Now().Add(*soakDuration)
	for run := 1; time.Now().Before(deadline); run++ {
		// New data somewhere, so that most runs have something to send.
		ds := datasets[rnd.IntN(len(datasets))]
		name := strings.TrimPrefix(ds, w.src.Name+"/")
		testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, name, fmt.Sprintf("f%d", run)), (1+rnd.IntN(8))<<20)
		testenv.Run(t, "zfs", "snapshot", fmt.Sprintf("%s@s%d", ds, run))

		cmd := exec.Command(binary, args("pull", w.flags, "--root", w.root(), "--bwlimit", "40MiB")...)
		cmd.Env = append(os.Environ(), "TMPDIR="+w.tmp)
		var out testenv.SyncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		victim := []string{"nothing", "puller", "serve", "ssh"}[rnd.IntN(4)]
		timer := time.NewTimer(time.Duration(rnd.IntN(2500)) * time.Millisecond)
		var err error
		select {
		case err = <-done:
			timer.Stop()
			victim = "nothing (done first)"
		case <-timer.C:
			if victim != "nothing" && killVictim(w, cmd.Process.Pid, victim) == 0 {
				victim += " (not running yet, or any more)"
			}
			select {
			case err = <-done:
			case <-time.After(5 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("run %d: the pull did not end 5 minutes after killing %s:\n%s", run, victim, out.String())
			}
		}
		result := "ok"
		if err != nil {
			result = "failed"
		}
		outcomes[victim+" -> "+result]++
		if victim == "nothing" && err != nil {
			t.Logf("run %d: failed although nothing was killed: %v\n%s", run, err, out.String())
		}
	}
	t.Logf("runs: %v", outcomes)

	w.pullUntilDone(t)
	for _, ds := range datasets {
		sameSnapshots(t, ds, w.target(ds))
	}
	w.noLeftovers(t)
	after := takeCensus(t, w, daemons)
	for deadline := time.Now().Add(time.Minute); after.String() != before.String() && time.Now().Before(deadline); time.Sleep(time.Second) {
		after = takeCensus(t, w, daemons)
	}
	t.Logf("before: %s\nafter:  %s", before, after)
	if after.String() != before.String() {
		t.Errorf("something was left behind:\nbefore: %s\nafter:  %s", before, after)
	}
}

// killVictim sends SIGKILL to the puller (pid), its ssh, or the source's
// serve of this world, and returns how many processes it killed.
func killVictim(w *faultWorld, pid int, victim string) int {
	switch victim {
	case "nothing":
		return 0
	case "puller":
		if syscall.Kill(pid, syscall.SIGKILL) != nil {
			return 0
		}
		return 1
	}
	prefix, among := "ssh ", w.dir
	if victim == "serve" {
		prefix, among = binary+" serve ", w.serveLog
	}
	killed := 0
	for _, p := range processesMentioning(among) {
		if n, cmd, ok := strings.Cut(p, ": "); ok && strings.HasPrefix(cmd, prefix) {
			if id, err := strconv.Atoi(n); err == nil && syscall.Kill(id, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	return killed
}

// longLived are the processes that outlive every run: the zfs-fuse daemon
// (if any) and sshd.
func longLived(t *testing.T, w *faultWorld) map[string]int {
	t.Helper()
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		switch {
		case strings.HasPrefix(cmdline, "zfs-fuse"):
			out["zfs-fuse"] = pid
		case strings.Contains(cmdline, testenv.SSHDBin+" -D") && strings.Contains(cmdline, w.sshd.Dir) && !strings.Contains(cmdline, "["+"priv]"):
			out["sshd"] = pid
		}
	}
	if out["sshd"] == 0 {
		t.Fatal("no sshd found")
	}
	return out
}

// census counts what a run could leave behind.
type census struct {
	// fds are the open descriptors of the long-lived processes that refer
	// to this world (its pools' files and mountpoints, its directory);
	// sshd's are all counted.
	fds map[string]int
	// processes mentioning the world
	processes int
	// temp are the files in the TMPDIR of the pulls and serves.
	temp []string
}

func (c census) String() string {
	return fmt.Sprintf("fds %v, processes %d, temporary files %q", c.fds, c.processes, c.temp)
}

func takeCensus(t *testing.T, w *faultWorld, daemons map[string]int) census {
	t.Helper()
	c := census{fds: map[string]int{}}
	ours := []string{filepath.Dir(w.src.Mountpoint), filepath.Dir(w.dst.Mountpoint), w.dir}
	for name, pid := range daemons {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, fd := range fds {
			target, _ := os.Readlink(filepath.Join(dir, fd.Name()))
			mine := name == "sshd"
			for _, o := range ours {
				mine = mine || strings.HasPrefix(target, o)
			}
			if mine {
				c.fds[name]++
			}
		}
	}
	c.processes = len(processesMentioning(w.src.Name, w.dst.Name, w.dir))
	tmp, _ := os.ReadDir(w.tmp)
	for _, e := range tmp {
		c.temp = append(c.temp, e.Name())
	}
	return c
}
