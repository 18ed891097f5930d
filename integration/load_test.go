package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/testenv"
)

// maxServeRSS is the most memory one session may take on the source: the
// peak resident set of a serve process, and the embedded sshd's growth per
// session.
const maxServeRSS = 32 << 20

// loadWorld is a source pool with n datasets of its own for n pullers,
// served by one sshd, and a destination pool.
type loadWorld struct {
	src, dst *testenv.Pool
	dir      string
	policy   string
	datasets []string
}

func newLoadWorld(t *testing.T, n, sizeEach int) *loadWorld {
	t.Helper()
	w := &loadWorld{src: testenv.NewPool(t, "lsrc", 256+n*sizeEach>>19), dst: testenv.NewPool(t, "ldst", 256+n*sizeEach>>19), dir: t.TempDir()}
	for i := range n {
		ds := fmt.Sprintf("%s/d%02d", w.src.Name, i)
		testenv.Run(t, "zfs", "create", ds)
		testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, fmt.Sprintf("d%02d", i), "f"), sizeEach)
		testenv.Run(t, "zfs", "snapshot", ds+"@s1")
		w.datasets = append(w.datasets, ds)
	}
	w.policy = filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(w.policy, []byte(fmt.Sprintf("identities:\n  %s:\n    datasets:\n      %q: true\n", identity, w.src.Name+"<")), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *loadWorld) serveCommand(log string) string {
	return fmt.Sprintf("%s serve --policy %s --identity %s --log-file %s", binary, w.policy, identity, log)
}

// TestLoadConcurrentSessions opens 20 sessions on one source at once,
// through OpenSSH and through the embedded sshd: 10 pull a dataset each
// while 10 list. All complete (ssh logins slowed down by the load are not
// counted against the handshake), every received guid is the source's, no
// serve process grows past maxServeRSS, nor the embedded sshd by more than
// that per session.
func TestLoadConcurrentSessions(t *testing.T) {
	const pulls, lists = 10, 10
	w := newLoadWorld(t, pulls, 1<<20)
	key, pub := testenv.NewClientKey(t, w.dir)
	for _, kind := range []string{"openssh", "embedded"} {
		t.Run(kind, func(t *testing.T) {
			log := filepath.Join(w.dir, "serve-"+kind+".log")
			line := fmt.Sprintf("restrict,command=%q %s\n", w.serveCommand(log), pub)
			var flags []string
			var sshdPID int
			switch kind {
			case "openssh":
				sshd := testenv.StartSSHD(t, line)
				flags = sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions())
			case "embedded":
				ak := filepath.Join(w.dir, "authorized_keys.embedded")
				if err := os.WriteFile(ak, []byte(line), 0o600); err != nil {
					t.Fatal(err)
				}
				e := startEmbedded(t, w.dir, ak, "--max-startups", "100")
				flags, sshdPID = sshFlags("backup@127.0.0.1", e.port, key, e.sshOptions), e.pid
			}
			var before int64
			if sshdPID != 0 {
				before = procStatus(sshdPID, "VmRSS")
			}
			root := w.dst.Name + "/" + kind
			var wg sync.WaitGroup
			results := make([]result, pulls+lists)
			for i := range pulls + lists {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i < pulls {
						results[i] = zrep(t, args("pull", flags, "--root", fmt.Sprintf("%s/%d", root, i), "--dataset", w.datasets[i])...)
					} else {
						results[i] = zrep(t, args("ls", flags)...)
					}
				}()
			}
			wg.Wait()
			for i, r := range results {
				if r.code != 0 {
					t.Errorf("session %d: exit %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			for i := range pulls {
				sameSnapshots(t, w.datasets[i], fmt.Sprintf("%s/%d/%s", root, i, w.datasets[i]))
			}
			for i := pulls; i < pulls+lists; i++ {
				for _, ds := range w.datasets {
					if !strings.Contains(results[i].stdout, ds) {
						t.Fatalf("ls %d does not list %s:\n%s", i, ds, results[i].stdout)
					}
				}
			}
			if kind == "openssh" {
				checkPeaks(t, servePeaks(t, log), pulls+lists)
				return
			}
			peak := procStatus(sshdPID, "VmHWM")
			perSession := (peak - before) / (pulls + lists)
			t.Logf("embedded sshd: %d MiB resident before, peak %d MiB with %d sessions: %.1f MiB per session",
				before>>20, peak>>20, pulls+lists, float64(peak-before)/float64(pulls+lists)/(1<<20))
			if perSession > maxServeRSS {
				t.Errorf("the embedded sshd grew by %d MiB per session, more than %d MiB", perSession>>20, maxServeRSS>>20)
			}
		})
	}
}

