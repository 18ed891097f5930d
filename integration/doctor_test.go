package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zrep/zrep/doctor"
	"github.com/zrep/zrep/internal/testenv"
)

// TestDoctorBackupHost runs doctor --config against a real OpenSSH sshd
// and zfs-fuse pools, with one source per problem it claims to find on a
// backup host, and one where all is well.
func TestDoctorBackupHost(t *testing.T) {
	src, dst := testenv.NewPool(t, "dsrc", 256), testenv.NewPool(t, "ddst", 256)
	dir := t.TempDir()
	testenv.Run(t, "zfs", "create", src.Name+"/a")
	testenv.Run(t, "zfs", "snapshot", src.Name+"/a@s1")
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, fmt.Sprintf("identities:\n  b1:\n    datasets: {%q: true}\n", src.Name+"/a<"))
	serveLog := filepath.Join(dir, "serve.log")

	forced, forcedPub := testenv.NewClientKey(t, dir)
	unforced, unforcedPub := testenv.NewClientKey(t, dir)
	elsewhere, elsewherePub := testenv.NewClientKey(t, dir)
	refused, _ := testenv.NewClientKey(t, dir)
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=\"%s serve --policy %s --identity b1 --log-file %s\" %s zrep\n%s plain\nrestrict,command=\"echo not zrep\" %s other\n",
		binary, policy, serveLog, forcedPub, unforcedPub, elsewherePub))

	// Known-hosts files for the host key problems.
	empty := filepath.Join(dir, "known_hosts.empty")
	writeFile(t, empty, "")
	_, otherHostKey := testenv.NewClientKey(t, dir)
	changed := filepath.Join(dir, "known_hosts.changed")
	writeFile(t, changed, fmt.Sprintf("[127.0.0.1]:%d %s\n", sshd.Port, otherHostKey))
	options := func(knownHosts string) string {
		var opts []string
		if knownHosts != "" {
			opts = append(opts, "UserKnownHostsFile="+knownHosts)
		}
		for _, o := range sshd.SSHOptions() {
			if knownHosts == "" || !strings.HasPrefix(o, "UserKnownHostsFile=") {
				opts = append(opts, o)
			}
		}
		return quoteList(opts)
	}
	// A root that can be mounted.
	testenv.Run(t, "zfs", "create", dst.Name+"/mounted")

	user := currentUser(t)
	type source struct{ name, key, knownHosts, root, extra string }
	port := sshd.Port
	sources := []source{
		{"ok", forced, "", dst.Name + "/ok", fmt.Sprintf("    datasets: [%q]\n", src.Name+"/a")},
		{"hidden", forced, "", dst.Name + "/hidden", fmt.Sprintf("    datasets: [%q, %q]\n", src.Name+"/a", src.Name+"/denied")},
		{"notforced", unforced, "", dst.Name + "/notforced", ""},
		{"elsewhere", elsewhere, "", dst.Name + "/elsewhere", ""},
		{"refused", refused, "", dst.Name + "/refused", ""},
		{"unknownhost", forced, empty, dst.Name + "/unknownhost", ""},
		{"changed", forced, changed, dst.Name + "/changed", ""},
		{"down", forced, "", dst.Name + "/down", ""},
		{"mounted", forced, "", dst.Name + "/mounted", ""},
		{"nopool", forced, "", "zrtnosuchpool/x", ""},
	}
	var cfg strings.Builder
	cfg.WriteString("sources:\n")
	for _, s := range sources {
		p := port
		if s.name == "down" {
			p = freePort(t)
		}
		fmt.Fprintf(&cfg, "  %s:\n    ssh: %s@127.0.0.1\n    port: %d\n    identity: %s\n    ssh_options: [%s]\n    root: %s\n%s",
			s.name, user, p, s.key, options(s.knownHosts), s.root, s.extra)
	}
	config := filepath.Join(dir, "pull.yaml")
	writeFile(t, config, cfg.String())

	r := zrep(t, "doctor", "--config", config, "--json")
	if r.code != 1 {
		t.Fatalf("doctor: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep doctor.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, r.stdout)
	}
	find := func(t *testing.T, subject string, sev doctor.Severity, msg string) {
		t.Helper()
		for _, f := range rep.Findings {
			if strings.HasPrefix(f.Subject, subject) && f.Severity == sev && strings.Contains(f.Message, msg) {
				return
			}
		}
		t.Errorf("no %s finding about %q with %q in:\n%s", sev, subject, msg, r.stdout)
	}
	for _, tt := range []struct {
		name, subject string
		sev           doctor.Severity
		msg           string
	}{
		{"config parses", config, doctor.OK, "parses: 10 source(s)"},
		{"session ok", "source ok ", doctor.OK, "reachable, host key known, key accepted and forced into serve"},
		{"datasets visible", "source ok ", doctor.OK, "the key sees every dataset the configuration names"},
		{"root missing is fine", dst.Name + "/ok ", doctor.OK, "does not exist yet"},
		{"dataset hidden", "source hidden ", doctor.Error, "names " + src.Name + "/denied, which the key does not see"},
		{"not forced", "source notforced ", doctor.Error, "not forced into serve"},
		{"forced elsewhere", "source elsewhere ", doctor.Error, "the key's forced command did not start the zrep endpoint"},
		{"key refused", "source refused ", doctor.Error, "the source refused the key"},
		{"host key unknown", "source unknownhost ", doctor.Error, "host key is not known"},
		{"host key changed", "source changed ", doctor.Error, "host key CHANGED"},
		{"unreachable", "source down ", doctor.Error, "not reachable"},
		{"root mountable", dst.Name + "/mounted ", doctor.Error, "exists and can be mounted"},
		{"pool missing", "zrtnosuchpool/x ", doctor.Error, "the pool zrtnosuchpool does not exist"},
	} {
		t.Run(tt.name, func(t *testing.T) { find(t, tt.subject, tt.sev, tt.msg) })
	}
	// The probe's command never ran: sshd forced serve, which logged it.
	if b, _ := os.ReadFile(serveLog); !strings.Contains(string(b), strings.Join(doctor.ProbeCommand, " ")) {
		t.Errorf("serve's log does not show the probe as the command asked for:\n%s", b)
	}
	if r := zrep(t, "doctor", "--config", config, "--source", "ok"); r.code != 0 || !allWell(r.stdout) {
		t.Errorf("doctor --source ok: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	testenv.Run(t, "zfs", "set", "mountpoint=none", dst.Name+"/mounted")
	if r := zrep(t, "doctor", "--config", config, "--source", "mounted"); r.code != 0 || !strings.Contains(r.stdout, "exists with mountpoint=none") {
		t.Errorf("doctor --source mounted after mountpoint=none: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDoctorSource runs doctor --policy on a source with a real pool and
// the authorized_keys line serve is forced by.
func TestDoctorSource(t *testing.T) {
	src := testenv.NewPool(t, "dsrc", 256)
	dir := t.TempDir()
	testenv.Run(t, "zfs", "create", src.Name+"/a")
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, fmt.Sprintf("identities:\n  b1:\n    datasets: {%q: true}\n", src.Name+"/a<"))
	_, pub := testenv.NewClientKey(t, dir)
	_, plain := testenv.NewClientKey(t, dir)
	ak := filepath.Join(dir, "authorized_keys")
	writeFile(t, ak, fmt.Sprintf("%s someone\nrestrict,from=\"127.0.0.1\",command=\"%s serve --policy %s --identity b1\" %s zrep\n", plain, binary, policy, pub))
	r := zrep(t, "doctor", "--policy", policy, "--authorized-keys", ak)
	if r.code != 0 || !allWell(r.stdout) ||
		!strings.Contains(r.stdout, "identity b1: "+src.Name+"/a exist") || !strings.Contains(r.stdout, "key zrep is forced into serve as identity b1") {
		t.Errorf("doctor on a good source: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A root the policy allows that zfs does not have.
	writeFile(t, policy, fmt.Sprintf("identities:\n  b1:\n    datasets: {%q: true, %q: true}\n", src.Name+"/a<", src.Name+"/typo<"))
	r = zrep(t, "doctor", "--policy", policy, "--authorized-keys", ak)
	if r.code != 1 || !strings.Contains(r.stdout, "ERROR    policy root "+src.Name+"/typo (identity b1, "+policy+":3): the policy allows it, but no such dataset exists") {
		t.Errorf("doctor with a missing root: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// allWell reports whether doctor's report has no error and no warning but
// zfs-fuse's ("zfs features"), which it has wherever the tests run on it.
func allWell(stdout string) bool {
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "ERROR") || strings.HasPrefix(line, "WARNING") && !strings.HasPrefix(line, "WARNING  zfs features: zfs-fuse") {
			return false
		}
	}
	return strings.Contains(stdout, "doctor: all is well") || strings.Contains(stdout, "doctor: no errors, 1 warning(s)")
}
