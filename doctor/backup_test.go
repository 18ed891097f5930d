package doctor

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

type fakeSession struct {
	names   []string
	listErr error
	closed  bool
}

func (f *fakeSession) ServerVersion() string { return "v9" }
func (f *fakeSession) ListFilesystems(context.Context, bool) ([]api.Filesystem, error) {
	var out []api.Filesystem
	for _, n := range f.names {
		out = append(out, api.Filesystem{Name: n})
	}
	return out, f.listErr
}
func (f *fakeSession) Close() error { f.closed = true; return nil }

func sshErr(kind client.SSHFailure, code int, stderr string) error {
	return &client.SSHError{Destination: "backup@web1", ExitCode: code, Stderr: stderr, Kind: kind, Err: io.EOF}
}

// Each way a session can fail is told apart, with its own fix. The real
// ssh failures are produced in integration/doctor_test.go.
func TestSessionCheck(t *testing.T) {
	src := pullconfig.Source{Name: "web1", SSH: "backup@web1", Port: 2222, Identity: "/root/.ssh/zrep_web1", Root: "bk/web1"}
	withDatasets := src
	withDatasets.Datasets = []string{"tank/data", "tank/vm"}
	for _, tt := range []struct {
		name   string
		src    pullconfig.Source
		sess   *fakeSession
		err    error
		sev    Severity
		msg    string
		fixHas string
	}{
		{"all is well", withDatasets, &fakeSession{names: []string{"tank/data", "tank/vm"}}, nil, OK, "the key sees every dataset the configuration names", ""},
		{"reachable", src, &fakeSession{names: []string{"tank/data"}}, nil, OK, "reachable, host key known, key accepted and forced into serve (zrep v9 there)", ""},
		{"refused", src, nil, sshErr(client.ConnectionRefused, 255, "ssh: connect to host web1 port 2222: Connection refused"), Error, "not reachable: ", "sshd runs"},
		{"unresolved", src, nil, sshErr(client.HostUnresolved, 255, "ssh: Could not resolve hostname web1"), Error, "not reachable: ", "host name"},
		{"closed", src, nil, sshErr(client.ConnectionClosed, 255, "Connection closed by 192.0.2.1 port 22"), Error, "the source closed the connection", "sshd's log"},
		{"host key unknown", src, nil, sshErr(client.HostKeyUnknown, 255, "Host key verification failed."), Error, "host key is not known", "ssh-keyscan -p 2222 web1"},
		{"host key changed", src, nil, sshErr(client.HostKeyChanged, 255, "REMOTE HOST IDENTIFICATION HAS CHANGED"), Error, "host key CHANGED", "ssh-keygen -R web1"},
		{"key refused", src, nil, sshErr(client.AuthRefused, 255, "backup@web1: Permission denied (publickey)."), Error, "the source refused the key", "/root/.ssh/zrep_web1"},
		{"not forced", src, nil, sshErr(client.RemoteCommandFailed, 127, "sh: 1: zrep-doctor-probe-not-forced: not found"), Error, "not forced into serve", "command="},
		{"forced elsewhere", src, nil, sshErr(client.RemoteCommandFailed, 2, "serve needs --policy FILE"), Error, "did not start the zrep endpoint", "doctor --policy"},
		{"not zrep", src, nil, errors.WithMessage(rpc.ErrHandshake, "connecting to the source"), Error, "does not speak zrep's protocol", "serve"},
		{"listing fails", src, &fakeSession{listErr: errors.New("listing datasets failed")}, nil, Error, "listing the datasets the key may see failed", "serve's log"},
		{"sees nothing", src, &fakeSession{}, nil, Warning, "the key may see no dataset", "policy check"},
		{"dataset hidden", withDatasets, &fakeSession{names: []string{"tank/data"}}, nil, Error, "names tank/vm, which the key does not see", "policy check --policy FILE --identity NAME tank/vm"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dial := func(context.Context, pullconfig.Source) (Session, error) {
				if tt.err != nil {
					return nil, tt.err
				}
				return tt.sess, nil
			}
			fs := SessionCheck(tt.src, dial)(context.Background())
			want(t, fs, tt.sev, tt.msg)
			found := false
			for _, f := range fs {
				if f.Severity == tt.sev && contains(f.Fix, tt.fixHas) {
					found = true
				}
			}
			if !found {
				t.Errorf("no fix mentions %q:\n%s", tt.fixHas, dump(fs))
			}
			if tt.sess != nil && !tt.sess.closed {
				t.Error("the session was not closed")
			}
			if tt.sev == OK && hasError(fs) {
				t.Errorf("errors where all is well:\n%s", dump(fs))
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func (f fakeZFS) GetProperties(_ context.Context, ds string, props ...string) (map[string]string, error) {
	if ds == "broken/x" {
		return nil, errors.New("zfs get: the daemon is not running")
	}
	p, ok := f[ds]
	if !ok {
		return nil, errors.Wrapf(zfs.ErrNotFound, "%s", ds)
	}
	return p, nil
}

func TestTargetCheck(t *testing.T) {
	z := fakeZFS{
		"bk":       {"mountpoint": "/bk", "canmount": "on"},
		"bk/none":  {"mountpoint": "none", "canmount": "on"},
		"bk/off":   {"mountpoint": "/bk/off", "canmount": "off"},
		"bk/mount": {"mountpoint": "/bk/mount", "canmount": "on"},
	}
	for _, tt := range []struct {
		root string
		sev  Severity
		msg  string
	}{
		{"bk/none", OK, "exists with mountpoint=none"},
		{"bk/new", OK, "does not exist yet: the first pull as root creates it with mountpoint=none (a pull as another user cannot: see the delegation finding)"},
		{"nopool/x", Error, "the pool nopool does not exist on this host"},
		{"bk/mount", Error, "exists and can be mounted (mountpoint=/bk/mount, canmount=on)"},
		{"bk/off", Warning, "exists with canmount=off: it is not mounted, but the datasets received below it inherit mountpoint=/bk/off"},
		{"broken/x", Error, "cannot read its properties"},
	} {
		t.Run(tt.root, func(t *testing.T) {
			fs := TargetCheck(pullconfig.Source{Name: "s", Root: tt.root}, z)(context.Background())
			want(t, fs, tt.sev, tt.msg)
		})
	}
}

func TestConfigCheckAndRun(t *testing.T) {
	r := Run(context.Background(), []Check{
		ConfigCheck("pull.yaml", errors.New(`pull.yaml:3: source "s": unknown key "rooot"`), 0),
		ConfigCheck("pull.yaml", nil, 2),
		func(context.Context) []Finding { return []Finding{{Severity: Warning, Message: "w", Fix: "f"}} },
	})
	if r.Errors != 1 || r.Warnings != 1 || len(r.Findings) != 3 {
		t.Errorf("report %+v", r)
	}
	want(t, r.Findings, Error, `unusable: pull.yaml:3: source "s": unknown key "rooot"`)
	want(t, r.Findings, OK, "parses: 2 source(s)")
}