// TestLoadServeMemory streams a 64 MiB send through OpenSSH and checks the
// serve process's peak resident set (VmHWM) against maxServeRSS; make
// bench-pull does the same with 1 GiB.
func TestLoadServeMemory(t *testing.T) {
	w := newLoadWorld(t, 1, 64<<20)
	key, pub := testenv.NewClientKey(t, w.dir)
	log := filepath.Join(w.dir, "serve.log")
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n", w.serveCommand(log), pub))
	flags := sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions())
	mustZrep(t, args("pull", flags, "--root", w.dst.Name+"/backup")...)
	sameSnapshots(t, w.datasets[0], w.dst.Name+"/backup/"+w.datasets[0])
	checkPeaks(t, servePeaks(t, log), 1)
}

// checkPeaks checks that want sessions were logged and none passed maxServeRSS.
func checkPeaks(t *testing.T, peaks []int64, want int) {
	t.Helper()
	var most int64
	for i, p := range peaks {
		most = max(most, p)
		if p > maxServeRSS {
			t.Errorf("serve session %d: peak resident set %d MiB, more than %d MiB", i, p>>20, maxServeRSS>>20)
		}
	}
	t.Logf("%d serve sessions, the largest peak resident set %.1f MiB", len(peaks), float64(most)/(1<<20))
	if len(peaks) != want {
		t.Errorf("%d serve sessions logged their end, want %d", len(peaks), want)
	}
}

var peakRSSField = regexp.MustCompile(`"peak_rss_bytes": ?([0-9]+)`)

// servePeaks reads the peak resident set that each serve session logged
// when it ended (getrusage's, so nothing between two samples is missed).
func servePeaks(t *testing.T, log string) []int64 {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var peaks []int64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "session closed") && !strings.Contains(line, "session failed") {
			continue
		}
		m := peakRSSField.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a session's end without its peak memory: %s", line)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		peaks = append(peaks, n)
	}
	return peaks
}

// procStatus reads a "kB" field of /proc/PID/status in bytes; 0 if it
// cannot be read.
func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// TestSlowLogin: an ssh that takes longer to come up than the protocol's
// handshake timeout (here a wrapper that waits before it runs ssh, as a
// login on a busy source does) is no failure: the HELLO clock starts at
// the source's first byte.
func TestSlowLogin(t *testing.T) {
	w := newLoadWorld(t, 1, 1<<20)
	key, pub := testenv.NewClientKey(t, w.dir)
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s\n", w.serveCommand(filepath.Join(w.dir, "serve.log")), pub))
	slow := filepath.Join(w.dir, "slow-ssh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nsleep 3\nexec ssh \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	flags := sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions())
	mustZrep(t, args("pull", flags, "--ssh-bin", slow, "--rpc-handshake-timeout", "1s", "--root", w.dst.Name+"/backup")...)
	sameSnapshots(t, w.datasets[0], w.dst.Name+"/backup/"+w.datasets[0])
}

// TestDeadPeerFailsFast: a source that accepts the connection and then
// says nothing fails after ssh's ConnectTimeout, with ssh's own words, not
// after the first-byte timeout.
func TestDeadPeerFailsFast(t *testing.T) {
	requireSSHClient(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	key, _ := testenv.NewClientKey(t, t.TempDir())
	port := l.Addr().(*net.TCPAddr).Port
	start := time.Now()
	r := zrep(t, args("ls", sshFlags("root@127.0.0.1", port, key, []string{"ConnectTimeout=2", "StrictHostKeyChecking=yes"}))...)
	elapsed := time.Since(start)
	if r.code != 3 || !strings.Contains(r.stderr, "timed out") {
		t.Fatalf("exit %d after %s, want 3 with ssh's timeout\n%s", r.code, elapsed, r.stderr)
	}
	// Far below the first-byte timeout (ConnectTimeout + 2m30s); the margin
	// is for a busy machine.
	if elapsed > 90*time.Second {
		t.Errorf("gave up after %s", elapsed)
	}
	t.Logf("gave up after %s: %s", elapsed.Round(time.Millisecond), r.stderr)
}
