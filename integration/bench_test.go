package integration

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/replication"
)

var (
	benchPull   = flag.Bool("bench-pull", false, "run TestBenchPull (make bench-pull)")
	benchReport = flag.String("bench-report", "", "append the benchmark's figures to this file too")
	benchSize   = flag.Int("bench-size-mib", 1024, "TestBenchPull: MiB of random data to replicate")
)

// TestBenchPull measures pull against baselines on the same pools, in the
// same run. It prints figures, not verdicts: no timing assertions. Each
// part is a subtest (-run 'TestBenchPull/scale'); the ratios of the parts
// that ran come last.
func TestBenchPull(t *testing.T) {
	if !*benchPull {
		t.Skip("a benchmark: run it with make bench-pull")
	}
	b := newBench(t)
	t.Run("throughput", b.throughput)
	t.Run("bwlimit", b.bwlimit)
	t.Run("sources", b.sources)
	t.Run("compressible", b.compressible)
	t.Run("scale", b.scale)
	for _, line := range b.summary {
		b.report.printf("%s", line)
	}
}

// bench is what the parts of TestBenchPull share: pools, an sshd, keys.
type bench struct {
	report    *benchReportFile
	src, dst  *testenv.Pool
	dir       string
	pullFlags []string
	pushFlags []string
	rawSSH    []string // ssh arguments up to the destination, unrestricted key
	summary   []string // figures printed at the end
}

func newBench(t *testing.T) *bench {
	b := &bench{report: newReport(t), dir: t.TempDir()}
	b.src = testenv.NewPool(t, "bsrc", *benchSize*2+1024)
	b.dst = testenv.NewPool(t, "bdst", *benchSize*2+1024)
	// Two keys: one forced into serve (for pull), one unrestricted (for the
	// raw `ssh host zfs send` baseline and the bare handshake).
	// A third key pushes into a sink on the same pools.
	policy := filepath.Join(b.dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  bench:\n    datasets:\n      %q: true\n  pusher:\n    sink: {root: %s/push}\n", b.src.Name+"<", b.dst.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	pullKey, pullPub := testenv.NewClientKey(t, b.dir)
	rawKey, rawPub := testenv.NewClientKey(t, b.dir)
	pushKey, pushPub := testenv.NewClientKey(t, b.dir)
	serve := fmt.Sprintf("%s serve --policy %s --identity bench --log-file %s", binary, policy, filepath.Join(b.dir, "serve.log"))
	sink := fmt.Sprintf("%s serve --policy %s --identity pusher --lock-dir %s --log-file %s", binary, policy, b.dir, filepath.Join(b.dir, "sink.log"))
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n%s\nrestrict,command=%q %s\n", serve, pullPub, rawPub, sink, pushPub))
	user := currentUser(t)
	b.pullFlags = sshFlags(user+"@127.0.0.1", sshd.Port, pullKey, sshd.SSHOptions())
	b.pushFlags = sshFlags(user+"@127.0.0.1", sshd.Port, pushKey, sshd.SSHOptions())
	b.rawSSH = []string{"-T", "-p", fmt.Sprint(sshd.Port), "-i", rawKey}
	for _, o := range sshd.SSHOptions() {
		b.rawSSH = append(b.rawSSH, "-o", o)
	}
	b.rawSSH = append(b.rawSSH, user+"@127.0.0.1")
	return b
}

// bigDataset makes (once) a dataset of *benchSize MiB of random data with
// one snapshot, @s1.
func (b *bench) bigDataset(t *testing.T) string {
	big := b.src.Name + "/big"
	if _, err := testenv.Output("zfs", "list", big+"@s1"); err == nil {
		return big
	}
	testenv.Run(t, "zfs", "create", big)
	start := time.Now()
	testenv.Run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(b.src.Mountpoint, "big", "data"), "bs=1M", fmt.Sprintf("count=%d", *benchSize), "status=none")
	testenv.Run(t, "zfs", "snapshot", big+"@s1")
	b.report.printf("data: %d MiB of random data in %s (written in %s)", *benchSize, big, time.Since(start).Round(time.Millisecond))
	return big
}

