package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/nvlist"
	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/rpc"
)

// The features of this file are OpenZFS's: resumable receives, encryption
// and raw sends, bookmarks. Each test asserts OpenZFS's behaviour in the
// OpenZFS lab, and zfs-fuse's own where it has one (it skips only what
// zfs-fuse cannot do at all).

// throttle is a zfs wrapper body that sends slowly (256 KiB every 50 ms),
// so that a test can cut a transfer in the middle.
const throttle = `if [ "$1" = send ] && [ "$2" != -n ]; then ZFS "$@" | python3 -c '
import sys, time
i, o = sys.stdin.buffer, sys.stdout.buffer
while True:
    b = i.read(262144)
    if not b:
        break
    o.write(b)
    o.flush()
    time.sleep(0.05)
'; exit; fi`

// resumeToken reads a dataset's receive_resume_token ("" if none).
func resumeToken(t *testing.T, dataset string) string {
	t.Helper()
	out, err := testenv.Output("zfs", "get", "-H", "-o", "value", "receive_resume_token", dataset)
	if err != nil {
		return ""
	}
	if v := strings.TrimSpace(out); v != "-" {
		return v
	}
	return ""
}

// TestResume cuts transfers (the source's zfs send dying, the puller
// killed) and pulls again: on OpenZFS the next run resumes from the
// target's token, with less than the whole stream; on zfs-fuse, which has
// no resumable receive, it starts the step again. Either way every
// snapshot arrives with its guid.
func TestResume(t *testing.T) {
	w := newWorld(t)
	s := w.src.Name
	_, openZFS := testenv.OpenZFS(t)
	big := s + "/data/big" // allowed by the world's policy
	testenv.Run(t, "zfs", "create", big)
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "big", "data"), 12<<20)
	testenv.Run(t, "zfs", "snapshot", big+"@b1")

	cut := wrapZFS(t, w.dir, "cut", `if [ "$1" = send ] && [ "$2" != -n ]; then ZFS "$@" | head -c 4000000; exit 1; fi`)
	slow := wrapZFS(t, w.dir, "slow", throttle)
	key, pub := testenv.NewClientKey(t, w.dir)
	log := filepath.Join(w.dir, "serve-resume.log")
	lines := fmt.Sprintf("restrict,command=%q %s cut\n", w.serveCommand(log)+" --zfs-bin "+cut, pub)
	slowKey, slowPub := testenv.NewClientKey(t, w.dir)
	lines += fmt.Sprintf("restrict,command=%q %s slow\n", w.serveCommand(log)+" --zfs-bin "+slow, slowPub)
	cleanKey, cleanPub := testenv.NewClientKey(t, w.dir)
	lines += fmt.Sprintf("restrict,command=%q %s clean\n", w.serveCommand(log), cleanPub)
	sshd := testenv.StartSSHD(t, lines)
	flags := func(k string) []string { return sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, k, sshd.SSHOptions()) }
	target := w.target(big)

	// 1. The source's zfs send dies after 4 MB.
	r := zrep(t, args("pull", flags(key), "--root", w.root(), "--dataset", big)...)
	if r.code != 1 || !strings.Contains(r.stdout, "stream cut after") {
		t.Fatalf("cut pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if tok := resumeToken(t, target); (tok != "") != openZFS {
		t.Fatalf("after the cut: resume token %q on %s (OpenZFS: %v)", tok, target, openZFS)
	}
	r = zrep(t, args("pull", flags(cleanKey), "--root", w.root(), "--dataset", big, "--json")...)
	if r.code != 0 {
		t.Fatalf("pull after the cut: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkResumed(t, r.stdout, openZFS, 12<<20)
	sameSnapshots(t, big, target)

	// 2. In the middle of a slow incremental, the puller is killed, the
	// source's serve is killed, or the connection is lost (the puller's
	// ssh is killed).
	cuts := []struct {
		what string
		kill func(t *testing.T, pull *exec.Cmd)
	}{
		{"the puller was killed", func(t *testing.T, pull *exec.Cmd) { _ = pull.Process.Kill() }},
		{"the source's serve was killed", func(t *testing.T, _ *exec.Cmd) { killAll(t, "-f", "serve .*--zfs-bin "+slow) }},
		{"the connection was lost", func(t *testing.T, pull *exec.Cmd) { killAll(t, "-P", fmt.Sprint(pull.Process.Pid), "-x", "ssh") }},
	}
	for i, c := range cuts {
		testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "big", fmt.Sprintf("data2-%d", i)), 24<<20)
		testenv.Run(t, "zfs", "snapshot", fmt.Sprintf("%s@b2-%d", big, i))
		cutMidway(t, target, args("pull", flags(slowKey), "--root", w.root(), "--dataset", big, "--json"), c.kill)
		if tok := resumeToken(t, target); (tok != "") != openZFS {
			t.Fatalf("after %s: resume token %q (OpenZFS: %v)", c.what, tok, openZFS)
		}
		r = zrep(t, args("pull", flags(cleanKey), "--root", w.root(), "--dataset", big, "--json")...)
		if r.code != 0 {
			t.Fatalf("pull after %s: exit %d\n%s\n%s", c.what, r.code, r.stdout, r.stderr)
		}
		checkResumed(t, r.stdout, openZFS, 24<<20)
		sameSnapshots(t, big, target)
		if tok := resumeToken(t, target); tok != "" {
			t.Errorf("after %s, a token stayed once the transfer completed: %s", c.what, tok)
		}
	}

	// 3. A token that can no longer be used: its snapshot is destroyed on
	// the source. It is discarded and the step planned afresh, once.
	if !openZFS {
		return
	}
	testenv.Run(t, "zfs", "snapshot", big+"@b3")
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "big", "data3"), 12<<20)
	testenv.Run(t, "zfs", "snapshot", big+"@b4")
	cutMidway(t, target, args("pull", flags(slowKey), "--root", w.root(), "--dataset", big, "--json"), func(t *testing.T, pull *exec.Cmd) { _ = pull.Process.Kill() })
	if resumeToken(t, target) == "" {
		t.Fatal("no token after the kill")
	}
	testenv.Run(t, "zfs", "destroy", big+"@b4")
	testenv.Run(t, "zfs", "snapshot", big+"@b5")
	r = zrep(t, args("pull", flags(cleanKey), "--root", w.root(), "--dataset", big)...)
	if r.code != 0 || !strings.Contains(r.stdout, "discard a resume token that cannot be used") {
		t.Fatalf("pull with a stale token: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, big, target)
}

// cutMidway starts a pull --json into target and, once it has received 3
// MiB (enough for zfs to have saved state to resume from), cuts it with
// kill; then it waits for the pull to end, which it must do with a
// failure, and for the zfs receive into target to end: killed, the pull
// leaves it behind, and zfs writes the resume token only as it exits.
func cutMidway(t *testing.T, target string, argv []string, kill func(t *testing.T, pull *exec.Cmd)) {
	t.Helper()
	cmd, out := startZrep(t, argv...)
	deadline := time.Now().Add(5 * time.Minute)
	for !receivedAtLeast(out.String(), 3<<20) {
		if time.Now().After(deadline) {
			t.Fatalf("the pull did not get 3 MiB far:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	kill(t, cmd)
	if err := cmd.Wait(); err == nil {
		t.Fatalf("the cut pull succeeded:\n%s", out.String())
	}
	noLeftovers(t, target)
}

// killAll sends SIGKILL to the processes pkill selects with args, and
// fails t if there is none.
func killAll(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("pkill", append([]string{"-KILL"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("pkill %s: %v %s", strings.Join(args, " "), err, out)
	}
}

// receivedAtLeast reports whether pull --json output has a progress event
// of at least n bytes.
func receivedAtLeast(out string, n int64) bool {
	for _, line := range strings.Split(out, "\n") {
		var ev struct {
			Type  string `json:"type"`
			Bytes int64  `json:"bytes"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Type == "progress" && ev.Bytes >= n {
			return true
		}
	}
	return false
}

// checkResumed checks pull --json output: on OpenZFS one step resumed with
// bytes already received, and the bytes sent are less than whole; else no
// step resumed.
func checkResumed(t *testing.T, out string, openZFS bool, whole int64) {
	t.Helper()
	resumed := false
	var sent int64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Type string `json:"type"`
			Step *struct {
				Resumed      bool  `json:"resumed"`
				ResumedBytes int64 `json:"resumed_bytes"`
			} `json:"step"`
			Bytes int64 `json:"bytes"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev.Type == "step_start" && ev.Step != nil && ev.Step.Resumed {
			resumed = true
			if ev.Step.ResumedBytes <= 0 {
				t.Errorf("a resumed step with %d bytes already received", ev.Step.ResumedBytes)
			}
		}
		if ev.Type == "step_done" {
			sent += ev.Bytes
		}
	}
	if resumed != openZFS {
		t.Errorf("resumed: %v, want %v\n%s", resumed, openZFS, out)
	}
	if openZFS && sent >= whole {
		t.Errorf("the resumed run sent %d bytes, not less than the whole %d", sent, whole)
	}
}

// TestForgedResumeTokens speaks the protocol to the real serve with tokens
// forged from a real one: refused, and zfs send never runs.
func TestForgedResumeTokens(t *testing.T) {
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		t.Skip("zfs-fuse has no resume tokens (zfs send -t): nothing to forge")
	}
	w := newWorld(t)
	s := w.src.Name
	zfsLog := filepath.Join(w.dir, "source-zfs.log")
	logging := wrapZFS(t, w.dir, "logging", `echo "$*" >> `+zfsLog)
	key, pub := testenv.NewClientKey(t, w.dir)
	serveLog := filepath.Join(w.dir, "serve-forged.log")
	sshd := testenv.StartSSHD(t, fmt.Sprintf("restrict,command=%q %s forged\n", w.serveCommand(serveLog)+" --zfs-bin "+logging, pub))
	e := endpoint{name: "forged", flags: sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions())}

	real := func(toname string) *resumetoken.Token {
		return &resumetoken.Token{ToName: toname, ToGUID: testenv.GUID(t, toname), Object: 1, Offset: 0, Bytes: 0}
	}
	// withPair is a real token of data@s1 with one more field.
	withPair := func(p nvlist.Pair) string {
		l, err := resumetoken.Inspect(real(s + "/data@s1").Encode())
		if err != nil {
			t.Fatal(err)
		}
		l.Pairs = append(l.Pairs, p)
		return resumetoken.EncodeList(l)
	}
	denied := testenv.GUID(t, s+"/data/private@p1")
	tests := []struct {
		name, dataset, token string
		code                 rpc.Code
	}{
		{"allowed toname, a denied snapshot's guid", s + "/data", func() string {
			tok := real(s + "/data@s1")
			tok.ToGUID = denied
			return tok.Encode()
		}(), rpc.CodeNotFound},
		{"a denied dataset's toname", s + "/data/private", real(s + "/data/private@p1").Encode(), rpc.CodeNotFound},
		{"a fromguid of another dataset", s + "/data", func() string {
			tok := real(s + "/data@s2")
			tok.FromGUID = testenv.GUID(t, s+"/vm@v1")
			return tok.Encode()
		}(), rpc.CodeNotFound},
		{"a bad checksum", s + "/data", strings.Replace(real(s+"/data@s1").Encode(), "1-", "1-f", 1), rpc.CodeInvalidArgument},
		{"truncated", s + "/data", func() string { t := real(s + "/data@s1").Encode(); return t[:len(t)-8] }(), rpc.CodeInvalidArgument},
		{"oversized", s + "/data", real(s+"/data@s1").Encode() + strings.Repeat("0", resumetoken.MaxLen), rpc.CodeInvalidArgument},
		{"savedok", s + "/data", withPair(nvlist.Pair{Name: "savedok", Type: nvlist.Boolean}), rpc.CodeInvalidArgument},
		{"an unknown field", s + "/data", withPair(nvlist.Pair{Name: "extra", Type: nvlist.Uint64, Value: uint64(1)}), rpc.CodeInvalidArgument},
	}
	src := dialSource(t, context.Background(), e)
	_ = os.Remove(zfsLog)
	for _, tt := range tests {
		_, body, err := src.Send(context.Background(), api.SendRequest{Dataset: tt.dataset, ResumeToken: tt.token})
		if body != nil {
			_ = body.Close()
		}
		if rpc.CodeOf(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
	logged, _ := os.ReadFile(zfsLog)
	if bytes.Contains(logged, []byte("send")) {
		t.Errorf("zfs send ran:\n%s", logged)
	}
}

// TestRawPull pulls an encrypted dataset raw: the target's key is not
// loaded, its data is intact once it is; raw_only refuses a plain request.
func TestRawPull(t *testing.T) {
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		t.Skip("zfs-fuse has no encryption")
	}
	w := newWorld(t)
	s := w.src.Name
	keyFile := filepath.Join(w.dir, "passphrase")
	if err := os.WriteFile(keyFile, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enc := s + "/data/enc"
	testenv.Run(t, "zfs", "create", "-o", "encryption=on", "-o", "keyformat=passphrase", "-o", "keylocation=file://"+keyFile, enc)
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "enc", "secret"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", enc+"@e1")
	want := testenv.Run(t, "sha256sum", filepath.Join(w.src.Mountpoint, "data", "enc", "secret"))

	// A raw_only identity refuses the plain request, then sends raw.
	rawOnly := strings.Replace(mustRead(t, w.policy), "    datasets:", "    raw_only: true\n    datasets:", 1)
	if err := os.WriteFile(w.policy, []byte(rawOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	e := w.openSSH(t)
	r := zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", enc)...)
	if r.code != 1 || !strings.Contains(r.stdout, "only raw") || !strings.Contains(r.stdout, "pull --raw") {
		t.Fatalf("plain pull under raw_only: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// A resume token without rawok is a plain request too, and refused;
	// the same token with rawok is not.
	src := dialSource(t, context.Background(), e)
	for _, rawOK := range []bool{false, true} {
		tok := resumetoken.Token{ToName: enc + "@e1", ToGUID: testenv.GUID(t, enc+"@e1"), Object: 1, RawOK: rawOK}
		_, body, err := src.Send(context.Background(), api.SendRequest{Dataset: enc, ResumeToken: tok.Encode()})
		if body != nil {
			_ = body.Close()
		}
		if refused := rpc.CodeOf(err) == rpc.CodePermissionDenied && strings.Contains(err.Error(), "raw_only"); refused == rawOK {
			t.Errorf("a token with rawok %v under raw_only: %v", rawOK, err)
		}
	}
	r = zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", enc, "--raw")...)
	if r.code != 0 {
		t.Fatalf("raw pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	target := w.target(enc)
	sameSnapshots(t, enc, target)
	if ks := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "keystatus", target)); ks != "unavailable" {
		t.Errorf("the target's keystatus is %q, want unavailable (the backup host never had the key)", ks)
	}
	// An incremental stays raw without --raw: the source's raw_only would
	// refuse a plain request.
	testenv.Run(t, "zfs", "snapshot", enc+"@e2")
	if r = zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", enc)...); r.code != 0 {
		t.Fatalf("raw incremental: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, enc, target)

	// A child that inherits its key on the source arrives raw as its own
	// encryption root; the operator makes it inherit its raw parent's key
	// (zfs change-key -i, so that one load-key unlocks both). Its
	// incrementals stay raw: raw_only would refuse a plain request.
	child := enc + "/child"
	testenv.Run(t, "zfs", "create", child)
	testenv.Run(t, "zfs", "snapshot", child+"@c1")
	if r = zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", child, "--raw")...); r.code != 0 {
		t.Fatalf("raw pull of the child: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	childTarget := w.target(child)
	testenv.Run(t, "zfs", "load-key", "-L", "file://"+keyFile, target)
	testenv.Run(t, "zfs", "load-key", "-L", "file://"+keyFile, childTarget)
	testenv.Run(t, "zfs", "change-key", "-i", childTarget)
	testenv.Run(t, "zfs", "unload-key", target)
	if root := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "encryptionroot", childTarget)); root != target {
		t.Fatalf("after change-key -i, the child's encryption root is %q, want %s", root, target)
	}
	testenv.Run(t, "zfs", "snapshot", child+"@c2")
	if r = zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", child)...); r.code != 0 {
		t.Fatalf("incremental of the child, whose key is its raw parent's: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, child, childTarget)

	// Pulled decrypted into an encrypted backup root, the target is
	// encrypted with the root's key; its incrementals stay decrypted (a
	// raw one could not be received onto it).
	if err := os.WriteFile(w.policy, []byte(strings.Replace(rawOnly, "    raw_only: true\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	encRoot := w.dst.Name + "/encbackup"
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", "-o", "encryption=on", "-o", "keyformat=passphrase", "-o", "keylocation=file://"+keyFile, encRoot)
	for _, snap := range []string{"", "e3"} {
		if snap != "" {
			testenv.Run(t, "zfs", "snapshot", enc+"@"+snap)
		}
		if r = zrep(t, args("pull", e.flags, "--root", encRoot, "--dataset", enc)...); r.code != 0 {
			t.Fatalf("decrypted pull into an encrypted root (%q): exit %d\n%s\n%s", snap, r.code, r.stdout, r.stderr)
		}
		sameSnapshots(t, enc, encRoot+"/"+enc)
	}
	if root := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "encryptionroot", encRoot+"/"+enc)); root != encRoot {
		t.Errorf("the decrypted copy's encryption root is %q, want the backup root %s", root, encRoot)
	}
	// The data is intact once the key is loaded.
	mnt := filepath.Join(w.dir, "check")
	testenv.Run(t, "zfs", "load-key", "-L", "file://"+keyFile, target)
	testenv.Run(t, "zfs", "clone", "-o", "mountpoint="+mnt, target+"@e1", w.dst.Name+"/check")
	if got := testenv.Run(t, "sha256sum", filepath.Join(mnt, "secret")); strings.Fields(got)[0] != strings.Fields(want)[0] {
		t.Errorf("the raw copy's data differs: %s vs %s", got, want)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBookmarksAndCursors: an incremental from a bookmark after the base
// snapshot was destroyed on the source; cursor bookmarks created and moved
// by the source, and nothing else there touched.
func TestBookmarksAndCursors(t *testing.T) {
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		t.Skip("zfs-fuse has no bookmarks")
	}
	w := newWorld(t)
	s := w.src.Name
	vm := s + "/vm"
	withCursors := strings.Replace(mustRead(t, w.policy), "    datasets:", "    cursor_bookmarks: true\n    datasets:", 1)
	if err := os.WriteFile(w.policy, []byte(withCursors), 0o644); err != nil {
		t.Fatal(err)
	}
	e := w.openSSH(t)
	pull := func() {
		t.Helper()
		if r := zrep(t, args("pull", e.flags, "--root", w.root(), "--dataset", vm)...); r.code != 0 {
			t.Fatalf("pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		// Every snapshot the source still has is on the target, same guid.
		have := testenv.Snapshots(t, w.target(vm))
		for name, guid := range testenv.Snapshots(t, vm) {
			if have[name] != guid {
				t.Fatalf("%s@%s: guid %d on the target, %d on the source", w.target(vm), name, have[name], guid)
			}
		}
	}
	cursor := vm + "#zrep_cursor_" + identity
	before := allOf(t, w.src.Name)
	pull()
	if g := testenv.GUID(t, cursor); g != testenv.GUID(t, vm+"@v1") {
		t.Fatalf("the cursor has guid %d, not @v1's", g)
	}
	onlyTheCursorChanged(t, before, allOf(t, w.src.Name), cursor)

	// The source moves on and prunes what the backup has: the cursor is the base.
	testenv.Run(t, "zfs", "snapshot", vm+"@v2")
	testenv.Run(t, "zfs", "destroy", vm+"@v1")
	testenv.Run(t, "zfs", "snapshot", vm+"@v3")
	before = allOf(t, w.src.Name)
	pull()
	onlyTheCursorChanged(t, before, allOf(t, w.src.Name), cursor)
	for _, snap := range []string{"v1", "v2", "v3"} {
		if _, ok := testenv.Snapshots(t, w.target(vm))[snap]; !ok {
			t.Errorf("the target lacks @%s", snap)
		}
	}
	if g := testenv.GUID(t, cursor); g != testenv.GUID(t, vm+"@v3") {
		t.Errorf("the cursor did not move to @v3")
	}

	// A plain bookmark works as a base too, after its snapshot is gone.
	// The snapshot tool's bookmark of the newest snapshot is not the
	// cursor: the pull still confirms, and the cursor is made there.
	testenv.Run(t, "zfs", "bookmark", vm+"@v3", vm+"#mine")
	testenv.Run(t, "zfs", "destroy", cursor)
	testenv.Run(t, "zfs", "snapshot", vm+"@v4")
	testenv.Run(t, "zfs", "bookmark", vm+"@v4", vm+"#daily")
	testenv.Run(t, "zfs", "destroy", vm+"@v3")
	before = allOf(t, w.src.Name)
	pull()
	if _, ok := testenv.Snapshots(t, w.target(vm))["v4"]; !ok {
		t.Errorf("the target lacks @v4")
	}
	if g := testenv.GUID(t, cursor); g != testenv.GUID(t, vm+"@v4") {
		t.Errorf("the cursor is not at @v4 (guid %d)", g)
	}
	onlyTheCursorChanged(t, before, allOf(t, w.src.Name), cursor)
}

// onlyTheCursorChanged fails t unless the listings (allOf) before and after
// a pull differ in the cursor bookmark alone: nothing else added, nothing
// else destroyed, no temporary bookmark left.
func onlyTheCursorChanged(t *testing.T, before, after []string, cursor string) {
	t.Helper()
	for what, lines := range map[string][]string{"added": diff(after, before), "destroyed": diff(before, after)} {
		for _, l := range lines {
			if !strings.HasPrefix(l, cursor+"\t") {
				t.Errorf("the pull %s %q on the source (only %s may change)", what, l, cursor)
			}
		}
	}
}

// allOf lists every dataset, snapshot and bookmark under root with its guid.
func allOf(t *testing.T, root string) []string {
	t.Helper()
	out := testenv.Run(t, "zfs", "list", "-H", "-p", "-r", "-t", "all", "-o", "name,guid", root)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return lines
}

// diff returns the lines of a that b lacks.
func diff(a, b []string) []string {
	have := map[string]bool{}
	for _, l := range b {
		have[l] = true
	}
	var out []string
	for _, l := range a {
		if !have[l] {
			out = append(out, l)
		}
	}
	return out
}

// startZrep starts the binary with argv; its stdout and stderr go to the
// returned buffer.
func startZrep(t *testing.T, argv ...string) (*exec.Cmd, *testenv.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, argv...)
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, out
}

// waitFor waits (up to 5 minutes, for a loaded machine) until out holds s.
func waitFor(t *testing.T, out *testenv.SyncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", s, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
