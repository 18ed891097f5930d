package doctor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"
	gossh "golang.org/x/crypto/ssh"

	"github.com/zrep/zrep/server"
)

// fakeZFS has the datasets listed; "broken" fails.
type fakeZFS map[string]map[string]string

func (f fakeZFS) Exists(_ context.Context, name string) (bool, error) {
	if name == "broken" {
		return false, errors.New("zfs: the daemon is not running")
	}
	_, ok := f[name]
	return ok, nil
}

func pubKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

// parseServe reads --policy and --identity, as serve's flags (a stand-in
// for the command's parser).
func parseServe(args []string) (server.ServeConfig, error) {
	var cfg server.ServeConfig
	for i := 0; i < len(args); i++ {
		if i+1 >= len(args) {
			return cfg, fmt.Errorf("flag needs an argument: %s", args[i])
		}
		switch args[i] {
		case "--policy":
			cfg.PolicyFile = args[i+1]
		case "--identity":
			cfg.Identity = args[i+1]
		default:
			return cfg, fmt.Errorf("unknown flag: %s", args[i])
		}
		i++
	}
	return cfg, nil
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// want checks that the findings hold one of severity sev whose message
// contains msg, and, for errors and warnings, a fix.
func want(t *testing.T, fs []Finding, sev Severity, msg string) {
	t.Helper()
	for _, f := range fs {
		if f.Severity == sev && strings.Contains(f.Message, msg) {
			if sev != OK && f.Fix == "" {
				t.Errorf("%s finding without a fix: %+v", sev, f)
			}
			return
		}
	}
	t.Errorf("no %s finding with %q in:\n%s", sev, msg, dump(fs))
}

func dump(fs []Finding) string {
	var b strings.Builder
	_ = Render(&b, &Report{Findings: fs})
	return b.String()
}

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	z := fakeZFS{"tank": nil, "tank/data": nil, "tank/vm": nil}
	for _, tt := range []struct {
		name, policy string
		sev          Severity
		msg          string
	}{
		{"all is well", "identities:\n  b1:\n    datasets:\n      \"tank/data<\": true\n      \"tank/vm\": true\n", OK, "identity b1: tank/data, tank/vm exist"},
		{"does not parse", "identities:\n  b1:\n    dataset: {}\n", Error, `does not parse: ` + dir + `/policy.yaml:3: identity "b1": unknown key "dataset"`},
		{"root missing", "identities:\n  b1:\n    datasets:\n      \"tank/dat<\": true\n", Error, "the policy allows it, but no such dataset exists on this host"},
		{"zfs fails", "identities:\n  b1:\n    datasets:\n      \"broken<\": true\n", Error, "cannot tell whether it exists: zfs: the daemon is not running"},
		{"allows nothing", "identities:\n  b1:\n    datasets:\n      \"tank<\": false\n", Warning, "identity b1 may see nothing"},
		{"every pool", "identities:\n  b1:\n    datasets:\n      \"<\": true\n", OK, `may see every dataset of every pool (the bare "<")`},
		{"sink", "identities:\n  l1:\n    sink: {root: tank/pushed}\n", OK, "identity l1 may push under tank/pushed (its pool exists)"},
		{"sink pool missing", "identities:\n  l1:\n    sink: {root: nopool/pushed}\n", Error, "the pool nopool does not exist on this host: every push to it fails"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, dir, "policy.yaml", tt.policy)
			fs := PolicyCheck(file, z)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			if tt.sev == OK && hasError(fs) {
				t.Errorf("errors where all is well:\n%s", dump(fs))
			}
		})
	}
	// The missing root names the rule's line.
	file := write(t, dir, "policy.yaml", "identities:\n  b1:\n    datasets:\n      \"tank/data<\": true\n      \"tank/dat<\": true\n")
	fs := PolicyCheck(file, z)(context.Background())
	if len(fs) != 1 || fs[0].Subject != "tank/dat (identity b1, "+file+":5)" {
		t.Errorf("findings:\n%s", dump(fs))
	}
}