// throughput: 1 GiB of incompressible data with the raw pipeline, pull and push.
func (b *bench) throughput(t *testing.T) {
	big := b.bigDataset(t)
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", b.dst.Name+"/raw")
	sizeMiB := float64(*benchSize)

	var bestRaw, bestPull, bestPush time.Duration
	var peakRSS int64 // of serve, as it logs it (getrusage)
	for round := 1; round <= 2; round++ {
		rawTarget := b.dst.Name + "/raw/big"
		d := timeIt(t, "sh", "-c", fmt.Sprintf("ssh %s zfs send %s | zfs recv %s", strings.Join(quoteAll(b.rawSSH), " "), big+"@s1", rawTarget))
		sameSnapshots(t, big, rawTarget)
		destroy(t, rawTarget)
		pullRoot := b.dst.Name + "/pull"
		p := timeIt(t, binary, args("pull", b.pullFlags, "--root", pullRoot, "--dataset", big)...)
		for _, peak := range servePeaks(t, filepath.Join(b.dir, "serve.log")) {
			peakRSS = max(peakRSS, peak)
		}
		sameSnapshots(t, big, pullRoot+"/"+big)
		destroy(t, pullRoot+"/"+big)
		pushRoot := b.dst.Name + "/push"
		q := timeIt(t, binary, args("push", b.pushFlags, "--dataset", big)...)
		sameSnapshots(t, big, pushRoot+"/"+big)
		destroy(t, pushRoot+"/"+big)
		b.report.printf("round %d: raw %s (%.0f MiB/s), pull %s (%.0f MiB/s), push %s (%.0f MiB/s)", round, d.Round(time.Millisecond), sizeMiB/d.Seconds(),
			p.Round(time.Millisecond), sizeMiB/p.Seconds(), q.Round(time.Millisecond), sizeMiB/q.Seconds())
		bestRaw, bestPull, bestPush = minDuration(bestRaw, d), minDuration(bestPull, p), minDuration(bestPush, q)
	}
	b.summary = append(b.summary,
		fmt.Sprintf("raw (ssh zfs send | zfs recv): %.0f MiB/s", sizeMiB/bestRaw.Seconds()),
		fmt.Sprintf("pull:                          %.0f MiB/s", sizeMiB/bestPull.Seconds()),
		fmt.Sprintf("push:                          %.0f MiB/s", sizeMiB/bestPush.Seconds()),
		fmt.Sprintf("push/pull=%.2f", bestPull.Seconds()/bestPush.Seconds()),
		fmt.Sprintf("serve's peak resident set while streaming %d MiB: %.1f MiB", *benchSize, float64(peakRSS)/(1<<20)),
		fmt.Sprintf("ratio=%.2f", bestRaw.Seconds()/bestPull.Seconds()))
}

// bwlimit: a pull of the big dataset limited to a rate that makes it last
// about 30 s, its stream's rate measured from the step's own events.
func (b *bench) bwlimit(t *testing.T) {
	big := b.bigDataset(t)
	limit := max(*benchSize/30, 1) // MiB/s
	root := b.dst.Name + "/bwlimit"
	out := runOutput(t, binary, args("pull", b.pullFlags, "--root", root, "--dataset", big, "--json", "--bwlimit", fmt.Sprintf("%dMiB", limit))...)
	sameSnapshots(t, big, root+"/"+big)
	destroy(t, root)
	bytes, dur := streamed(t, out)
	got := float64(bytes) / dur.Seconds() / (1 << 20)
	b.report.printf("bwlimit: --bwlimit %dMiB: %.1f MiB in %s: %.2f MiB/s", limit, float64(bytes)/(1<<20), dur.Round(time.Millisecond), got)
	b.summary = append(b.summary, fmt.Sprintf("bwlimit %dMiB/s over %s: %.2f MiB/s, %+.1f%%", limit, dur.Round(time.Second), got, (got/float64(limit)-1)*100))
}

