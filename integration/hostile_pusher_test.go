package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/sendstream/streamtest"
)

// wrapZFS writes a wrapper of the real zfs whose shell body runs first
// ("ZFS" in it stands for the real binary) and returns its path.
func wrapZFS(t *testing.T, dir, name, body string) string {
	t.Helper()
	realZFS, err := exec.LookPath("zfs")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	script := "#!/bin/sh\n" + strings.ReplaceAll(body, "ZFS", realZFS) + "\nexec " + realZFS + " \"$@\"\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHostilePusher plays a compromised pushing host whose zfs answers the
// sink's sends with other streams than those asked for. The sink refuses
// each before zfs receive sees it; everything under its root stays; a push
// over the quota fails and keeps every earlier snapshot; a cut stream loses
// nothing, and the next clean push completes.
func TestHostilePusher(t *testing.T) {
	w := newPushWorld(t)
	s := w.src.Name
	ends := w.sinkEndpoints(t, "laptop1")
	push := func(extra ...string) result {
		return zrep(t, args("push", ends["laptop1"], "--dataset", s+"/home<", "--dataset", s+"/vm", extra)...)
	}
	if r := push(); r.code != 0 {
		t.Fatalf("first push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The pusher moves on, and points home's mountpoint somewhere of its choosing.
	evil := filepath.Join(w.dir, "evil")
	testenv.Run(t, "zfs", "snapshot", s+"/home@h3")
	testenv.Run(t, "zfs", "snapshot", s+"/vm@v2")
	testenv.Run(t, "zfs", "set", "mountpoint="+evil, s+"/home")

	root := w.root("laptop1")
	attacks := []struct {
		name, body, want string
		only             string // push only this dataset
	}{
		{"package stream with a mountpoint (send -R -p)",
			`if [ "$1" = send ] && [ "$2" != -n ]; then shift; exec ZFS send -R -p "$@"; fi`, "compound (package) stream", ""},
		{"another dataset's snapshot",
			`if [ "$1" = send ] && [ "$2" != -n ]; then exec ZFS send ` + s + `/secret@x1; fi`, "not asked for", ""},
		{"incremental from an older snapshot than the target's newest", olderBase, "not asked for", s + "/home"},
	}
	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			before, props := allUnder(t, root), targetState(t, root)
			hostile := wrapZFS(t, w.dir, fmt.Sprintf("hostile-%d", i), a.body)
			var r result
			if a.only != "" {
				r = zrep(t, args("push", ends["laptop1"], "--dataset", a.only, "--zfs-bin", hostile)...)
			} else {
				r = push("--zfs-bin", hostile)
			}
			if r.code != 1 || !strings.Contains(r.stdout, a.want) || !strings.Contains(r.stdout, "broken or compromised") {
				t.Errorf("push: exit %d, want 1 and %q\n%s\n%s", r.code, a.want, r.stdout, r.stderr)
			}
			if after := allUnder(t, root); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("the sink's root changed:\n%s\n%s\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"), r.stdout)
			}
			if after := targetState(t, root); after != props {
				t.Errorf("the sink's properties changed:\n%s", stateDiff(props, after))
			}
		})
	}

	t.Run("a cut stream loses nothing", func(t *testing.T) {
		before := allUnder(t, root)
		cut := wrapZFS(t, w.dir, "cut", `if [ "$1" = send ] && [ "$2" != -n ]; then ZFS "$@" | head -c 700; exit 1; fi`)
		if r := push("--zfs-bin", cut); r.code != 1 {
			t.Errorf("push of a cut stream: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		superset(t, before, allUnder(t, root))
	})

	t.Run("clean push afterwards", func(t *testing.T) {
		if r := push(); r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		for _, ds := range []string{s + "/home", s + "/home/u", s + "/vm"} {
			sameSnapshots(t, ds, root+"/"+ds)
		}
		if mp := testenv.Run(t, "zfs", "get", "-H", "-o", "value", "mountpoint", root+"/"+s+"/home"); strings.Contains(mp, evil) {
			t.Errorf("the sink took the pusher's mountpoint %s", mp)
		}
	})

	t.Run("over the quota", func(t *testing.T) {
		testenv.WriteRandom(t, filepath.Join(evil, "big"), 64<<20) // the quota is 48M
		testenv.Run(t, "zfs", "snapshot", s+"/home@big")
		before := allUnder(t, root)
		r := push()
		if r.code != 1 || !strings.Contains(r.stdout, s+"/home") || !strings.Contains(strings.ToLower(r.stdout), "quota") {
			t.Errorf("push over the quota: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		superset(t, before, allUnder(t, root))
	})
}

// TestPusherSpeakingTheProtocol: a pushing host that speaks the protocol
// itself and lists names a real zfs never would, or answers a Send with a
// stream of something else. The sink (serve, as sshd runs it) receives
// nothing outside its root, and nothing it did not plan.
func TestPusherSpeakingTheProtocol(t *testing.T) {
	w := newPushWorld(t)
	root := w.root("laptop1")
	hostile := []string{"../../etc", "/etc", "tank/../x", "tank/a@b", "-F", "tank//a", "tank/a%x"}
	listing := []api.Filesystem{{Name: "tank/ok", Type: "filesystem", Versions: []api.Version{
		{Name: "tank/ok@s1", Type: api.TypeSnapshot, GUID: 1234, CreateTXG: 10},
	}}}
	for _, n := range hostile {
		listing = append(listing, api.Filesystem{Name: n, Type: "filesystem", Versions: []api.Version{
			{Name: n + "@s1", Type: api.TypeSnapshot, GUID: 99, CreateTXG: 10},
		}})
	}
	// tank/ok's stream is of another dataset, with another guid.
	forged := streamtest.Stream("tank/other", 0, []streamtest.Snap{{Name: "s1", GUID: 5678}}, false, 4096)
	events := runFakePusher(t, w, "laptop1", listing, forged)

	failed := map[string]string{}
	for _, ev := range events {
		if ev.Type == "dataset_done" && ev.Result != nil && ev.Result.Outcome == "failed" {
			failed[ev.Result.Dataset] = ev.Result.Error
		}
	}
	for _, n := range hostile {
		if !strings.Contains(failed[n], "listed it wrongly") {
			t.Errorf("%q: %q, want refused as listed wrongly", n, failed[n])
		}
	}
	if !strings.Contains(failed["tank/ok"], "not asked for") {
		t.Errorf("tank/ok: %q, want refused as not asked for", failed["tank/ok"])
	}
	// Nothing was received anywhere: at most the (empty) root and its parent.
	for _, l := range allUnder(t, w.dst.Name) {
		name, _, _ := strings.Cut(l, "\t")
		if name != w.dst.Name && name != w.dst.Name+"/pushed" && name != root && name != root+"/tank" {
			t.Errorf("the fake pusher made the sink create %s", name)
		}
	}
}

// event is the part of a replication event the tests look at.
type event struct {
	Type   string `json:"type"`
	Error  string `json:"error"`
	Result *struct {
		Dataset string `json:"dataset"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"result"`
}

// runFakePusher runs `serve` for identity as sshd would, connects to it as
// a pusher speaking the protocol directly, serves listing and every Send
// with stream, and returns the events the sink reported.
func runFakePusher(t *testing.T, w *pushWorld, identity string, listing []api.Filesystem, stream []byte) []event {
	t.Helper()
	cmd := exec.Command(binary, "serve", "--policy", w.policy, "--identity", identity, "--lock-dir", w.locks,
		"--log-file", filepath.Join(w.dir, "serve-fake.log"), "--log-level", "debug")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn := struct {
		io.Reader
		io.WriteCloser
	}{stdout, stdin}

	var mu sync.Mutex
	var events []event
	srv, err := rpc.NewServer(rpc.Config{MaxHeaderBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Register(api.MethodPushOptions, func(ctx context.Context, _ api.PushOptionsRequest) (*api.PushOptions, error) {
		return &api.PushOptions{}, nil
	}))
	must(srv.Register(api.MethodReport, func(ctx context.Context, req api.ReportRequest) (*api.ReportResponse, error) {
		var ev event
		if err := json.Unmarshal(req.Event, &ev); err != nil {
			return nil, err
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		return &api.ReportResponse{}, nil
	}))
	must(srv.Register(api.MethodListFilesystems, func(ctx context.Context, _ api.ListFilesystemsRequest) (*api.ListResponse, io.ReadCloser, error) {
		body, resp, err := api.EncodeListing(listing, nil)
		return &resp, io.NopCloser(bytes.NewReader(body)), err
	}))
	must(srv.Register(api.MethodSend, func(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
		return &api.SendResponse{To: api.Version{Name: req.To, Type: api.TypeSnapshot, GUID: req.ToGUID}}, io.NopCloser(bytes.NewReader(stream)), nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sess, err := rpc.Initiate(ctx, conn, rpc.Config{MaxHeaderBytes: 64 << 20}, true)
	if err != nil {
		t.Fatalf("handshake with the sink: %v\n%s", err, stderr.String())
	}
	if err := srv.Serve(ctx, sess); err != nil {
		t.Fatalf("serving the sink: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		log, _ := os.ReadFile(filepath.Join(w.dir, "serve-fake.log"))
		t.Logf("serve: %v\n%s\n%s", err, stderr.String(), log)
	}
	mu.Lock()
	defer mu.Unlock()
	return events
}
