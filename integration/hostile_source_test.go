package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zrep/zrep/internal/testenv"
)

// TestHostileSource plays a compromised source: its zfs binary is replaced
// (serve --zfs-bin) by wrappers that answer each send with another stream
// than the one asked for. Every such stream must be refused before zfs
// receive runs on the backup host, leaving the backup exactly as it was;
// then a clean pull must complete.
func TestHostileSource(t *testing.T) {
	w := newWorld(t)
	s := w.src.Name
	realZFS, err := exec.LookPath("zfs")
	if err != nil {
		t.Fatal(err)
	}

	// The baseline: a clean first pull.
	clean := w.openSSH(t)
	mustZrep(t, args("pull", clean.flags, "--root", w.root())...)

	// Then the source moves on: a -I step (data: s2 -> s4), a -i step
	// (vm: v1 -> v2) and a full one (a new dataset), and the attacker
	// points data's mountpoint at a directory of the backup host.
	evil := filepath.Join(w.dir, "evil")
	if err := os.Mkdir(evil, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "zfs", "snapshot", s+"/data@s3")
	testenv.Run(t, "zfs", "snapshot", s+"/data@s4")
	testenv.Run(t, "zfs", "snapshot", s+"/vm@v2")
	testenv.Run(t, "zfs", "create", s+"/data/new")
	testenv.Run(t, "zfs", "snapshot", s+"/data/new@n1")
	testenv.Run(t, "zfs", "set", "mountpoint="+evil+"/data", s+"/data")

	// Each attack is a wrapper script around the real zfs, run by serve:
	// it changes every real send (not the dry runs that estimate sizes).
	all := []string{s + "/data", s + "/vm", s + "/data/new"}
	attacks := []struct {
		name     string
		script   string   // the shell body; "$@" are zfs's arguments
		datasets []string // pulled (and refused) in this attack
		want     string   // what the refusal says
	}{
		{"package stream with properties (send -R -p)",
			`if [ "$1" = send ] && [ "$2" != -n ]; then shift; exec ZFS send -R -p "$@"; fi`,
			all, "not asked for"},
		{"another dataset's snapshot (the denied data/private)",
			`if [ "$1" = send ] && [ "$2" != -n ]; then exec ZFS send ` + s + `/data/private@p1; fi`,
			all, "not asked for"},
		{"incremental from an older snapshot (with -F it would destroy newer ones)", olderBase,
			[]string{s + "/data"}, "not asked for"},
		{"garbage before the stream",
			`if [ "$1" = send ] && [ "$2" != -n ]; then printf 'Last login: yesterday\n'; exec ZFS "$@"; fi`,
			all, "malformed stream"},
	}
	var keys strings.Builder
	endpoints := make([]endpoint, len(attacks))
	for i, a := range attacks {
		wrapper := filepath.Join(w.dir, fmt.Sprintf("hostile-zfs-%d", i))
		body := "#!/bin/sh\n" + strings.ReplaceAll(a.script, "ZFS", realZFS) + "\nexec " + realZFS + " \"$@\"\n"
		if err := os.WriteFile(wrapper, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		key, pub := testenv.NewClientKey(t, w.dir)
		log := filepath.Join(w.dir, fmt.Sprintf("serve-hostile-%d.log", i))
		fmt.Fprintf(&keys, "restrict,command=%q %s hostile%d@test\n", w.serveCommand(log)+" --zfs-bin "+wrapper, pub, i)
		endpoints[i] = endpoint{name: a.name, flags: []string{"--ssh-identity", key}, log: log}
	}
	sshd := testenv.StartSSHD(t, keys.String())

	// The backup host's zfs is wrapped too, to record whether zfs receive ever runs.
	recvLog := filepath.Join(w.dir, "local-zfs.log")
	localZFS := filepath.Join(w.dir, "local-zfs")
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\nexec %s \"$@\"\n", recvLog, realZFS)
	if err := os.WriteFile(localZFS, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	before := targetState(t, w.root())
	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			_ = os.Remove(recvLog)
			flags := sshFlags(currentUser(t)+"@127.0.0.1", sshd.Port, endpoints[i].flags[1], sshd.SSHOptions())
			var only []string
			for _, ds := range a.datasets {
				only = append(only, "--dataset", ds)
			}
			r := zrep(t, args("pull", flags, "--root", w.root(), "--zfs-bin", localZFS, only)...)
			if r.code != 1 {
				t.Fatalf("pull: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			out := r.stdout + r.stderr
			for _, ds := range a.datasets {
				if !strings.Contains(out, ds+": ") {
					t.Errorf("the output does not name %s:\n%s", ds, out)
				}
			}
			if !strings.Contains(out, a.want) || !strings.Contains(out, "broken or compromised") {
				t.Errorf("the output does not say %q and that the source is broken or compromised:\n%s", a.want, out)
			}
			if ran := receivesIn(t, recvLog); len(ran) > 0 {
				t.Errorf("zfs receive ran on the backup host: %q", ran)
			}
			if after := targetState(t, w.root()); after != before {
				t.Errorf("the backup changed:\n%s", stateDiff(before, after))
			}
		})
	}

	// The source comes back to its senses: a clean pull completes.
	mustZrep(t, args("pull", clean.flags, "--root", w.root())...)
	for _, ds := range []string{s + "/data", s + "/vm", s + "/data/new", s + "/data/child"} {
		sameSnapshots(t, ds, w.target(ds))
	}
	if mp := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-o", "value,source", "mountpoint", w.target(s+"/data"))); strings.Contains(mp, evil) {
		t.Errorf("the backup took the source's mountpoint: %s", mp)
	}
}

// olderBase is a zfs wrapper body that sends every incremental (-i or -I,
// whatever flags come before) from the dataset's oldest snapshot instead
// of the base asked for.
const olderBase = `if [ "$1" = send ]; then
  n=$# prev=""
  for a in "$@"; do
    arg=$a
    if [ "$prev" = -i ] || [ "$prev" = -I ]; then
      arg=$(ZFS list -H -o name -t snapshot -s createtxg -d 1 "${a%@*}" | head -n 1)
    fi
    set -- "$@" "$arg"
    prev=$a
  done
  shift "$n"
  exec ZFS "$@"
fi`

// receivesIn returns the zfs receive command lines a logging wrapper wrote.
func receivesIn(t *testing.T, log string) []string {
	t.Helper()
	b, _ := os.ReadFile(log)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "receive ") || strings.HasPrefix(line, "recv ") {
			out = append(out, line)
		}
	}
	return out
}

// stateDiff shows the lines of two targetStates that differ.
func stateDiff(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out strings.Builder
	for _, l := range diff(b, a) {
		out.WriteString("- " + l + "\n")
	}
	for _, l := range diff(a, b) {
		out.WriteString("+ " + l + "\n")
	}
	return out.String()
}

// targetState is everything zfs says about the datasets and snapshots under
// root: every property of each, with its source, but the pool's free space
// (available), which OpenZFS's own housekeeping moves by a few KiB.
func targetState(t *testing.T, root string) string {
	t.Helper()
	var kept []string
	for _, line := range strings.Split(testenv.Run(t, "zfs", "get", "-r", "-H", "-p", "-o", "name,property,value,source", "all", root), "\n") {
		if f := strings.Split(line, "\t"); len(f) < 2 || f[1] != "available" {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
