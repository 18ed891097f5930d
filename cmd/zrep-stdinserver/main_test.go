package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zrep/zrep/internal/golden"
	"github.com/zrep/zrep/server"
)

// runCapture runs the command line and returns its stdout and exit status.
func runCapture(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	code := exitOK
	if err != nil {
		code = exitUsage
		var ee *exitError
		var silent silentExit
		switch {
		case asExit(err, &ee):
			code = ee.code
		case asSilent(err, &silent):
			code = int(silent)
		}
	}
	return out.String(), code
}

func asExit(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	if ok {
		*target = e
	}
	return ok
}

func asSilent(err error, target *silentExit) bool {
	s, ok := err.(silentExit)
	if ok {
		*target = s
	}
	return ok
}

// The help of every subcommand is part of the interface: it is pinned by
// golden files (go test -update rewrites them after an intended change).
func TestHelpGolden(t *testing.T) {
	for _, cmd := range [][]string{{}, {"serve"}, {"sshd"}, {"pull"}, {"push"}, {"ls"}, {"policy", "check"}, {"version"}, {"status"}, {"doctor"}} {
		name := strings.Join(append([]string{"help"}, cmd...), "-") + ".golden"
		t.Run(name, func(t *testing.T) {
			out, code := runCapture(t, append(cmd, "--help")...)
			if code != exitOK {
				t.Fatalf("--help exited %d", code)
			}
			golden.Assert(t, name, []byte(out))
		})
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(policyFile, []byte("identities:\n  a:\n    datasets:\n      \"tank<\": true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "pull.yaml")
	if err := os.WriteFile(config, []byte("sources:\n  a: {ssh: h, root: bk/a}\n  r: {ssh: h, root: bk/r, raw: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badConfig, []byte("sources:\n  a: {ssh: h, root: bk/a, rooot: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"pull", "--bogus"},
		{"pull", "--config", badConfig},                          // unknown key
		{"pull", "--config", filepath.Join(t.TempDir(), "none")}, // missing file
		{"pull", "--config", config, "--source", "nosuch"},       // unknown source
		{"pull", "--config", config, "--root", "bk/x"},           // single-source flag
		{"pull", "--config", config, "--ssh", "h"},
		{"pull", "--config", config, "--jobs", "-1"},
		{"pull", "--root", "bk/x", "--ssh", "h", "--jobs", "2"}, // config-only flag
		{"pull", "--root", "bk/x", "--ssh", "h", "--source", "a"},
		{"pull", "--root", "bk/x", "--ssh", "h", "--state-dir", "/tmp"},
		{"doctor", "--source", "a", "--policy", policyFile},
		{"doctor", "--config", config, "--source", "nosuch"},
		{"doctor", "--policy", policyFile, "--user", "zrep-no-such-user"},
		{"status"}, // no --config
		{"status", "--config", badConfig},
		{"status", "--config", config, "--warn-lag", "soon"},
		{"status", "--config", config, "--source", "nosuch"},
		{"nosuchcommand"},
		{"pull", "--local", "--policy", policyFile, "--identity", "a"},                 // no --root
		{"pull", "--root", "-x", "--local", "--policy", policyFile, "--identity", "a"}, // bad --root
		{"pull", "--root", "bk/x"},                                                                        // no source
		{"pull", "--root", "bk/x", "--ssh", "-oProxyCommand=x"},                                           // option-like destination
		{"pull", "--root", "bk/x", "--ssh", "h", "--local"},                                               // both
		{"ls", "--ssh", "h", "--ssh-option", "NoEquals"},                                                  // malformed option
		{"ls", "--local", "--policy", policyFile, "--identity", "nobody"},                                 // unknown identity
		{"policy", "check", "--policy", filepath.Join(t.TempDir(), "missing"), "--identity", "a", "tank"}, // missing policy
		{"serve", "--policy", policyFile, "--identity", "nobody"},
		{"ls", "--log-level", "chatty", "--local", "--policy", policyFile, "--identity", "a"},
	} {
		if _, code := runCapture(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestPolicyCheckExitStatus(t *testing.T) {
	policyFile := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(policyFile, []byte("identities:\n  a:\n    datasets:\n      \"tank/data<\": true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCapture(t, "policy", "check", "--policy", policyFile, "--identity", "a", "tank/data/x")
	if code != exitOK || out != "tank/data/x\tallowed\tallowed by \"tank/data<\": true (line 4)\n" {
		t.Errorf("allowed: exit %d, %q", code, out)
	}
	out, code = runCapture(t, "policy", "check", "--policy", policyFile, "--identity", "a", "tank/data/x", "tank/database")
	if code != exitFailure || !strings.Contains(out, "tank/database\tdenied\tdenied by default: no rule matches") {
		t.Errorf("one denied: exit %d, %q", code, out)
	}
	// The identity's options, after the rule.
	if err := os.WriteFile(policyFile, []byte("identities:\n  a:\n    raw_only: true\n    cursor_bookmarks: true\n    datasets:\n      \"tank/data<\": true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCapture(t, "policy", "check", "--policy", policyFile, "--identity", "a", "tank/data/x", "tank/other")
	if want := "tank/data/x\tallowed\tallowed by \"tank/data<\": true (line 6); raw only, if encrypted (raw_only); keeps a cursor bookmark of what the puller confirms (cursor_bookmarks)\n" +
		"tank/other\tdenied\tdenied by default: no rule matches\n"; code != exitFailure || out != want {
		t.Errorf("options: exit %d, %q; want %q", code, out, want)
	}
	// The bare "<" (all datasets), as in zrepl, and what check says of it.
	if err := os.WriteFile(policyFile, []byte("identities:\n  a:\n    datasets:\n      \"<\": true\n      \"tank/private<\": false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runCapture(t, "policy", "check", "--policy", policyFile, "--identity", "a", "zroot/x")
	if want := "zroot/x\tallowed\tallowed by \"<\": true (line 4) (the bare \"<\" matches every dataset of every pool)\n"; code != exitOK || out != want {
		t.Errorf("bare <: exit %d, %q; want %q", code, out, want)
	}
}

// A forced command's words parse exactly as serve's own flags.
func TestParseServeArgs(t *testing.T) {
	tests := []struct {
		args []string
		want server.ServeConfig
		err  string
	}{
		{[]string{"--policy", "/etc/zrep/p.yaml", "--identity", "b1"}, server.ServeConfig{PolicyFile: "/etc/zrep/p.yaml", Identity: "b1", ZFSBin: "zfs", LockDir: "/run/zrep"}, ""},
		{[]string{"--policy=/p", "--identity=b", "--zfs-bin", "/sbin/zfs", "--log-level", "debug", "--log-file", "/l"}, server.ServeConfig{PolicyFile: "/p", Identity: "b", ZFSBin: "/sbin/zfs", LockDir: "/run/zrep"}, ""},
		{[]string{"--policy=/p", "--identity=l", "--lock-dir", "/tmp/l"}, server.ServeConfig{PolicyFile: "/p", Identity: "l", ZFSBin: "zfs", LockDir: "/tmp/l"}, ""},
		{[]string{"--policy", "/p", "--identity", "b", "extra"}, server.ServeConfig{}, "takes no arguments"},
		{[]string{"--policy", "/p", "--nope"}, server.ServeConfig{}, "unknown flag"},
	}
	for _, tt := range tests {
		got, err := parseServeArgs(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

// Bad limit flags stop sshd before it listens, as usage errors.
func TestSSHDLimitFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"sshd", "--listen", "127.0.0.1:0", "--host-key", filepath.Join(dir, "host_key"), "--generate-host-key", "--authorized-keys", ak}
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--max-startups", "10:30"}, "max-startups"},
		{[]string{"--max-startups", "100:30:10"}, "max-startups"},
		{[]string{"--max-sessions", "0"}, "MaxSessions"},
		{[]string{"--login-grace-time", "-1s"}, "LoginGraceTime"},
	} {
		root := newRootCommand()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append(base, tt.flags...))
		err := root.Execute()
		var ee *exitError
		usage := err != nil && (!asExit(err, &ee) || ee.code == exitUsage)
		if !usage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v; want a usage error naming %s", tt.flags, err, tt.want)
		}
	}
}
