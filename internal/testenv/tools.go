package testenv

import (
	"os/exec"
	"testing"
)

// RequireToolsEnv is the environment variable that makes tests needing an
// external checker (promtool, systemd-analyze) fail instead of skipping
// when it is not installed; .ci/run sets it and installs them.
const RequireToolsEnv = "ZREP_REQUIRE_TOOLS"

// RequireTool returns the path of the program name, skipping the test when
// it is missing (failing it with ZREP_REQUIRE_TOOLS=1). pkg is the Debian
// package that has it.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	Require(t, RequireToolsEnv, err == nil, name+" is not installed (apt-get install "+pkg+")")
	return path
}
