// Package systemd holds the systemd units shipped in contrib/systemd and
// their tests; it has no Go code of its own.
package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zrep/zrep/internal/testtools"
	"github.com/zrep/zrep/pullconfig"
)

const installedBinary = "/usr/local/bin/zrep-stdinserver"

// directives reads a unit file's Key=Value lines, by key (all values).
func directives(t *testing.T, name string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = append(out[k], v)
		}
	}
	return out
}

// systemd-analyze verify accepts both units, instantiated, without a
// single warning. The shipped ExecStart names the installed binary, which
// need not exist here: the copy checked names an executable that does.
func TestVerify(t *testing.T) {
	analyze := testtools.Require(t, "systemd-analyze", "systemd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"zrep-pull@.service", "zrep-pull@.timer"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(installedBinary), []byte(self))
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(analyze, "verify", "--man=no", "./zrep-pull@backup.service", "./zrep-pull@backup.timer")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The hardening stays as documented: a change that drops a line fails here.
func TestServiceHardening(t *testing.T) {
	d := directives(t, "zrep-pull@.service")
	want := map[string]string{
		"Type":                    "oneshot",
		"ExecStart":               installedBinary + " pull --config /etc/zrep/%i.yaml",
		"ProtectSystem":           "strict",
		"ProtectHome":             "read-only", // ssh reads its key and known_hosts in /root
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"DevicePolicy":            "closed",
		"DeviceAllow":             "/dev/zfs rw",
		"CapabilityBoundingSet":   "CAP_SYS_ADMIN",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"MemoryDenyWriteExecute":  "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectControlGroups":    "yes",
		"SystemCallArchitectures": "native",
		"SystemCallFilter":        "@system-service",
		"ReadWritePaths":          "-/var/lib/prometheus/node-exporter",
	}
	for k, v := range want {
		if got := d[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	// StateDirectory= makes the default state_dir writable.
	if got := d["StateDirectory"]; len(got) != 1 || "/var/lib/"+got[0] != pullconfig.DefaultStateDir {
		t.Errorf("StateDirectory=%q, want the default state_dir %s", got, pullconfig.DefaultStateDir)
	}
	// A oneshot's default start timeout (90s) would kill every long pull.
	if got := d["TimeoutStartSec"]; len(got) != 1 || got[0] == "" {
		t.Errorf("TimeoutStartSec=%q: a oneshot needs one", got)
	}
	timer := directives(t, "zrep-pull@.timer")
	if timer["Persistent"][0] != "true" || timer["WantedBy"][0] != "timers.target" || len(timer["OnCalendar"]) != 1 {
		t.Errorf("timer: %v", timer)
	}
}
