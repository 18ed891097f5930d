package integration

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/zrep/zrep/internal/testtools"
)

// On a terminal, log lines read like the command's own output (no time
// stamp, no zap columns) and first clear the line a progress bar may be
// on; elsewhere they keep zap's format, and --log-json stays JSON.
func TestLogLinesOnATerminal(t *testing.T) {
	script := testtools.Require(t, "script", "bsdutils")
	cmdline := binary + " serve --policy /nonexistent/policy.yaml --identity x"

	// script runs the command on a new pseudo-terminal.
	out, _ := exec.Command(script, "-qec", cmdline, "/dev/null").CombinedOutput()
	if want := "\r\x1b[Kerror: refusing to serve: identity=x"; !strings.Contains(string(out), want) || strings.Contains(string(out), "\tERROR\t") {
		t.Errorf("on a terminal: %q, want a line starting %q", out, want)
	}
	out, _ = exec.Command(script, "-qec", cmdline+" --log-json", "/dev/null").CombinedOutput()
	if !strings.Contains(string(out), `"level":"error"`) || !strings.Contains(string(out), `"msg":"refusing to serve"`) {
		t.Errorf("--log-json on a terminal: %q", out)
	}

	r := zrep(t, "serve", "--policy", "/nonexistent/policy.yaml", "--identity", "x")
	if !strings.Contains(r.stderr, "\tERROR\trefusing to serve\t") || strings.Contains(r.stderr, "\x1b[K") {
		t.Errorf("not on a terminal: %q", r.stderr)
	}
}
