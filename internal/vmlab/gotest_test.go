package vmlab

import (
	"strings"
	"testing"
)

func events(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func TestSummarizeShowsFailuresAndSkipsOnly(t *testing.T) {
	in := events(
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Test":"TestOK"}`,
		`{"Action":"output","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Test":"TestOK","Output":"quiet log\n"}`,
		`{"Action":"pass","Test":"TestOK"}`,
		`{"Action":"output","Test":"TestBad","Output":"=== RUN   TestBad\n"}`,
		`{"Action":"output","Test":"TestBad/fine","Output":"    log of a passing subtest\n"}`,
		`{"Action":"output","Test":"TestBad/fine","Output":"--- PASS: TestBad/fine (0.10s)\n"}`,
		`{"Action":"pass","Test":"TestBad/fine"}`,
		`{"Action":"output","Test":"TestBad/sub","Output":"    bad_test.go:9: boom\n"}`,
		`{"Action":"output","Test":"TestBad/sub","Output":"--- FAIL: TestBad/sub (0.10s)\n"}`,
		`{"Action":"fail","Test":"TestBad/sub"}`,
		`{"Action":"output","Test":"TestBad","Output":"--- FAIL: TestBad (0.20s)\n"}`,
		`{"Action":"fail","Test":"TestBad"}`,
		`{"Action":"output","Test":"TestSkip","Output":"    x_test.go:3: no zfs\n"}`,
		`{"Action":"output","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}`,
		`{"Action":"skip","Test":"TestSkip"}`,
		`{"Action":"output","Output":"FAIL\n"}`,
		`{"Action":"fail"}`,
	)
	var out strings.Builder
	r := Summarize("p", strings.NewReader(in), &out)
	want := "    bad_test.go:9: boom\n--- FAIL: TestBad/sub (0.10s)\n--- FAIL: TestBad (0.20s)\n    x_test.go:3: no zfs\n--- SKIP: TestSkip (0.00s)\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if len(r.Passed) != 2 || len(r.Failed) != 2 || len(r.Skipped) != 1 || r.Failure != "" || r.OK() {
		t.Fatalf("result %+v", r)
	}
	passed, failed, skipped := Totals([]*PackageResult{r})
	if passed != 2 || failed != 2 || skipped != 1 {
		t.Fatalf("totals %d %d %d", passed, failed, skipped)
	}
}

func TestSummarizePackageFailingOutsideTests(t *testing.T) {
	in := events(
		`{"Action":"output","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"pass","Test":"TestA"}`,
		`{"Action":"output","Output":"panic: test timed out after 45m0s\n"}`,
	)
	var out strings.Builder
	r := Summarize("p", strings.NewReader(in), &out)
	if r.OK() || r.Failure == "" || !strings.Contains(out.String(), "panic: test timed out") {
		t.Fatalf("result %+v, output %q", r, out.String())
	}
	if _, failed, _ := Totals([]*PackageResult{r}); failed != 1 {
		t.Fatalf("a package failing outside its tests counts %d failures", failed)
	}
}

func TestSummarizePassingPackageIsQuiet(t *testing.T) {
	in := events(
		`{"Action":"output","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}`,
		`{"Action":"pass","Test":"TestA"}`,
		`{"Action":"output","Output":"PASS\n"}`,
		`{"Action":"pass"}`,
	)
	var out strings.Builder
	r := Summarize("p", strings.NewReader(in), &out)
	if !r.OK() || out.String() != "" {
		t.Fatalf("result %+v, output %q", r, out.String())
	}
}
