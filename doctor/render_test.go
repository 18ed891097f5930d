package doctor

import (
	"bytes"
	"testing"

	"github.com/zrep/zrep/internal/golden"
)

// The human output is pinned by golden files (go test -update rewrites
// them after an intended change).
func TestRenderGolden(t *testing.T) {
	reports := map[string]*Report{
		"render-errors.golden": {Findings: []Finding{
			{Check: "config", Subject: "/etc/zrep/pull.yaml", Severity: OK, Message: "parses: 2 source(s)"},
			{Check: "ssh", Subject: "source web1 (root@web1)", Severity: Error, Message: "the source's host key is not known: ssh root@web1: host key verification failed (exit status 255): Host key verification failed.",
				Fix: "compare the fingerprint of ssh-keyscan web1 with the one the source shows, then add it to root's known_hosts"},
			{Check: "target", Subject: "backup/web1 (source web1)", Severity: Warning, Message: "exists with canmount=off: it is not mounted, but the datasets received below it inherit mountpoint=/backup/web1",
				Fix: "zfs set mountpoint=none backup/web1"},
		}, Errors: 1, Warnings: 1},
		"render-warnings.golden": {Findings: []Finding{
			{Check: "authorized_keys", Subject: "/root/.ssh/authorized_keys:3", Severity: Warning, Message: `the zrep key has no from="...": it works from any address`, Fix: `add from="BACKUP_HOST_ADDRESS"`},
		}, Warnings: 1},
		"render-ok.golden": {Findings: []Finding{
			{Check: "policy", Subject: "/etc/zrep/policy.yaml", Severity: OK, Message: "identity b1: tank/data exist"},
		}},
	}
	for name, r := range reports {
		t.Run(name, func(t *testing.T) {
			assertRendered(t, name, r)
		})
	}
}

// assertRendered compares the rendered report with testdata/name.
func assertRendered(t *testing.T, name string, r *Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, name, buf.Bytes())
}

// TestRenderIsPrintable: a finding can quote the other end (the error a
// source answered with); the report has it on its line, without control
// characters.
func TestRenderIsPrintable(t *testing.T) {
	r := &Report{Findings: []Finding{{Check: "session", Subject: "source web1\x1b[2J", Severity: Error,
		Message: "listing failed: \x1b]0;owned\x07\r\n\u009b\x9b", Fix: "ask\x1b[1A"}}, Errors: 1}
	var buf bytes.Buffer
	if err := Render(&buf, r); err != nil {
		t.Fatal(err)
	}
	want := "ERROR    session source web1?[2J: listing failed: ?]0;owned?? ?\uFFFD\n" +
		"         fix: ask?[1A\n" +
		"doctor: 1 error(s), 0 warning(s): fix the errors above\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