// sources: one backup host pulls 8 sources (8 pools, each behind its own
// sshd) with pull --config --jobs 8, next to one source alone.
func (b *bench) sources(t *testing.T) {
	const n = 8
	size := max(*benchSize/4, 8) // MiB per source
	type source struct {
		pool *testenv.Pool
		port int
	}
	var srcs []source
	key, pub := testenv.NewClientKey(t, b.dir)
	root := b.dst.Name + "/sources"
	config := fmt.Sprintf("state_dir: %s\njobs: %d\nsources:\n", filepath.Join(b.dir, "state"), n)
	for i := range n {
		pool := testenv.NewPool(t, fmt.Sprintf("s%d", i), 2*size+256)
		ds := pool.Name + "/data"
		testenv.Run(t, "zfs", "create", ds)
		testenv.Run(t, "dd", "if=/dev/urandom", "of="+filepath.Join(pool.Mountpoint, "data", "f"), "bs=1M", fmt.Sprintf("count=%d", size), "status=none")
		testenv.Run(t, "zfs", "snapshot", ds+"@s1")
		policy := filepath.Join(b.dir, fmt.Sprintf("policy-%d.yaml", i))
		if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  bench:\n    datasets:\n      %q: true\n", pool.Name+"<")), 0o644); err != nil {
			t.Fatal(err)
		}
		serve := fmt.Sprintf("%s serve --policy %s --identity bench --log-file %s", binary, policy, filepath.Join(b.dir, fmt.Sprintf("serve-%d.log", i)))
		sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n", serve, pub))
		srcs = append(srcs, source{pool, sshd.Port})
		var opts []string
		for _, o := range sshd.SSHOptions() {
			opts = append(opts, fmt.Sprintf("%q", o))
		}
		config += fmt.Sprintf("  s%d:\n    ssh: %s@127.0.0.1\n    port: %d\n    identity: %s\n    ssh_options: [%s]\n    root: %s/%d\n",
			i, currentUser(t), sshd.Port, key, strings.Join(opts, ", "), root, i)
	}
	configFile := filepath.Join(b.dir, "sources.yaml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	pull := func(only ...string) {
		var sel []string
		for _, s := range only {
			sel = append(sel, "--source", s)
		}
		if out, err := exec.Command(binary, args("pull", "--config", configFile, sel)...).CombinedOutput(); err != nil {
			t.Fatalf("pull --config: %v\n%s", err, out)
		}
	}
	check := func(sources int) { // the first sources arrived whole
		for i := range sources {
			sameSnapshots(t, srcs[i].pool.Name+"/data", fmt.Sprintf("%s/%d/%s/data", root, i, srcs[i].pool.Name))
		}
		destroy(t, root)
	}
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", root)
	start := time.Now()
	pull("s0")
	one := time.Since(start)
	check(1)
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", root)
	start = time.Now()
	pull()
	all := time.Since(start)
	check(n)
	oneRate, allRate := float64(size)/one.Seconds(), float64(n*size)/all.Seconds()
	b.report.printf("sources (pull --config): one source alone: %d MiB in %s (%.0f MiB/s); %d sources at once: %d MiB in %s (%.0f MiB/s in total)",
		size, one.Round(time.Millisecond), oneRate, n, n*size, all.Round(time.Millisecond), allRate)
	b.summary = append(b.summary, fmt.Sprintf("%d sources at once: %.0f MiB/s in total, one alone %.0f MiB/s: sources%d/one=%.2f", n, allRate, oneRate, n, allRate/oneRate))
}

// scale: a nothing-to-do pull over 200 datasets next to a bare ssh
// handshake, and of one dataset with 2,000 snapshots next to zfs list.
func (b *bench) scale(t *testing.T) {
	many := b.src.Name + "/many"
	testenv.Run(t, "zfs", "create", many)
	for i := 0; i < 200; i++ {
		ds := fmt.Sprintf("%s/d%03d", many, i)
		testenv.Run(t, "zfs", "create", ds)
		testenv.Run(t, "zfs", "snapshot", ds+"@s1")
	}
	manyRoot := b.dst.Name + "/many"
	datasets := []string{"--dataset", many}
	for i := 0; i < 200; i++ {
		datasets = append(datasets, "--dataset", fmt.Sprintf("%s/d%03d", many, i))
	}
	full := timeIt(t, binary, args("pull", b.pullFlags, "--root", manyRoot, datasets)...)
	var noop, handshake time.Duration
	for range 3 { // the best of three of each, taken in turns
		noop = minDuration(noop, timeIt(t, binary, args("pull", b.pullFlags, "--root", manyRoot, datasets)...))
		handshake = minDuration(handshake, timeIt(t, "ssh", append(append([]string{}, b.rawSSH...), "true")...))
	}
	b.report.printf("200 datasets: first pull %s; nothing-to-do pull %s; a bare ssh handshake (ssh host true) %s",
		full.Round(time.Millisecond), noop.Round(time.Millisecond), handshake.Round(time.Millisecond))
	b.listings(t, "200 datasets", manyRoot)

	snaps := b.src.Name + "/snaps"
	testenv.Run(t, "zfs", "create", snaps)
	start := time.Now()
	for i := 0; i < 2000; i++ {
		if i%100 == 0 {
			testenv.WriteRandom(t, filepath.Join(b.src.Mountpoint, "snaps", "f"), 4096)
		}
		testenv.Run(t, "zfs", "snapshot", fmt.Sprintf("%s@s%04d", snaps, i))
	}
	b.report.printf("2000 snapshots taken in %s", time.Since(start).Round(time.Millisecond))
	snapsRoot := b.dst.Name + "/snaps"
	full = timeIt(t, binary, args("pull", b.pullFlags, "--root", snapsRoot, "--dataset", snaps)...)
	sameSnapshots(t, snaps, snapsRoot+"/"+snaps)
	var noopSnaps, list time.Duration
	for range 3 {
		noopSnaps = minDuration(noopSnaps, timeIt(t, binary, args("pull", b.pullFlags, "--root", snapsRoot, "--dataset", snaps)...))
		list = minDuration(list, timeIt(t, "zfs", "list", "-t", "snapshot", "-r", snaps))
	}
	b.report.printf("2000 snapshots: first pull (full + one -I stream) %s; nothing-to-do pull %s; zfs list -t snapshot on the source %s",
		full.Round(time.Millisecond), noopSnaps.Round(time.Millisecond), list.Round(time.Millisecond))
	b.listings(t, "2000 snapshots", snapsRoot)
	b.summary = append(b.summary,
		fmt.Sprintf("200 datasets, nothing to do: %s, ssh handshake %s: noop200/handshake=%.2f", noop.Round(time.Millisecond), handshake.Round(time.Millisecond), noop.Seconds()/handshake.Seconds()),
		fmt.Sprintf("2000 snapshots, nothing to do: %s, zfs list -t snapshot %s: noop2000/list=%.2f", noopSnaps.Round(time.Millisecond), list.Round(time.Millisecond), noopSnaps.Seconds()/list.Seconds()))
}

