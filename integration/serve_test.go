package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// dialSource opens an rpc session through the real ssh, with the same
// options ls and pull would use.
func dialSource(t *testing.T, ctx context.Context, e endpoint) *client.Source {
	t.Helper()
	d := &client.SSH{}
	for i := 0; i < len(e.flags); i += 2 {
		switch e.flags[i] {
		case "--ssh":
			d.Destination = e.flags[i+1]
		case "--ssh-port":
			_, _ = fmt.Sscan(e.flags[i+1], &d.Port)
		case "--ssh-identity":
			d.Identity = e.flags[i+1]
		case "--ssh-option":
			d.Options = append(d.Options, e.flags[i+1])
		}
	}
	src, err := client.Dial(ctx, d, rpc.Config{SoftwareVersion: "integration-test"})
	if err != nil {
		t.Fatalf("dial %s: %v", e.name, err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// TestServeOverOpenSSH drives `serve` as sshd's forced command: the listing
// holds exactly what the policy allows, guids are right, streams received
// into a second pool give the same guids, and refused requests get the
// right errors.
func TestServeOverOpenSSH(t *testing.T) {
	w := newWorld(t)
	e := w.openSSH(t)

	t.Run("ls lists exactly the allowed datasets with zfs's guids", func(t *testing.T) {
		r := mustZrep(t, args("ls", "--json", e.flags)...)
		var doc struct {
			Filesystems []struct {
				Name     string        `json:"name"`
				Versions []api.Version `json:"versions"`
			} `json:"filesystems"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("ls --json output is not the documented JSON: %v\n%s", err, r.stdout)
		}
		var names []string
		for _, fs := range doc.Filesystems {
			names = append(names, fs.Name)
			for _, v := range fs.Versions {
				if want := testenv.GUID(t, v.Name); uint64(v.GUID) != want {
					t.Errorf("%s: ls says guid %d, zfs get says %d", v.Name, v.GUID, want)
				}
				if v.Type != "snapshot" || v.CreateTXG == 0 || v.Creation.IsZero() {
					t.Errorf("incomplete version %+v", v)
				}
			}
		}
		if want := w.allowed(); strings.Join(names, ",") != strings.Join(want, ",") {
			t.Fatalf("ls lists %v, want exactly %v", names, want)
		}
		if !strings.Contains(r.stdout, `"guid": "`) {
			t.Errorf("guids are not decimal strings in %s", r.stdout)
		}
		human := mustZrep(t, args("ls", e.flags)...)
		if !strings.Contains(human.stdout, w.src.Name+"/data@s2") || strings.Contains(human.stdout, "private") {
			t.Errorf("ls table:\n%s", human.stdout)
		}
	})

	ctx := context.Background()
	src := dialSource(t, ctx, e)

	t.Run("full and incremental send into a second pool give the same guids", func(t *testing.T) {
		dst := zfs.New(&zfs.CLI{})
		target := w.dst.Name + "/recv"
		ds := w.src.Name + "/data"
		receive := func(req api.SendRequest) {
			t.Helper()
			resp, stream, err := src.Send(ctx, req)
			if err != nil {
				t.Fatalf("Send %+v: %v", req, err)
			}
			if uint64(resp.To.GUID) != testenv.GUID(t, req.To) {
				t.Errorf("Send response guid %d for %s", resp.To.GUID, req.To)
			}
			in, err := dst.Recv(ctx, zfs.RecvOptions{Target: target})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(in, stream); err != nil {
				_ = in.Abort()
				t.Fatalf("stream: %v", err)
			}
			if err := in.Close(); err != nil {
				t.Fatalf("zfs recv: %v", err)
			}
			_ = stream.Close()
		}
		receive(api.SendRequest{Dataset: ds, To: ds + "@s1"})
		receive(api.SendRequest{Dataset: ds, From: ds + "@s1", To: ds + "@s2"})
		sameSnapshots(t, ds, target)
	})

	t.Run("refused requests", func(t *testing.T) {
		s := w.src.Name
		tests := []struct {
			name string
			call func() error
			code rpc.Code
			msg  string
		}{
			{"denied dataset", func() error { _, err := src.ListVersions(ctx, s+"/data/private"); return err },
				rpc.CodeNotFound, `dataset "` + s + `/data/private" does not exist`},
			{"nonexistent dataset", func() error { _, err := src.ListVersions(ctx, s+"/data/nope"); return err },
				rpc.CodeNotFound, `dataset "` + s + `/data/nope" does not exist`},
			{"prefix sibling", func() error { _, err := src.ListVersions(ctx, s+"/database"); return err },
				rpc.CodeNotFound, `dataset "` + s + `/database" does not exist`},
			{"child of an exact-only key", func() error { _, err := src.ListVersions(ctx, s+"/vm/disk0"); return err },
				rpc.CodeNotFound, `dataset "` + s + `/vm/disk0" does not exist`},
			{"send of a denied dataset", func() error {
				return send(ctx, src, api.SendRequest{Dataset: s + "/data/private", To: s + "/data/private@p1"})
			},
				rpc.CodeNotFound, `dataset "` + s + `/data/private" does not exist`},
			{"send of a missing snapshot", func() error { return send(ctx, src, api.SendRequest{Dataset: s + "/data", To: s + "/data@nope"}) },
				rpc.CodeNotFound, `"` + s + `/data@nope" does not exist`},
			{"from of another (allowed) dataset", func() error {
				return send(ctx, src, api.SendRequest{Dataset: s + "/data", From: s + "/vm@v1", To: s + "/data@s2"})
			}, rpc.CodeInvalidArgument, "is not a snapshot or bookmark of dataset"},
			{"option-like name", func() error { return send(ctx, src, api.SendRequest{Dataset: "-R", To: "-R@x"}) },
				rpc.CodeInvalidArgument, "invalid name"},
			{"option-like listing", func() error { _, err := src.ListVersions(ctx, "-Hp"); return err },
				rpc.CodeInvalidArgument, "invalid name"},
			{"malformed name", func() error { _, err := src.ListVersions(ctx, s+"//data"); return err },
				rpc.CodeInvalidArgument, "invalid name"},
			{"snapshot name as dataset", func() error { _, err := src.ListVersions(ctx, s+"/data@s1"); return err },
				rpc.CodeInvalidArgument, "invalid name"},
			{"from not older than to", func() error {
				return send(ctx, src, api.SendRequest{Dataset: s + "/data", From: s + "/data@s2", To: s + "/data@s1"})
			}, rpc.CodeInvalidArgument, "is not older than"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				var e *rpc.Error
				if !errors.As(err, &e) {
					t.Fatalf("got %v (%T), want an rpc error", err, err)
				}
				if e.Code != tt.code || !strings.Contains(e.Message, tt.msg) {
					t.Fatalf("got %s %q, want %s containing %q", e.Code, e.Message, tt.code, tt.msg)
				}
			})
		}
		// The session survives refused calls.
		if _, err := src.ListVersions(ctx, s+"/data"); err != nil {
			t.Fatalf("session after refused calls: %v", err)
		}
	})
}

func send(ctx context.Context, src *client.Source, req api.SendRequest) error {
	_, stream, err := src.Send(ctx, req)
	if stream != nil {
		_ = stream.Close()
	}
	return err
}

// A client that vanishes in the middle of a send leaves no zfs send behind.
func TestDisconnectMidSendLeavesNoZFSSend(t *testing.T) {
	w := newWorld(t)
	ds := w.src.Name + "/vm"
	testenv.WriteRandom(t, filepath.Join(w.src.Mountpoint, "vm", "big"), 64<<20)
	testenv.Run(t, "zfs", "snapshot", ds+"@big")
	for _, e := range []endpoint{w.openSSH(t), w.embedded(t)} {
		t.Run(e.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			src := dialSource(t, ctx, e)
			_, stream, err := src.Send(ctx, api.SendRequest{Dataset: ds, To: ds + "@big"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(io.Discard, stream, 1<<20); err != nil {
				t.Fatal(err)
			}
			if len(zfsSendProcesses(ds)) == 0 {
				t.Fatal("no zfs send running mid-stream: the test would prove nothing")
			}
			cancel() // kills our ssh: the server sees its client vanish
			deadline := time.Now().Add(20 * time.Second)
			for len(zfsSendProcesses(ds)) > 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if left := zfsSendProcesses(ds); len(left) > 0 {
				t.Fatalf("zfs send still running after the client vanished: %v", left)
			}
		})
	}
}

// Garbage on stdin makes serve exit non-zero quickly, with an error on
// stderr, no panic, and nothing on stdout.
func TestServeRejectsGarbage(t *testing.T) {
	w := newWorld(t)
	for _, input := range []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\x02\x01\x00\x00\xff\xff\xff\xffjunk", ""} {
		cmd := exec.Command(binary, "serve", "--policy", w.policy, "--identity", identity)
		cmd.Stdin = strings.NewReader(input)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("serve still running 30 s after garbage %q", input)
		}
		t.Logf("serve exited after %s on %q", time.Since(start).Round(time.Millisecond), input)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("serve on %q: %v, want a non-zero exit", input, err)
		}
		if !strings.Contains(stderr.String(), "session failed") || strings.Contains(stderr.String(), "panic") {
			t.Errorf("serve stderr on %q:\n%s", input, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("serve wrote %q to stdout on %q", stdout.String(), input)
		}
	}
}

// serve refuses to start with a bad policy or an unknown identity (exit 2).
func TestServeRefusesBadPolicy(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ policy, identity, want string }{
		{w.policy, "nobody", "unknown identity"},
		{filepath.Join(w.dir, "missing.yaml"), identity, "no such file"},
	} {
		cmd := exec.Command(binary, "serve", "--policy", tc.policy, "--identity", tc.identity)
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve --policy %s --identity %s: %v\n%s", tc.policy, tc.identity, err, out)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	w := newWorld(t)
	s := w.src.Name
	r := zrep(t, "policy", "check", "--policy", w.policy, "--identity", identity, s+"/data/x", s+"/database", s+"/vm/disk0")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (some denied): %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	sort.Strings(lines)
	want := []string{
		s + "/data/x\tallowed\tallowed by \"" + s + "/data<\": true (line 4)",
		s + "/database\tdenied\tdenied by default: no rule matches",
		s + "/vm/disk0\tdenied\tdenied by default: no rule matches",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("policy check printed:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
