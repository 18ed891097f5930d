package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/doctor"
	"github.com/zrep/zrep/internal/testenv"
)

// TestUserEnv names the local user (not root) the tests run zrep as, with
// only the permissions `zfs allow` gives it. The OpenZFS lab creates it.
const TestUserEnv = "ZREP_TEST_USER"

// unprivileged is a local user other than root, with a directory it owns
// and a copy of the binary it can run.
type unprivileged struct {
	name     string
	uid, gid int
	dir      string // owned by the user
	bin      string
}

// newUnprivileged returns the user named by ZREP_TEST_USER. zfs-fuse's
// zfs allow does not work, so on zfs-fuse the test skips.
func newUnprivileged(t *testing.T) *unprivileged {
	t.Helper()
	if _, openZFS := testenv.OpenZFS(t); !openZFS {
		t.Skip("zfs-fuse's zfs allow does not work: there zrep runs as root")
	}
	name := os.Getenv(TestUserEnv)
	testenv.Require(t, testenv.RequireZFSEnv, name != "",
		TestUserEnv+" names no local user other than root to run zrep as (the OpenZFS lab creates one)")
	testenv.Require(t, testenv.RequireZFSEnv, os.Geteuid() == 0,
		"only root can delegate zfs permissions and start sshd for another user")
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	p := &unprivileged{name: name}
	if p.uid, err = strconv.Atoi(u.Uid); err != nil || p.uid == 0 {
		t.Fatalf("%s=%s: uid %q, want a user other than root", TestUserEnv, name, u.Uid)
	}
	if p.gid, err = strconv.Atoi(u.Gid); err != nil {
		t.Fatal(err)
	}
	p.dir = filepath.Join(testenv.SharedDir(t), "home")
	if err := os.Mkdir(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.chown(t, p.dir)
	p.bin = filepath.Join(filepath.Dir(p.dir), "zrep-stdinserver")
	testenv.Run(t, "cp", binary, p.bin)
	return p
}

func (p *unprivileged) chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, p.uid, p.gid); err != nil {
		t.Fatal(err)
	}
}

// path is name in the user's directory.
func (p *unprivileged) path(name string) string { return filepath.Join(p.dir, name) }

// key makes an ssh key pair that the user owns; it returns the private
// key's path and the public key line.
func (p *unprivileged) key(t *testing.T) (string, string) {
	t.Helper()
	key, pub := testenv.NewClientKey(t, p.dir)
	p.chown(t, key)
	return key, pub
}

// zrep runs the binary as the user to completion (at most 5 minutes).
func (p *unprivileged) zrep(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", p.name, "--", p.bin}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+p.dir)
	return runCommand(t, cmd)
}

// shell runs a shell command as the user and returns its exit status and
// combined output.
func (p *unprivileged) shell(t *testing.T, script string) (int, string) {
	t.Helper()
	out, err := exec.Command("runuser", "-u", p.name, "--", "sh", "-c", script).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// serveLine is an authorized_keys line that forces serve, run as the user.
func (p *unprivileged) serveLine(policy, identity, pub string) string {
	return fmt.Sprintf("restrict,command=%q %s %s@test\n",
		fmt.Sprintf("%s serve --policy %s --identity %s --lock-dir %s --log-file %s --log-level debug",
			p.bin, policy, identity, p.path("locks"), p.path("serve-"+identity+".log")), pub, identity)
}

// copyPolicy puts a copy of a policy file where the user can read it.
func (p *unprivileged) copyPolicy(t *testing.T, policy string) string {
	t.Helper()
	b, err := os.ReadFile(policy)
	if err != nil {
		t.Fatal(err)
	}
	path := p.path(filepath.Base(policy))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nothingMounted fails if a dataset under root is mounted.
func nothingMounted(t *testing.T, root string) {
	t.Helper()
	out := testenv.Run(t, "zfs", "get", "-H", "-r", "-t", "filesystem", "-o", "name,value", "mounted", root)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] != "no" {
			t.Errorf("%s is mounted", f[0])
		}
	}
}

