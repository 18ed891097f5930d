package vmlab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// testenvPackage is imported by every test package that needs zfs or sshd.
const testenvPackage = "github.com/zrep/zrep/internal/testenv"

// guestTestDir is where the test binaries and their testdata go in the guest.
const guestTestDir = "/root/zrep-test"

// guestTestUser is the user other than root that the integration tests
// run zrep as, with only the permissions `zfs allow` gives it.
const guestTestUser = "zrep-test"

// guestTestEnv is the environment of the tests in the guest: nothing may
// skip, and the integration tests use the binary copied in (the guest has
// no Go toolchain to build one).
var guestTestEnv = []string{
	"ZREP_REQUIRE_ZFS=1", "ZREP_REQUIRE_SSHD=1",
	"ZREP_TEST_BINARY=/usr/local/bin/zrep-stdinserver",
	"ZREP_TEST_USER=" + guestTestUser,
	"USER=root", "HOME=/root", "TMPDIR=/var/tmp", "LC_ALL=C",
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}

// notInLab are tests that are not tests of behaviour, or too long for it:
// benchmarks and the soak, run by their own make targets (they skip
// without their flag).
const notInLab = "^(TestBenchPull|TestSoak)$"

// TestPackage is a Go package whose tests run in the lab.
type TestPackage struct {
	ImportPath string
	Dir        string // relative to the module root, e.g. "zfs"
	Name       string // package name, e.g. "zfs"
}

// LabPackages lists the module's packages whose tests use zfs or sshd:
// those importing internal/testenv, and testenv itself.
func LabPackages(moduleRoot string) ([]TestPackage, error) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Name}}\t{{.Dir}}\t{{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "./...")
	cmd.Dir = moduleRoot
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.Wrap(err, "go list")
	}
	var pkgs []TestPackage
	scanLines(string(out), func(line string) {
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return
		}
		if f[0] != testenvPackage && !slices.Contains(strings.Fields(f[3]), testenvPackage) {
			return
		}
		rel, err := filepath.Rel(moduleRoot, f[2])
		if err != nil {
			return
		}
		pkgs = append(pkgs, TestPackage{ImportPath: f[0], Name: f[1], Dir: rel})
	})
	if len(pkgs) == 0 {
		return nil, errors.New("no package imports " + testenvPackage)
	}
	return pkgs, nil
}

// BuildTests builds, into stage, the static zrep-stdinserver and the test
// binary of each package (stage/DIR/NAME.test, next to a copy of the
// package's testdata). They are built without cgo, so they run on the
// guest whatever its libc, and without -race: the race detector needs cgo,
// and the same code runs with -race on the host's zfs-fuse suite.
func BuildTests(moduleRoot, stage string, pkgs []TestPackage) error {
	if err := buildStatic(moduleRoot, filepath.Join(stage, "zrep-stdinserver")); err != nil {
		return err
	}
	for _, p := range pkgs {
		dir := filepath.Join(stage, p.Dir)
		c := exec.Command("go", "test", "-c", "-o", filepath.Join(dir, p.Name+".test"), "./"+p.Dir)
		c.Dir = moduleRoot
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			return errors.Wrapf(err, "go test -c %s: %s", p.ImportPath, out)
		}
		testdata := filepath.Join(moduleRoot, p.Dir, "testdata")
		if _, err := os.Stat(testdata); err == nil {
			if out, err := exec.Command("cp", "-a", testdata, dir).CombinedOutput(); err != nil {
				return errors.Wrapf(err, "copying %s: %s", testdata, out)
			}
		}
	}
	return nil
}

// PackageResult is how one package's tests went.
type PackageResult struct {
	Package                 string
	Passed, Failed, Skipped []string // test names
	Elapsed                 time.Duration
	// Failure says why the package failed outside of any test (a crash,
	// a timeout, a broken connection); empty otherwise.
	Failure string
}

// OK reports whether the package passed with nothing skipped.
func (r *PackageResult) OK() bool {
	return r.Failure == "" && len(r.Failed) == 0 && len(r.Skipped) == 0
}

