package integration

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
)

var (
	benchPull   = flag.Bool("bench-pull", false, "run TestBenchPull (make bench-pull)")
	benchReport = flag.String("bench-report", "", "append the benchmark's figures to this file too")
	benchSize   = flag.Int("bench-size-mib", 1024, "TestBenchPull: MiB of random data to replicate")
)

// TestBenchPull measures pull against the raw pipeline on the same pools,
// in the same run. It prints figures, not verdicts: no timing assertions.
func TestBenchPull(t *testing.T) {
	if !*benchPull {
		t.Skip("a benchmark: run it with make bench-pull")
	}
	report := newReport(t)
	src := testenv.NewPool(t, "bsrc", *benchSize*2+1024)
	dst := testenv.NewPool(t, "bdst", *benchSize*2+1024)
	dir := t.TempDir()

	// Two keys: one forced into serve (for pull), one unrestricted (for the
	// raw `ssh host zfs send` baseline and the bare handshake).
	// A third key pushes into a sink on the same pools.
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  bench:\n    datasets:\n      %q: true\n  pusher:\n    sink: {root: %s/push}\n", src.Name+"<", dst.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	pullKey, pullPub := testenv.NewClientKey(t, dir)
	rawKey, rawPub := testenv.NewClientKey(t, dir)
	pushKey, pushPub := testenv.NewClientKey(t, dir)
	serve := fmt.Sprintf("%s serve --policy %s --identity bench --log-file %s", binary, policy, filepath.Join(dir, "serve.log"))
	sink := fmt.Sprintf("%s serve --policy %s --identity pusher --lock-dir %s --log-file %s", binary, policy, dir, filepath.Join(dir, "sink.log"))
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n%s\nrestrict,command=%q %s\n", serve, pullPub, rawPub, sink, pushPub))
	user := currentUser(t)
	pullFlags := sshFlags(user+"@127.0.0.1", sshd.Port, pullKey, sshd.SSHOptions())
	pushFlags := sshFlags(user+"@127.0.0.1", sshd.Port, pushKey, sshd.SSHOptions())
	rawSSH := []string{"-T", "-p", fmt.Sprint(sshd.Port), "-i", rawKey}
	for _, o := range sshd.SSHOptions() {
		rawSSH = append(rawSSH, "-o", o)
	}
	rawSSH = append(rawSSH, user+"@127.0.0.1")

	// 1. Throughput on incompressible data.
	big := src.Name + "/big"
	testenv.Run(t, "zfs", "create", big)
	start := time.Now()
	testenv.Run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(src.Mountpoint, "big", "data"), "bs=1M", fmt.Sprintf("count=%d", *benchSize), "status=none")
	testenv.Run(t, "zfs", "snapshot", big+"@s1")
	report.printf("data: %d MiB of random data in %s (written in %s)", *benchSize, big, time.Since(start).Round(time.Millisecond))
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", dst.Name+"/raw")
	sizeMiB := float64(*benchSize)

	var bestRaw, bestPull, bestPush time.Duration
	for round := 1; round <= 2; round++ {
		rawTarget := dst.Name + "/raw/big"
		d := timeIt(t, "sh", "-c", fmt.Sprintf("ssh %s zfs send %s | zfs recv %s", strings.Join(quoteAll(rawSSH), " "), big+"@s1", rawTarget))
		sameSnapshots(t, big, rawTarget)
		destroy(t, rawTarget)
		pullRoot := dst.Name + "/pull"
		p := timeIt(t, binary, args("pull", pullFlags, "--root", pullRoot, "--dataset", big)...)
		sameSnapshots(t, big, pullRoot+"/"+big)
		destroy(t, pullRoot+"/"+big)
		pushRoot := dst.Name + "/push"
		q := timeIt(t, binary, args("push", pushFlags, "--dataset", big)...)
		sameSnapshots(t, big, pushRoot+"/"+big)
		destroy(t, pushRoot+"/"+big)
		report.printf("round %d: raw %s (%.0f MiB/s), pull %s (%.0f MiB/s), push %s (%.0f MiB/s)", round, d.Round(time.Millisecond), sizeMiB/d.Seconds(),
			p.Round(time.Millisecond), sizeMiB/p.Seconds(), q.Round(time.Millisecond), sizeMiB/q.Seconds())
		bestRaw, bestPull, bestPush = minDuration(bestRaw, d), minDuration(bestPull, p), minDuration(bestPush, q)
	}

	// 2. A nothing-to-do pull over 200 datasets, next to a bare handshake.
	many := src.Name + "/many"
	testenv.Run(t, "zfs", "create", many)
	for i := 0; i < 200; i++ {
		ds := fmt.Sprintf("%s/d%03d", many, i)
		testenv.Run(t, "zfs", "create", ds)
		testenv.Run(t, "zfs", "snapshot", ds+"@s1")
	}
	manyRoot := dst.Name + "/many"
	full := timeIt(t, binary, args("pull", pullFlags, "--root", manyRoot)...)
	noop := timeIt(t, binary, args("pull", pullFlags, "--root", manyRoot)...)
	handshake := timeIt(t, "ssh", append(append([]string{}, rawSSH...), "true")...)
	report.printf("200 datasets: first pull %s; nothing-to-do pull %s; a bare ssh handshake (ssh host true) %s",
		full.Round(time.Millisecond), noop.Round(time.Millisecond), handshake.Round(time.Millisecond))

	// 3. One dataset with 2,000 small snapshots.
	snaps := src.Name + "/snaps"
	testenv.Run(t, "zfs", "create", snaps)
	start = time.Now()
	for i := 0; i < 2000; i++ {
		if i%100 == 0 {
			testenv.WriteRandom(t, filepath.Join(src.Mountpoint, "snaps", "f"), 4096)
		}
		testenv.Run(t, "zfs", "snapshot", fmt.Sprintf("%s@s%04d", snaps, i))
	}
	report.printf("2000 snapshots taken in %s", time.Since(start).Round(time.Millisecond))
	snapsRoot := dst.Name + "/snaps"
	full = timeIt(t, binary, args("pull", pullFlags, "--root", snapsRoot, "--dataset", snaps)...)
	sameSnapshots(t, snaps, snapsRoot+"/"+snaps)
	noop = timeIt(t, binary, args("pull", pullFlags, "--root", snapsRoot, "--dataset", snaps)...)
	list := timeIt(t, "zfs", "list", "-t", "snapshot", "-r", snaps)
	report.printf("2000 snapshots: first pull (full + one -I stream) %s; nothing-to-do pull %s; zfs list -t snapshot on the source %s",
		full.Round(time.Millisecond), noop.Round(time.Millisecond), list.Round(time.Millisecond))

	report.printf("raw (ssh zfs send | zfs recv): %.0f MiB/s", sizeMiB/bestRaw.Seconds())
	report.printf("pull:                          %.0f MiB/s", sizeMiB/bestPull.Seconds())
	report.printf("push:                          %.0f MiB/s", sizeMiB/bestPush.Seconds())
	report.printf("push/pull=%.2f", bestPull.Seconds()/bestPush.Seconds())
	report.printf("ratio=%.2f", bestRaw.Seconds()/bestPull.Seconds())
}

// benchReportFile prints figures to stdout and, with -bench-report, to a file.
type benchReportFile struct {
	t *testing.T
	f *os.File
}

func newReport(t *testing.T) *benchReportFile {
	r := &benchReportFile{t: t}
	if *benchReport != "" {
		f, err := os.Create(*benchReport)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		r.f = f
	}
	return r
}

func (r *benchReportFile) printf(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	fmt.Println(line)
	if r.f != nil {
		fmt.Fprintln(r.f, line)
	}
}

// timeIt runs a command and returns its wall time; it fails the test if
// the command fails.
func timeIt(t *testing.T, name string, argv ...string) time.Duration {
	t.Helper()
	cmd := exec.Command(name, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(argv, " "), err, out, stderr.String())
	}
	return d
}

// destroy removes a dataset recursively, retrying while zfs-fuse says busy.
func destroy(t *testing.T, ds string) {
	t.Helper()
	var err error
	for i := 0; i < 30; i++ {
		if _, err = testenv.Output("zfs", "destroy", "-r", ds); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal(err)
}

func minDuration(cur, d time.Duration) time.Duration {
	if cur == 0 || d < cur {
		return d
	}
	return cur
}

func quoteAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return out
}
