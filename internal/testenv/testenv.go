// Package testenv holds helpers shared by zrep's integration tests: gating
// tests on their prerequisites, and real services (an OpenSSH sshd) started
// for one test and stopped with it.
//
// Integration tests may skip on a developer's machine that lacks a
// prerequisite, but never in CI: there ZREP_REQUIRE_ZFS=1 and
// ZREP_REQUIRE_SSHD=1 turn every such skip into a failure.
package testenv

import (
	"os"
	"testing"
)

// Require skips the test when a prerequisite is missing, unless the
// environment variable env is "1", in which case it fails: CI sets
// ZREP_REQUIRE_ZFS=1 and ZREP_REQUIRE_SSHD=1 so integration tests never skip there.
// ok says whether the prerequisite is met; why says what is missing.
func Require(t testing.TB, env string, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(env) == "1" {
		t.Fatalf("%s=1 but %s", env, why)
		return
	}
	t.Skipf("%s (set %s=1 to make this a failure)", why, env)
}