// TestUnprivilegedPull: a source serving as a user with only `zfs allow
// send,hold,bookmark,destroy` (the last two for its cursor bookmarks),
// pulled by a backup host running as a user with only `zfs allow
// create,mount,receive` on its root. A dataset without the permissions
// fails with zfs's reason; the rest arrive unmounted, and the cursor moves.
func TestUnprivilegedPull(t *testing.T) {
	u := newUnprivileged(t)
	w := newWorld(t)
	s, root := w.src.Name, w.root()
	// send -I holds the snapshots it sends while it runs; a cursor moves
	// by making a bookmark and destroying the old one.
	const sourcePerms = "send,hold,bookmark,destroy"
	testenv.Run(t, "zfs", "allow", "-u", u.name, sourcePerms, s+"/data")
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", root)
	testenv.Run(t, "zfs", "allow", "-u", u.name, "create,mount,receive", root)
	policy := u.copyPolicy(t, w.policy)
	appendFile(t, policy, "    cursor_bookmarks: true\n")

	key, pub := u.key(t)
	sshd := testenv.StartSSHDAs(t, u.serveLine(policy, identity, pub), u.name)
	pull := args("pull", sshFlags(u.name+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions()), "--root", root)

	// No permission on SRC/vm yet.
	r := u.zrep(t, pull...)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, s+"/vm") || !strings.Contains(r.stdout+r.stderr, "permission denied") {
		t.Fatalf("pull without send on %s/vm: exit %d, want 1 naming it and the cause\n%s\n%s", s, r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, s+"/data", w.target(s+"/data"))
	sameSnapshots(t, s+"/data/child", w.target(s+"/data/child"))

	testenv.Run(t, "zfs", "allow", "-u", u.name, sourcePerms, s+"/vm")
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "data", "file2"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", s+"/data@s3")
	if r := u.zrep(t, pull...); r.code != 0 {
		t.Fatalf("pull: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, ds := range w.allowed() {
		sameSnapshots(t, ds, w.target(ds))
	}
	nothingMounted(t, root)
	if mp := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value", "mountpoint", w.target(s+"/data"))); mp != "none" {
		t.Errorf("%s has mountpoint %s, want none", w.target(s+"/data"), mp)
	}
	cursor := s + "/data#zrep_cursor_" + identity
	if got, want := testenv.GUID(t, cursor), testenv.GUID(t, s+"/data@s3"); got != want {
		t.Errorf("%s has guid %d, want @s3's %d", cursor, got, want)
	}
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnprivilegedAppendOnlySink: on OpenZFS 2.3.2 and later, a sink run
// as a user with only `zfs allow receive:append,create,mount` on its root
// takes pushes (into a root that root made, with the policy's quota), and
// even that user, acting by hand as a compromised sink
// would, cannot destroy, roll back or force-receive over what is there:
// the kernel refuses. Older OpenZFS has no receive:append.
func TestUnprivilegedAppendOnlySink(t *testing.T) {
	u := newUnprivileged(t)
	w := newPushWorld(t)
	s, root := w.src.Name, w.root("laptop1")
	// Root makes the root, unmounted, with the policy's quota (48M): a
	// user other than root cannot set either.
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", w.dst.Name+"/pushed")
	testenv.Run(t, "zfs", "create", "-o", "quota=48M", root)
	out, err := testenv.Output("zfs", "allow", "-u", u.name, "receive:append,create,mount", root)
	if version, _ := testenv.OpenZFS(t); err != nil {
		// receive:append is in OpenZFS 2.3.2 and later.
		if strings.HasPrefix(version, "zfs-2.1.") || strings.HasPrefix(version, "zfs-2.2.") {
			return
		}
		t.Fatalf("%s: zfs allow receive:append: %v %s", version, err, out)
	}

	key, pub := u.key(t)
	sshd := testenv.StartSSHDAs(t, u.serveLine(u.copyPolicy(t, w.policy), "laptop1", pub), u.name)
	push := args("push", sshFlags(u.name+"@127.0.0.1", sshd.Port, key, sshd.SSHOptions()), "--dataset", s+"/home<", "--dataset", s+"/vm")
	if r := zrep(t, push...); r.code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "home", "f2"), 1<<20)
	testenv.Run(t, "zfs", "snapshot", s+"/home@h3")
	if r := zrep(t, push...); r.code != 0 {
		t.Fatalf("incremental push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	home := root + "/" + s + "/home"
	for _, ds := range []string{s + "/home", s + "/home/u", s + "/vm"} {
		sameSnapshots(t, ds, root+"/"+ds)
	}
	nothingMounted(t, root)

	// The sink's user, compromised, tries what zfs recv -F and friends do
	// (openzfs#16943 is the first).
	before := allUnder(t, root)
	testenv.Run(t, "zfs", "snapshot", s+"/home@h4")
	stream := u.path("h2-h4.stream")
	testenv.Run(t, "sh", "-c", fmt.Sprintf("zfs send -i @h2 %s/home@h4 > %s && chmod 644 %s", s, stream, stream))
	for _, attack := range []string{
		fmt.Sprintf("zfs receive -u -F %s < %s", home, stream),
		"zfs destroy " + home + "@h1",
		"zfs rollback -r " + home + "@h1",
		"zfs set mountpoint=/mnt " + home,
	} {
		if code, out := u.shell(t, attack); code == 0 {
			t.Errorf("%s as %s succeeded:\n%s", attack, u.name, out)
		}
	}
	if after := allUnder(t, root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("the attacks changed the sink:\nbefore %v\nafter  %v", before, after)
	}
}

// TestUnprivilegedDoctor: doctor, run as root for the user, reads zfs
// allow and names what is missing, with the command that gives it; after
// that command it is content.
func TestUnprivilegedDoctor(t *testing.T) {
	u := newUnprivileged(t)
	w := newWorld(t)
	s, root := w.src.Name, w.root()
	testenv.Run(t, "zfs", "create", "-o", "mountpoint=none", root)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf("identities:\n  b1:\n    datasets: {%q: true}\n  l1:\n    sink: {root: %s}\n", s+"/data<", root)), 0o644); err != nil {
		t.Fatal(err)
	}
	doctorFindings := func(t *testing.T) []doctor.Finding {
		t.Helper()
		r := zrep(t, "doctor", "--policy", policy, "--authorized-keys", u.path("authorized_keys"), "--user", u.name, "--json")
		var rep doctor.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("doctor --json: exit %d: %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
		}
		return rep.Findings
	}
	find := func(t *testing.T, fs []doctor.Finding, sev doctor.Severity, msg, fix string) {
		t.Helper()
		for _, f := range fs {
			if f.Check == "delegation" && f.Severity == sev && strings.Contains(f.Message, msg) && strings.Contains(f.Fix, fix) {
				return
			}
		}
		t.Errorf("no %s delegation finding with %q and fix %q in %+v", sev, msg, fix, fs)
	}

	fs := doctorFindings(t)
	find(t, fs, doctor.Error, fmt.Sprintf("user %s lacks send,hold on %s/data", u.name, s), fmt.Sprintf("zfs allow -u %s send,hold %s/data", u.name, s))
	find(t, fs, doctor.Error, fmt.Sprintf("user %s lacks receive:append,create,mount on %s", u.name, root), fmt.Sprintf("zfs allow -u %s receive:append,create,mount %s", u.name, root))

	testenv.Run(t, "zfs", "allow", "-u", u.name, "send,hold", s+"/data")
	testenv.Run(t, "zfs", "allow", "-u", u.name, "create,mount,receive", root)
	fs = doctorFindings(t)
	find(t, fs, doctor.OK, fmt.Sprintf("identity b1: may send,hold %s/data", s), "")
	find(t, fs, doctor.Warning, fmt.Sprintf("user %s has receive, not receive:append, on %s", u.name, root), "receive:append")

	testenv.Run(t, "zfs", "unallow", "-u", u.name, "receive", root)
	if out, err := testenv.Output("zfs", "allow", "-u", u.name, "receive:append", root); err != nil {
		if version, _ := testenv.OpenZFS(t); strings.HasPrefix(version, "zfs-2.1.") || strings.HasPrefix(version, "zfs-2.2.") {
			return // receive:append is in OpenZFS 2.3.2 and later
		}
		t.Fatalf("zfs allow receive:append: %v %s", err, out)
	}
	find(t, doctorFindings(t), doctor.OK, fmt.Sprintf("user %s may receive:append,create,mount below %s", u.name, root), "")
}
