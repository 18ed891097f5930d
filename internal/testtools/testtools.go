// Package testtools gates tests on external checkers (promtool,
// systemd-analyze, script), as package testenv gates them on zfs and sshd:
// they skip where the program is missing, unless ZREP_REQUIRE_TOOLS=1
// (which .ci/run sets, after installing them) makes that a failure.
//
// It is a package of its own so that the tests using it are not taken for
// zfs or sshd tests: the OpenZFS lab runs the packages that import testenv.
package testtools

import (
	"os/exec"
	"testing"

	"github.com/zrep/zrep/internal/testenv"
)

// RequireToolsEnv is the environment variable that makes a missing
// checker a failure instead of a skip.
const RequireToolsEnv = "ZREP_REQUIRE_TOOLS"

// Require returns the path of the program name, skipping the test when it
// is missing (failing it with ZREP_REQUIRE_TOOLS=1). pkg is the Debian
// package that has it.
func Require(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	testenv.Require(t, RequireToolsEnv, err == nil, name+" is not installed (apt-get install "+pkg+")")
	return path
}

// Optional returns the path of the program name, or "" when it is missing
// and not required: for a check that is only a part of a test.
func Optional(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	testenv.Require(&noSkip{TB: t}, RequireToolsEnv, false, name+" is not installed (apt-get install "+pkg+")")
	t.Logf("%s is not installed: that check is left out", name)
	return ""
}

// noSkip turns Require's skip into nothing: the rest of the test runs.
type noSkip struct{ testing.TB }

func (n *noSkip) Skipf(string, ...any) {}