// RunTests runs one package's test binary in the guest and reports it on w
// as `go test` does: "ok" or the output of each failing (or skipping) test
// and "FAIL".
func (vm *VM) RunTests(ctx context.Context, p TestPackage, w io.Writer) (*PackageResult, error) {
	dir := path.Join(guestTestDir, p.Dir)
	// The password "*" rather than useradd's "!": sshd (without PAM) takes
	// "!" for a locked account and refuses its keys.
	script := fmt.Sprintf("{ id -u %[5]s >/dev/null 2>&1 || useradd --system --shell /bin/sh --password '*' %[5]s; } && "+
		"cd %[1]s && exec env %s ./%s.test -test.v=test2json -test.count=1 -test.timeout=45m -test.skip %s 2>&1",
		shellQuote(dir), strings.Join(guestTestEnv, " "), p.Name, shellQuote(notInLab), guestTestUser)
	cmd, err := vm.Command(ctx, script)
	if err != nil {
		return nil, err
	}
	conv := exec.CommandContext(ctx, "go", "tool", "test2json", "-t", "-p", p.ImportPath)
	if conv.Stdin, err = cmd.StdoutPipe(); err != nil {
		return nil, errors.Wrap(err, "test2json")
	}
	events, err := conv.StdoutPipe()
	if err != nil {
		return nil, errors.Wrap(err, "test2json")
	}
	var sshErr strings.Builder
	cmd.Stderr = &sshErr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, errors.Wrap(err, "ssh")
	}
	if err := conv.Start(); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, errors.Wrap(err, "go tool test2json")
	}
	res := Summarize(p.ImportPath, events, w)
	runErr := cmd.Wait()
	_ = conv.Wait()
	res.Elapsed = time.Since(start)
	if runErr != nil && len(res.Failed) == 0 {
		// Crashed, timed out or unreachable: say how the run ended.
		res.Failure = strings.TrimSpace(fmt.Sprintf("%s (ssh: %v) %s", res.Failure, runErr, strings.TrimSpace(sshErr.String())))
	}
	if res.Failure != "" {
		fmt.Fprintln(w, res.Failure)
	}
	status := "ok  "
	if !res.OK() {
		status = "FAIL"
	}
	extra := ""
	if len(res.Skipped) > 0 {
		extra = fmt.Sprintf(" (%d skipped: nothing may skip in the lab)", len(res.Skipped))
	}
	fmt.Fprintf(w, "%s\t%s\t%.3fs%s\n", status, p.ImportPath, res.Elapsed.Seconds(), extra)
	return res, nil
}

// event is one line of `go tool test2json`.
type event struct {
	Action string
	Test   string
	Output string
}

// Summarize reads test2json events and writes what `go test` (without -v)
// shows: the output of each test that failed or skipped (a passing subtest
// of a failed test shows nothing), and the package's own output if it
// failed outside any test.
func Summarize(pkg string, r io.Reader, w io.Writer) *PackageResult {
	res := &PackageResult{Package: pkg}
	var all []event
	bad := map[string]bool{} // tests whose output is shown
	pkgAction := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			all = append(all, event{Action: "output", Output: sc.Text() + "\n"})
			continue
		}
		switch e.Action {
		case "output":
			all = append(all, e)
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgAction = e.Action
				continue
			}
			switch e.Action {
			case "pass":
				res.Passed = append(res.Passed, e.Test)
			case "fail":
				res.Failed = append(res.Failed, e.Test)
				bad[e.Test] = true
			case "skip":
				res.Skipped = append(res.Skipped, e.Test)
				bad[e.Test] = true
			}
		}
	}
	failedOutside := pkgAction != "pass" && len(res.Failed) == 0
	for _, e := range all {
		if strings.HasPrefix(e.Output, "=== ") {
			continue
		}
		if (e.Test == "" && failedOutside && e.Output != "PASS\n") || bad[e.Test] {
			fmt.Fprint(w, e.Output)
		}
	}
	if failedOutside {
		switch pkgAction {
		case "":
			res.Failure = "the test binary ended without a result"
		case "skip":
			res.Failure = "the package has no tests to run"
		default:
			res.Failure = "the package failed outside its tests"
		}
	}
	sort.Strings(res.Skipped)
	return res
}

// Totals adds up results: tests passed, failed (packages failing outside
// their tests count as one failure) and skipped.
func Totals(results []*PackageResult) (passed, failed, skipped int) {
	for _, r := range results {
		passed += len(r.Passed)
		failed += len(r.Failed)
		skipped += len(r.Skipped)
		if r.Failure != "" {
			failed++
		}
	}
	return passed, failed, skipped
}

// buildStatic builds zrep-stdinserver without cgo (a static binary that
// runs on the guest whatever its libc) into out.
func buildStatic(moduleRoot, out string) error {
	cmd := exec.Command("go", "build", "-o", out, "./cmd/zrep-stdinserver")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return errors.Wrapf(err, "go build zrep-stdinserver: %s", b)
	}
	return nil
}