// listings reports where a nothing-to-do pull's time goes: the one listing
// each side runs (serve lists the policy's root, here the source pool; pull
// its --root), alone and both at once, with the CPU the zfs-fuse daemon
// spent on each (it does the work; zfs-fuse lists unmounted datasets, as
// received targets are, several times slower than mounted ones). On
// OpenZFS the listing is the one package zfs runs there, on either side.
func (b *bench) listings(t *testing.T, what, dstRoot string) {
	get := []string{"get", "-H", "-p", "-o", "name,property,value", "-r", "type,guid,createtxg,creation"}
	if _, openZFS := testenv.OpenZFS(t); openZFS {
		get = []string{"list", "-H", "-p", "-o", "name,type,guid,createtxg,creation,encryption,receive_resume_token",
			"-t", "filesystem,volume,snapshot,bookmark", "-r"}
	}
	var src, dst, both time.Duration
	var srcCPU, dstCPU time.Duration
	for range 3 {
		c := daemonCPU()
		src = minDuration(src, timeIt(t, "zfs", append(get, b.src.Name)...))
		c2 := daemonCPU()
		dst = minDuration(dst, timeIt(t, "zfs", append(get, dstRoot)...))
		srcCPU, dstCPU = c2-c, daemonCPU()-c2
		start := time.Now()
		done := make(chan struct{})
		go func() { defer close(done); timeIt(t, "zfs", append(get, b.src.Name)...) }()
		timeIt(t, "zfs", append(get, dstRoot)...)
		<-done
		both = minDuration(both, time.Since(start))
	}
	b.report.printf("%s: the source's listing %s, the target's %s, both at once %s; zfs-fuse's CPU for them: %s and %s",
		what, src.Round(time.Millisecond), dst.Round(time.Millisecond), both.Round(time.Millisecond), srcCPU, dstCPU)
}

// streamed sums the bytes and the durations of the steps in pull --json
// output: what went through the streams, and for how long.
func streamed(t *testing.T, out string) (int64, time.Duration) {
	t.Helper()
	var n int64
	var d time.Duration
	for _, ev := range parseEvents(t, out) {
		if ev.Type == replication.EventStepDone {
			n += ev.Bytes
			d += ev.Duration
		}
	}
	return n, d
}

// daemonCPU is the CPU time the zfs-fuse daemon used so far; 0 without one.
func daemonCPU() time.Duration {
	out, err := exec.Command("pgrep", "-x", "zfs-fuse").Output()
	if err != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strings.Fields(string(out))[0] + "/stat")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		n, _ := strconv.ParseInt(f, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond // USER_HZ is 100 on Linux
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

// runOutput runs a command and returns its stdout; it fails the test if
// the command fails.
func runOutput(t *testing.T, name string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(name, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(argv, " "), err, out, stderr.String())
	}
	return string(out)
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