func TestAuthorizedKeysCheck(t *testing.T) {
	dir := t.TempDir()
	policyFile := write(t, dir, "policy.yaml", "identities:\n  b1:\n    datasets:\n      \"tank<\": true\n")
	otherPolicy := write(t, dir, "other.yaml", "identities:\n  b1:\n    datasets:\n      \"tank<\": true\n")
	badPolicy := write(t, dir, "bad.yaml", "identities: {}\n")
	bin := write(t, dir, "zrep-stdinserver", "#!/bin/sh\n")
	notExec := filepath.Join(dir, "noexec", "zrep-stdinserver")
	_ = os.MkdirAll(filepath.Dir(notExec), 0o755)
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	key := pubKey(t)
	serve := func(args string) string { return fmt.Sprintf(`command="%s serve %s"`, bin, args) }
	good := fmt.Sprintf(`restrict,from="192.0.2.10",%s %s backup1`, serve("--policy "+policyFile+" --identity b1"), key)
	for _, tt := range []struct {
		name, content string
		sev           Severity
		msg           string
	}{
		{"all is well", "# keys\n" + pubKey(t) + " someone\n" + good + "\n", OK, "key backup1 is forced into serve as identity b1 of " + policyFile},
		{"no zrep line", pubKey(t) + " someone\n", Error, "no line forces zrep-stdinserver serve"},
		{"invalid line", `restrict,bogus-option,` + serve("--policy "+policyFile+" --identity b1") + " " + key + "\n", Error, `the zrep line is invalid, sshd skips it: bad key options: unknown key option "bogus-option"`},
		{"no restrict", fmt.Sprintf(`from="192.0.2.10",%s %s`, serve("--policy "+policyFile+" --identity b1"), key), Error, "the zrep key lacks restrict"},
		{"no from", fmt.Sprintf(`restrict,%s %s`, serve("--policy "+policyFile+" --identity b1"), key), Warning, `has no from="..."`},
		{"not a simple command", fmt.Sprintf(`restrict,from="h",command="%s serve --policy %s --identity b1; id" %s`, bin, policyFile, key), Error, "the forced command is not a simple command"},
		{"not serve", fmt.Sprintf(`restrict,from="h",command="%s sshd" %s`, bin, key), Error, "does not run zrep-stdinserver serve"},
		{"relative path", fmt.Sprintf(`restrict,from="h",command="zrep-stdinserver serve --policy %s --identity b1" %s`, policyFile, key), Warning, "through the PATH of sshd's session"},
		{"binary missing", fmt.Sprintf(`restrict,from="h",command="/nonexistent/zrep-stdinserver serve --policy %s --identity b1" %s`, policyFile, key), Error, "which does not exist"},
		{"binary not executable", fmt.Sprintf(`restrict,from="h",command="%s serve --policy %s --identity b1" %s`, notExec, policyFile, key), Error, "which is not an executable file"},
		{"bad serve flags", fmt.Sprintf(`restrict,from="h",%s %s`, serve("--policy "+policyFile+" --identty b1"), key), Error, "serve's flags in the forced command are wrong: unknown flag: --identty"},
		{"no identity", fmt.Sprintf(`restrict,from="h",%s %s`, serve("--policy "+policyFile), key), Error, "lacks --policy FILE or --identity NAME"},
		{"policy unusable", fmt.Sprintf(`restrict,from="h",%s %s`, serve("--policy "+badPolicy+" --identity b1"), key), Error, "the forced command's policy " + badPolicy + " is unusable"},
		{"unknown identity", fmt.Sprintf(`restrict,from="h",%s %s`, serve("--policy "+policyFile+" --identity b2"), key), Error, `identity "b2" is not in the policy ` + policyFile + " (it has b1)"},
		{"other policy", fmt.Sprintf(`restrict,from="h",%s %s`, serve("--policy "+otherPolicy+" --identity b1"), key), Warning, "uses the policy " + otherPolicy + ", not " + policyFile},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, dir, "authorized_keys", tt.content+"\n")
			fs := AuthorizedKeysCheck(file, policyFile, parseServe)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			if tt.sev == OK && (hasError(fs) || len(fs) != 1) {
				t.Errorf("more than the OK finding where all is well:\n%s", dump(fs))
			}
			if tt.sev == Warning && hasError(fs) {
				t.Errorf("errors besides the warning:\n%s", dump(fs))
			}
		})
	}
	t.Run("file missing", func(t *testing.T) {
		fs := AuthorizedKeysCheck(filepath.Join(dir, "nope"), policyFile, parseServe)(context.Background())
		want(t, fs, Error, "cannot be read")
	})
	t.Run("line numbers", func(t *testing.T) {
		file := write(t, dir, "authorized_keys", "# zrep\n\n"+good+"\n")
		fs := AuthorizedKeysCheck(file, policyFile, parseServe)(context.Background())
		if len(fs) != 1 || fs[0].Subject != file+":3" {
			t.Errorf("findings:\n%s", dump(fs))
		}
	})
}
