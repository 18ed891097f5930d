package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// testPolicy is parsed with policy.Parse; each test picks an identity.
const testPolicy = `identities:
  backup:
    datasets:
      "tank/data<": true
      "tank/data/private<": false
      "tank/vm": true
  # everything, to tell "does not exist" from "denied"
  all:
    datasets:
      "tank<": true
      "pool2<": true
  nothing:
    datasets:
      "other<": true
`

// call is one call the fake ZFS received.
type call struct {
	Method string
	Arg    any // the dataset (string), root (string), zfs.SendOptions, or nil
}

// fakeZFS implements handlers.ZFS from a table of datasets and versions,
// and records every call with its arguments.
type fakeZFS struct {
	datasets []zfs.Dataset
	versions map[string][]zfs.Version // by dataset

	features zfs.Features

	// Injected failures.
	listErr    error            // ListDatasets and ListTree fail
	estimate   int64            // what EstimateSend answers
	versionErr map[string]error // ListVersions of that dataset fails
	sendErr    error            // Send fails to start
	failAfter  int              // > 0: the stream fails after that many bytes...
	streamErr  error            // ...with this error

	mu      sync.Mutex
	calls   []call
	streams []*fakeStream
}

func (f *fakeZFS) record(method string, arg any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{method, arg})
}

func (f *fakeZFS) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeZFS) sendCalls() []zfs.SendOptions {
	var out []zfs.SendOptions
	for _, c := range f.Calls() {
		if c.Method == "Send" {
			out = append(out, c.Arg.(zfs.SendOptions))
		}
	}
	return out
}

// waitStreamsClosed fails t unless n streams were opened and all get closed
// soon: the server closes a body after its last frame, asynchronously.
func (f *fakeZFS) waitStreamsClosed(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	streams := append([]*fakeStream(nil), f.streams...)
	f.mu.Unlock()
	if len(streams) != n {
		t.Fatalf("zfs send opened %d streams; want %d", len(streams), n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range streams {
		for {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the server did not close the zfs stream")
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func (f *fakeZFS) exists(dataset string) bool {
	for _, d := range f.datasets {
		if d.Name == dataset {
			return true
		}
	}
	return false
}

func (f *fakeZFS) ListDatasets(ctx context.Context, root string) ([]zfs.Dataset, error) {
	f.record("ListDatasets", root)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if root == "" {
		return append([]zfs.Dataset(nil), f.datasets...), nil
	}
	if !f.exists(root) {
		return nil, fmt.Errorf("list %s: %w", root, zfs.ErrNotFound)
	}
	var out []zfs.Dataset
	for _, d := range f.datasets {
		if d.Name == root || strings.HasPrefix(d.Name, root+"/") {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeZFS) ListVersions(ctx context.Context, dataset string) ([]zfs.Version, error) {
	f.record("ListVersions", dataset)
	if err := f.versionErr[dataset]; err != nil {
		return nil, err
	}
	if !f.exists(dataset) {
		return nil, fmt.Errorf("list versions of %s: %w", dataset, zfs.ErrNotFound)
	}
	return append([]zfs.Version{}, f.versions[dataset]...), nil
}

func (f *fakeZFS) ListTree(ctx context.Context, root string) ([]zfs.DatasetVersions, error) {
	f.record("ListTree", root)
	if f.listErr != nil {
		return nil, f.listErr
	}
	if root == "" {
		return nil, fmt.Errorf("fake: ListTree(\"\"): the handlers must not walk every pool")
	}
	if !f.exists(root) {
		return nil, fmt.Errorf("list tree %s: %w", root, zfs.ErrNotFound)
	}
	var out []zfs.DatasetVersions
	for _, d := range f.datasets {
		if d.Name == root || strings.HasPrefix(d.Name, root+"/") {
			out = append(out, zfs.DatasetVersions{Dataset: d, Versions: f.versions[d.Name]})
		}
	}
	return out, nil
}

func (f *fakeZFS) Features(ctx context.Context) (zfs.Features, error) {
	return f.features, nil
}

func (f *fakeZFS) EstimateSend(ctx context.Context, o zfs.SendOptions) (int64, error) {
	f.record("EstimateSend", o)
	return f.estimate, nil
}

func (f *fakeZFS) Send(ctx context.Context, o zfs.SendOptions) (io.ReadCloser, error) {
	f.record("Send", o)
	if f.sendErr != nil {
		return nil, f.sendErr
	}
	s := &fakeStream{data: streamBytes(o), failAfter: f.failAfter, err: f.streamErr}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	return s, nil
}

// streamBytes is the stream the fake sends for o: a few MiB, so that it
// spans several DATA frames, that depend on o.
func streamBytes(o zfs.SendOptions) []byte {
	seed := fmt.Sprintf("%s|%s|%t|", o.Snapshot, o.From, o.Intermediates)
	return bytes.Repeat([]byte(seed), (3<<20)/len(seed)+1)
}

// fakeStream returns data, or fails with err after failAfter bytes.
type fakeStream struct {
	mu        sync.Mutex
	data      []byte
	off       int
	failAfter int
	err       error
	closed    bool
}

func (s *fakeStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("fake stream: read after close")
	}
	end := len(s.data)
	if s.failAfter > 0 && s.failAfter < end {
		end = s.failAfter
	}
	if s.off >= end {
		if end < len(s.data) {
			return 0, s.err
		}
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:end])
	s.off += n
	return n, nil
}

func (s *fakeStream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func ts(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func snap(name string, guid, txg uint64) zfs.Version {
	typ := zfs.Snapshot
	if strings.Contains(name, "#") {
		typ = zfs.Bookmark
	}
	return zfs.Version{Name: name, Type: typ, GUID: guid, CreateTXG: txg, Creation: ts(1700000000 + int64(txg))}
}

// newFake returns a pool with allowed, denied and prefix-sharing datasets.
func newFake() *fakeZFS {
	fs := func(name string) zfs.Dataset { return zfs.Dataset{Name: name, Type: zfs.Filesystem} }
	vol := func(name string) zfs.Dataset { return zfs.Dataset{Name: name, Type: zfs.Volume} }
	return &fakeZFS{
		estimate: 4242,
		datasets: []zfs.Dataset{
			fs("pool2"),
			fs("pool2/x"),
			fs("tank"),
			fs("tank/data"),
			fs("tank/data/a"),
			fs("tank/data/a/b"),
			fs("tank/data/private"),
			fs("tank/data/private/x"),
			fs("tank/database"),
			fs("tank/vm"),
			vol("tank/vm/disk0"),
		},
		versions: map[string][]zfs.Version{
			"tank": {snap("tank@root", 1, 5)},
			"tank/data": {
				snap("tank/data@s1", 101, 10),
				snap("tank/data#b1", 101, 10),
				snap("tank/data@s2", 102, 20),
				snap("tank/data@s3", 103, 30),
			},
			"tank/data/a":         {snap("tank/data/a@s1", 201, 15)},
			"tank/data/private":   {snap("tank/data/private@s1", 301, 11)},
			"tank/data/private/x": {snap("tank/data/private/x@s1", 302, 12)},
			"tank/database":       {snap("tank/database@s1", 401, 13)},
			"tank/vm":             {snap("tank/vm@v1", 501, 14)},
			"tank/vm/disk0":       {snap("tank/vm/disk0@d1", 601, 16)},
			"pool2/x":             {snap("pool2/x@p1", 701, 3)},
		},
		versionErr: map[string]error{},
	}
}

// connect serves h over net.Pipe and returns a client of it.
func connect(t *testing.T, h *handlers.Handlers) *rpc.Client {
	t.Helper()
	cfg := rpc.Config{Logger: zaptest.NewLogger(t), CloseTimeout: 2 * time.Second, SoftwareVersion: "test"}
	srv, err := rpc.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Register(srv); err != nil {
		t.Fatal(err)
	}
	cs, ss := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, ss) }()
	cl, err := rpc.NewClient(context.Background(), cs, cfg)
	if err != nil {
		cancel()
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Close(); err != nil {
			t.Errorf("closing the client: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("server did not return after the test")
		}
		cancel()
	})
	return cl
}

// session serves the fake z to identity of testPolicy.
func session(t *testing.T, z *fakeZFS, identity string) *rpc.Client {
	t.Helper()
	return connect(t, handlers.New(z, policyFor(t, identity), zaptest.NewLogger(t)))
}

// policyFor is identity's filter in testPolicy.
func policyFor(t *testing.T, identity string) *policy.Filter {
	t.Helper()
	file, err := policy.Parse([]byte(testPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flt, err := file.Filter(identity)
	if err != nil {
		t.Fatal(err)
	}
	return flt
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// callError is the *rpc.Error in err, or nil.
func callError(t *testing.T, err error) *rpc.Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *rpc.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a call error", err, err)
	}
	return e
}

// listing calls a listing method and reads its body.
func listing(t *testing.T, cl *rpc.Client, method string, req any) ([]api.Filesystem, []api.Version, *rpc.Error) {
	t.Helper()
	var resp api.ListResponse
	body, err := cl.CallStream(ctxT(t), method, req, &resp)
	if err != nil {
		if body != nil {
			t.Errorf("a body with an error")
			_ = body.Close()
		}
		return nil, nil, callError(t, err)
	}
	if body == nil {
		t.Fatalf("%s: no body", method)
	}
	defer body.Close()
	fs, vs, err := api.ReadListing(body, resp)
	if err != nil {
		t.Fatalf("%s: ReadListing: %v", method, err)
	}
	return fs, vs, nil
}

func apiVersion(v zfs.Version) api.Version {
	return api.Version{Name: v.Name, Type: string(v.Type), GUID: api.GUID(v.GUID), CreateTXG: v.CreateTXG, Creation: v.Creation}
}

func apiVersions(vs []zfs.Version) []api.Version {
	out := []api.Version{}
	for _, v := range vs {
		out = append(out, apiVersion(v))
	}
	return out
}

// normVersions maps nil to empty, for comparisons.
func normVersions(vs []api.Version) []api.Version {
	if vs == nil {
		return []api.Version{}
	}
	return vs
}

func TestRegister(t *testing.T) {
	srv, err := rpc.NewServer(rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := handlers.New(newFake(), nil, nil).Register(srv); err != nil {
		t.Fatal(err)
	}
	want := []string{api.MethodListFilesystems, api.MethodListVersions, api.MethodSend}
	sort.Strings(want)
	if got := srv.Methods(); !reflect.DeepEqual(got, want) {
		t.Errorf("methods %v; want %v", got, want)
	}
}

// TestZFSInterfaceReadOnly guards the read-only promise: the handlers get
// a ZFS that can list and send, and nothing else.
func TestZFSInterfaceReadOnly(t *testing.T) {
	typ := reflect.TypeFor[handlers.ZFS]()
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	want := []string{"EstimateSend", "Features", "ListDatasets", "ListTree", "ListVersions", "Send"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handlers.ZFS has methods %v; want exactly %v (the handlers only read)", got, want)
	}
}

func TestListFilesystems(t *testing.T) {
	z := newFake()
	type fsv struct {
		name, typ string
	}
	tests := []struct {
		identity string
		want     []fsv
	}{
		// Not tank, tank/database (shares the prefix), tank/data/private
		// and below (denied child), tank/vm/disk0 (exact-only key), pool2.
		{"backup", []fsv{{"tank/data", "filesystem"}, {"tank/data/a", "filesystem"}, {"tank/data/a/b", "filesystem"}, {"tank/vm", "filesystem"}}},
		{"all", func() (out []fsv) {
			for _, d := range z.datasets {
				out = append(out, fsv{d.Name, string(d.Type)})
			}
			return out
		}()},
		{"nothing", nil},
	}
	for _, tt := range tests {
		for _, withVersions := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/versions=%t", tt.identity, withVersions), func(t *testing.T) {
				z := newFake()
				cl := session(t, z, tt.identity)
				fs, loose, cerr := listing(t, cl, api.MethodListFilesystems, api.ListFilesystemsRequest{WithVersions: withVersions})
				if cerr != nil {
					t.Fatalf("ListFilesystems: %v", cerr)
				}
				if len(loose) != 0 {
					t.Errorf("loose versions %v", loose)
				}
				var got []fsv
				for _, f := range fs {
					got = append(got, fsv{f.Name, f.Type})
					want := []api.Version{}
					if withVersions {
						want = apiVersions(z.versions[f.Name])
					}
					if !reflect.DeepEqual(normVersions(f.Versions), want) {
						t.Errorf("versions of %s: %+v; want %+v", f.Name, f.Versions, want)
					}
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("listed %v; want %v", got, tt.want)
				}
				wantCalls := []call{{"ListDatasets", ""}}
				if withVersions {
					// One listing per policy root, and none outside them.
					wantCalls = nil
					for _, root := range policyFor(t, tt.identity).Roots() {
						wantCalls = append(wantCalls, call{"ListTree", root})
					}
				}
				if calls := z.Calls(); !reflect.DeepEqual(calls, wantCalls) {
					t.Errorf("zfs calls %v; want %v", calls, wantCalls)
				}
			})
		}
	}
}

func TestListFilesystemsSorted(t *testing.T) {
	z := newFake()
	// zfs's order is not the listing's: the handlers sort by name.
	for i, j := 0, len(z.datasets)-1; i < j; i, j = i+1, j-1 {
		z.datasets[i], z.datasets[j] = z.datasets[j], z.datasets[i]
	}
	cl := session(t, z, "backup")
	fs, _, cerr := listing(t, cl, api.MethodListFilesystems, api.ListFilesystemsRequest{})
	if cerr != nil {
		t.Fatal(cerr)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if want := []string{"tank/data", "tank/data/a", "tank/data/a/b", "tank/vm"}; !reflect.DeepEqual(names, want) {
		t.Errorf("listed %v; want %v", names, want)
	}
}

func TestListFilesystemsZFSError(t *testing.T) {
	for _, withVersions := range []bool{false, true} {
		z := newFake()
		z.listErr = errors.New("zfs list: exit status 1: out of memory")
		cl := session(t, z, "backup")
		_, _, cerr := listing(t, cl, api.MethodListFilesystems, api.ListFilesystemsRequest{WithVersions: withVersions})
		// zfs's own words stay in the server's log: they could name
		// datasets the policy denies.
		if cerr == nil || cerr.Code != rpc.CodeInternal || strings.Contains(cerr.Message, "out of memory") {
			t.Errorf("versions=%t: error %v; want a generic internal error", withVersions, cerr)
		}
	}
}

func TestListFilesystemsParams(t *testing.T) {
	z := newFake()
	cl := session(t, z, "backup")
	var resp api.ListResponse
	err := cl.Call(ctxT(t), api.MethodListFilesystems, map[string]any{"with_versions": true, "recursive": true}, &resp)
	if e := callError(t, err); e == nil || e.Code != rpc.CodeInvalidArgument {
		t.Errorf("unknown param: %v; want invalid_argument", err)
	}
	if calls := z.Calls(); len(calls) != 0 {
		t.Errorf("zfs calls %v for a refused request", calls)
	}
}

// invalidNames are refused before anything reaches zfs.
var invalidNames = []string{
	"",
	"-R",
	"-i foo",
	"-v",
	"tank//a",
	"tank/data/",
	"/tank/data",
	"tank/a@",
	"tank/a@b@c",
	"tank/data\n",
	"tank/data\nx",
	"tank/data\x00",
	"tank/./data",
	"tank/../data",
	"tank/da%ta",
	"tank/data@s1",
	"tank/data#b1",
	"tank/data<",
	strings.Repeat("a", 256),
}

func TestListVersions(t *testing.T) {
	notFound := func(ds string) string { return fmt.Sprintf("dataset %q does not exist", ds) }
	type tc struct {
		name     string
		identity string
		dataset  string
		code     rpc.Code // "" for success
		message  string   // exact, when code is not_found
		zfsCalls []call
	}
	tests := []tc{
		// Every name below a policy root is looked up in one listing of
		// that root, then the policy decides; only an allowed dataset that
		// exists has its versions listed.
		{"allowed", "backup", "tank/data", "", "", []call{{"ListDatasets", "tank/data"}, {"ListVersions", "tank/data"}}},
		{"allowed below", "backup", "tank/data/a", "", "", []call{{"ListDatasets", "tank/data"}, {"ListVersions", "tank/data/a"}}},
		{"allowed no versions", "backup", "tank/data/a/b", "", "", []call{{"ListDatasets", "tank/data"}, {"ListVersions", "tank/data/a/b"}}},
		{"allowed exact", "backup", "tank/vm", "", "", []call{{"ListDatasets", "tank/vm"}, {"ListVersions", "tank/vm"}}},
		{"allowed nonexistent", "backup", "tank/data/nope", rpc.CodeNotFound, notFound("tank/data/nope"), []call{{"ListDatasets", "tank/data"}}},
		// Below no root: denied whatever exists, without zfs.
		{"denied sibling prefix", "backup", "tank/database", rpc.CodeNotFound, notFound("tank/database"), nil},
		// Below a root: the same listing as for a name that does not exist.
		{"denied child", "backup", "tank/data/private", rpc.CodeNotFound, notFound("tank/data/private"), []call{{"ListDatasets", "tank/data"}}},
		{"denied below child", "backup", "tank/data/private/x", rpc.CodeNotFound, notFound("tank/data/private/x"), []call{{"ListDatasets", "tank/data"}}},
		{"denied below exact", "backup", "tank/vm/disk0", rpc.CodeNotFound, notFound("tank/vm/disk0"), []call{{"ListDatasets", "tank/vm"}}},
		{"denied parent", "backup", "tank", rpc.CodeNotFound, notFound("tank"), nil},
		{"denied other pool", "backup", "pool2/x", rpc.CodeNotFound, notFound("pool2/x"), nil},
		{"denied nonexistent", "backup", "tank/nope", rpc.CodeNotFound, notFound("tank/nope"), nil},
	}
	for _, name := range invalidNames {
		tests = append(tests, tc{"invalid " + name, "all", name, rpc.CodeInvalidArgument, "", nil})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newFake()
			cl := session(t, z, tt.identity)
			fs, vs, cerr := listing(t, cl, api.MethodListVersions, api.ListVersionsRequest{Dataset: tt.dataset})
			switch {
			case tt.code == "" && cerr != nil:
				t.Fatalf("ListVersions(%q): %v", tt.dataset, cerr)
			case tt.code == "":
				if len(fs) != 0 {
					t.Errorf("filesystems in a version listing: %v", fs)
				}
				if want := apiVersions(z.versions[tt.dataset]); !reflect.DeepEqual(normVersions(vs), want) {
					t.Errorf("versions %+v; want %+v", vs, want)
				}
			case cerr == nil:
				t.Fatalf("ListVersions(%q) succeeded; want %s", tt.dataset, tt.code)
			case cerr.Code != tt.code:
				t.Errorf("ListVersions(%q): %v; want code %s", tt.dataset, cerr, tt.code)
			case tt.message != "" && cerr.Message != tt.message:
				t.Errorf("ListVersions(%q): message %q; want %q", tt.dataset, cerr.Message, tt.message)
			}
			if calls := z.Calls(); !reflect.DeepEqual(calls, tt.zfsCalls) {
				t.Errorf("zfs calls %v; want %v", calls, tt.zfsCalls)
			}
		})
	}
}

func TestListVersionsZFSError(t *testing.T) {
	z := newFake()
	z.versionErr["tank/data"] = errors.New("zfs get: exit status 1: pool I/O is currently suspended")
	cl := session(t, z, "backup")
	_, _, cerr := listing(t, cl, api.MethodListVersions, api.ListVersionsRequest{Dataset: "tank/data"})
	if cerr == nil || cerr.Code != rpc.CodeInternal || !strings.Contains(cerr.Message, "suspended") {
		t.Errorf("error %v; want internal with zfs's message", cerr)
	}
}

// lookupCalls are the zfs calls that look dataset up for identity: one
// listing of the policy root it is or lies below (none below no root),
// then, for an allowed dataset that exists, its versions.
func lookupCalls(t *testing.T, z *fakeZFS, identity, dataset string) []call {
	t.Helper()
	flt := policyFor(t, identity)
	for _, root := range flt.Roots() {
		if dataset != root && !strings.HasPrefix(dataset, root+"/") {
			continue
		}
		calls := []call{{"ListDatasets", root}}
		if flt.Allows(dataset) && z.exists(dataset) {
			calls = append(calls, call{"ListVersions", dataset})
		}
		return calls
	}
	return nil
}

// probe is a way to ask about a dataset: the caller sees the error, and
// nothing else.
type probe struct {
	name string
	do   func(t *testing.T, cl *rpc.Client, dataset string) error
}

var probes = []probe{
	{"ListVersions", func(t *testing.T, cl *rpc.Client, ds string) error {
		var resp api.ListResponse
		return cl.Call(ctxT(t), api.MethodListVersions, api.ListVersionsRequest{Dataset: ds}, &resp)
	}},
	{"Send", func(t *testing.T, cl *rpc.Client, ds string) error {
		var resp api.SendResponse
		return cl.Call(ctxT(t), api.MethodSend, api.SendRequest{Dataset: ds, To: ds + "@s1"}, &resp)
	}},
	{"Send incremental", func(t *testing.T, cl *rpc.Client, ds string) error {
		var resp api.SendResponse
		return cl.Call(ctxT(t), api.MethodSend, api.SendRequest{Dataset: ds, To: ds + "@s2", From: ds + "#b1", ToGUID: 5, FromGUID: 6}, &resp)
	}},
}

// TestDeniedLooksNonexistent asks about one name that exists but is denied,
// does not exist and is denied, and does not exist but is allowed: the
// three answers must be byte-identical on the wire.
func TestDeniedLooksNonexistent(t *testing.T) {
	for _, ds := range []string{"tank/data/private/x", "tank/database", "tank/vm/disk0"} {
		for _, p := range probes {
			t.Run(p.name+"/"+ds, func(t *testing.T) {
				type outcome struct {
					what  string
					ident string
					exist bool
				}
				var answers [][]byte
				var calls [][]call
				outcomes := []outcome{{"exists, denied", "backup", true}, {"absent, denied", "backup", false}, {"absent, allowed", "all", false}}
				for _, o := range outcomes {
					z := newFake()
					if !o.exist {
						var keep []zfs.Dataset
						for _, d := range z.datasets {
							if d.Name != ds {
								keep = append(keep, d)
							}
						}
						z.datasets = keep
						delete(z.versions, ds)
					}
					cl := session(t, z, o.ident)
					e := callError(t, p.do(t, cl, ds))
					if e == nil {
						t.Fatalf("%s: the call succeeded", o.what)
					}
					wire, err := json.Marshal(e)
					if err != nil {
						t.Fatal(err)
					}
					answers = append(answers, wire)
					want := fmt.Sprintf(`{"code":"not_found","message":"dataset %s does not exist"}`, strings.ReplaceAll(fmt.Sprintf("%q", ds), `"`, `\"`))
					if string(wire) != want {
						t.Errorf("%s: answer %s; want %s", o.what, wire, want)
					}
					if s := z.sendCalls(); len(s) != 0 {
						t.Errorf("%s: zfs send called: %v", o.what, s)
					}
					for _, c := range z.Calls() {
						if c.Method != "ListDatasets" || c.Arg == ds {
							t.Errorf("%s: zfs call %v; want only listings of a policy root", o.what, c)
						}
					}
					calls = append(calls, z.Calls())
				}
				// Denied and existing, or not existing: the same zfs calls.
				if !reflect.DeepEqual(calls[0], calls[1]) {
					t.Errorf("zfs calls %v for %s, %v for %s", calls[0], outcomes[0].what, calls[1], outcomes[1].what)
				}
				for i := 1; i < len(answers); i++ {
					if !bytes.Equal(answers[i], answers[0]) {
						t.Errorf("%s answers %s, %s answers %s", outcomes[i].what, answers[i], outcomes[0].what, answers[0])
					}
				}
			})
		}
	}
}

func TestSend(t *testing.T) {
	z0 := newFake()
	v := func(name string) zfs.Version {
		ds, _, _ := strings.Cut(strings.ReplaceAll(name, "#", "@"), "@")
		for _, v := range z0.versions[ds] {
			if v.Name == name {
				return v
			}
		}
		t.Fatalf("no version %s in the fake", name)
		return zfs.Version{}
	}
	tests := []struct {
		name string
		req  api.SendRequest
		from string // the version the response names as From
	}{
		{"full", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2"}, ""},
		{"full first", api.SendRequest{Dataset: "tank/data", To: "tank/data@s1"}, ""},
		{"full matching guid", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", ToGUID: 103}, ""},
		{"incremental", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/data@s2"}, "tank/data@s2"},
		{"incremental guids", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", ToGUID: 103, From: "tank/data@s1", FromGUID: 101}, "tank/data@s1"},
		{"intermediates", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/data@s1", Intermediates: true}, "tank/data@s1"},
		{"from bookmark", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data#b1", FromGUID: 101}, "tank/data#b1"},
		{"exact key", api.SendRequest{Dataset: "tank/vm", To: "tank/vm@v1"}, ""},
		{"below subtree", api.SendRequest{Dataset: "tank/data/a", To: "tank/data/a@s1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newFake()
			cl := session(t, z, "backup")
			var resp api.SendResponse
			body, err := cl.CallStream(ctxT(t), api.MethodSend, tt.req, &resp)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if body == nil {
				t.Fatal("Send: no body")
			}
			got, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			_ = body.Close()
			opts := zfs.SendOptions{Snapshot: tt.req.To, From: tt.req.From, Intermediates: tt.req.Intermediates}
			if want := streamBytes(opts); !bytes.Equal(got, want) {
				t.Errorf("stream of %d bytes is not the fake's %d bytes", len(got), len(want))
			}
			if want := apiVersion(v(tt.req.To)); !reflect.DeepEqual(resp.To, want) {
				t.Errorf("response To %+v; want %+v", resp.To, want)
			}
			switch {
			case tt.from == "" && resp.From != nil:
				t.Errorf("response From %+v; want none", *resp.From)
			case tt.from != "" && resp.From == nil:
				t.Errorf("response From missing; want %s", tt.from)
			case tt.from != "":
				if want := apiVersion(v(tt.from)); !reflect.DeepEqual(*resp.From, want) {
					t.Errorf("response From %+v; want %+v", *resp.From, want)
				}
			}
			if resp.EstimatedBytes != z.estimate {
				t.Errorf("response EstimatedBytes %d; want the dry run's %d", resp.EstimatedBytes, z.estimate)
			}
			wantCalls := append(lookupCalls(t, z, "backup", tt.req.Dataset), call{"EstimateSend", opts}, call{"Send", opts})
			if calls := z.Calls(); !reflect.DeepEqual(calls, wantCalls) {
				t.Errorf("zfs calls %v; want %v", calls, wantCalls)
			}
			z.waitStreamsClosed(t, 1)
		})
	}
}

func TestSendRefused(t *testing.T) {
	notFound := func(ds string) string { return fmt.Sprintf("dataset %q does not exist", ds) }
	type tc struct {
		name     string
		identity string
		req      api.SendRequest
		code     rpc.Code
		message  string // exact; "" to skip
		contains string // in the message; "" to skip
		listed   bool   // the names are valid, so the dataset is looked up (lookupCalls)
	}
	tests := []tc{
		// Policy and existence.
		{"denied sibling prefix", "backup", api.SendRequest{Dataset: "tank/database", To: "tank/database@s1"}, rpc.CodeNotFound, notFound("tank/database"), "", true},
		{"denied child", "backup", api.SendRequest{Dataset: "tank/data/private", To: "tank/data/private@s1"}, rpc.CodeNotFound, notFound("tank/data/private"), "", true},
		{"denied below exact", "backup", api.SendRequest{Dataset: "tank/vm/disk0", To: "tank/vm/disk0@d1"}, rpc.CodeNotFound, notFound("tank/vm/disk0"), "", true},
		{"denied other pool", "backup", api.SendRequest{Dataset: "pool2/x", To: "pool2/x@p1"}, rpc.CodeNotFound, notFound("pool2/x"), "", true},
		{"allowed nonexistent dataset", "backup", api.SendRequest{Dataset: "tank/data/nope", To: "tank/data/nope@s1"}, rpc.CodeNotFound, notFound("tank/data/nope"), "", true},
		{"to nonexistent", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@nope"}, rpc.CodeNotFound, `"tank/data@nope" does not exist`, "", true},
		{"from nonexistent", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data@nope"}, rpc.CodeNotFound, `"tank/data@nope" does not exist`, "", true},
		{"from bookmark nonexistent", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data#nope"}, rpc.CodeNotFound, `"tank/data#nope" does not exist`, "", true},

		// GUIDs.
		{"to guid mismatch", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", ToGUID: 999}, rpc.CodeNotFound, "", "destroyed and re-created", true},
		{"to guid of another snapshot", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", ToGUID: 103}, rpc.CodeNotFound, "", "guid 102, not 103", true},
		{"from guid mismatch", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/data@s1", FromGUID: 102}, rpc.CodeNotFound, "", "destroyed and re-created", true},
		{"from bookmark guid mismatch", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/data#b1", FromGUID: 1}, rpc.CodeNotFound, "", "destroyed and re-created", true},

		// Order.
		{"from newer", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data@s3"}, rpc.CodeInvalidArgument, "", "not older", true},
		{"from is to", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data@s2"}, rpc.CodeInvalidArgument, "", "", true},
		{"from bookmark of to", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s1", From: "tank/data#b1"}, rpc.CodeInvalidArgument, "", "not older", true},

		// Names of another dataset, even an allowed one.
		{"from of an allowed child", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/data/a@s1"}, rpc.CodeInvalidArgument, "", "not a snapshot or bookmark of dataset", false},
		{"from of an allowed sibling", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank/vm@v1"}, rpc.CodeInvalidArgument, "", "not a snapshot or bookmark of dataset", false},
		{"from of the parent", "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s3", From: "tank@root"}, rpc.CodeInvalidArgument, "", "not a snapshot or bookmark of dataset", false},
		{"to of an allowed child", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data/a@s1"}, rpc.CodeInvalidArgument, "", "not a snapshot or bookmark of dataset", false},
		{"to of a denied dataset", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/database@s1"}, rpc.CodeInvalidArgument, "", "not a snapshot or bookmark of dataset", false},
		{"to of an allowed dataset, dataset denied", "backup", api.SendRequest{Dataset: "tank/database", To: "tank/data@s1"}, rpc.CodeInvalidArgument, "", "", false},
		{"to of a prefix sibling", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/database@s1"}, rpc.CodeInvalidArgument, "", "", false},
		{"no dataset", "backup", api.SendRequest{To: "tank/data@s1"}, rpc.CodeInvalidArgument, "", "", false},

		// Kinds.
		{"to is a bookmark", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data#b1"}, rpc.CodeInvalidArgument, "", "", false},
		{"to is a dataset", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data"}, rpc.CodeInvalidArgument, "", "", false},
		{"from is a dataset", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data"}, rpc.CodeInvalidArgument, "", "", false},
		{"no to", "backup", api.SendRequest{Dataset: "tank/data"}, rpc.CodeInvalidArgument, "", "", false},
		{"intermediates without from", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", Intermediates: true}, rpc.CodeInvalidArgument, "", "", false},
		{"intermediates from a bookmark", "backup", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data#b1", Intermediates: true}, rpc.CodeInvalidArgument, "", "", false},
	}
	for _, name := range invalidNames {
		// As the dataset, as to, as from; with the "all" identity, so that
		// only validation can refuse them.
		tests = append(tests,
			tc{"invalid dataset " + name, "all", api.SendRequest{Dataset: name, To: "tank/data@s2"}, rpc.CodeInvalidArgument, "", "", false},
			tc{"invalid to@ " + name, "all", api.SendRequest{Dataset: name, To: name + "@s1"}, rpc.CodeInvalidArgument, "", "", false},
		)
		if name == "tank/data@s1" || name == "tank/data#b1" {
			continue // invalid datasets, valid versions
		}
		tests = append(tests,
			tc{"invalid to " + name, "all", api.SendRequest{Dataset: "tank/data", To: name}, rpc.CodeInvalidArgument, "", "", false})
		if name != "" { // From "" means a full send
			tests = append(tests,
				tc{"invalid from " + name, "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: name}, rpc.CodeInvalidArgument, "", "", false})
		}
	}
	for _, opt := range []string{"-R", "-i tank/data@s1", "-I", "--props", "-w tank/data@s1", "-Ri tank/data@s1"} {
		tests = append(tests,
			tc{"option to " + opt, "all", api.SendRequest{Dataset: "tank/data", To: opt}, rpc.CodeInvalidArgument, "", "", false},
			tc{"option to@ " + opt, "all", api.SendRequest{Dataset: opt, To: opt + "@s1"}, rpc.CodeInvalidArgument, "", "", false},
			tc{"option from " + opt, "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: opt}, rpc.CodeInvalidArgument, "", "", false},
		)
	}
	for _, opt := range []string{"-i tank/data@s1", "-w tank/data@s1"} {
		tests = append(tests,
			tc{"option after to " + opt, "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2 " + opt}, rpc.CodeInvalidArgument, "", "", false},
			tc{"option after from " + opt, "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data@s1 " + opt}, rpc.CodeInvalidArgument, "", "", false},
		)
	}
	// Space is a valid character in ZFS names, and a name is one argument
	// of zfs: "s1 -R" is a snapshot name, which does not exist.
	tests = append(tests,
		tc{"space in from", "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2", From: "tank/data@s1 -R"}, rpc.CodeNotFound, `"tank/data@s1 -R" does not exist`, "", true},
		tc{"space in to", "all", api.SendRequest{Dataset: "tank/data", To: "tank/data@s2 -R"}, rpc.CodeNotFound, `"tank/data@s2 -R" does not exist`, "", true},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := newFake()
			cl := session(t, z, tt.identity)
			var resp api.SendResponse
			body, err := cl.CallStream(ctxT(t), api.MethodSend, tt.req, &resp)
			if body != nil {
				_ = body.Close()
				t.Fatalf("Send(%+v) sent a stream", tt.req)
			}
			e := callError(t, err)
			switch {
			case e == nil:
				t.Fatalf("Send(%+v) succeeded; want %s", tt.req, tt.code)
			case e.Code != tt.code:
				t.Errorf("Send(%+v): %v; want code %s", tt.req, e, tt.code)
			case tt.message != "" && e.Message != tt.message:
				t.Errorf("Send(%+v): message %q; want %q", tt.req, e.Message, tt.message)
			case tt.contains != "" && !strings.Contains(e.Message, tt.contains):
				t.Errorf("Send(%+v): message %q; want it to contain %q", tt.req, e.Message, tt.contains)
			}
			if s := z.sendCalls(); len(s) != 0 {
				t.Errorf("zfs send was called: %+v", s)
			}
			calls := z.Calls()
			if tt.listed {
				if want := lookupCalls(t, z, tt.identity, tt.req.Dataset); !reflect.DeepEqual(calls, want) {
					t.Errorf("zfs calls %v; want %v", calls, want)
				}
			} else if len(calls) != 0 {
				t.Errorf("zfs calls %v; want none", calls)
			}
		})
	}
}

// TestSendBadParams: the rpc layer refuses malformed params before the
// handler runs, so nothing reaches zfs.
func TestSendBadParams(t *testing.T) {
	for _, params := range []map[string]any{
		{"dataset": "tank/data", "to": "tank/data@s2", "to_guid": 102},
		{"dataset": "tank/data", "to": "tank/data@s2", "to_guid": "-1"},
		{"dataset": "tank/data", "to": "tank/data@s2", "from_guid": "18446744073709551616"},
		{"dataset": "tank/data", "to": "tank/data@s2", "recursive": true},
		{"dataset": "tank/data", "to": "tank/data@s2", "props": true},
		{"dataset": 1, "to": "tank/data@s2"},
	} {
		z := newFake()
		cl := session(t, z, "backup")
		err := cl.Call(ctxT(t), api.MethodSend, params, nil)
		if e := callError(t, err); e == nil || e.Code != rpc.CodeInvalidArgument {
			t.Errorf("Send(%v): %v; want invalid_argument", params, err)
		}
		if calls := z.Calls(); len(calls) != 0 {
			t.Errorf("Send(%v): zfs calls %v", params, calls)
		}
	}
}

func TestSendZFSFailsToStart(t *testing.T) {
	z := newFake()
	z.sendErr = errors.New("zfs send: exit status 1: cannot hold: permission denied")
	cl := session(t, z, "backup")
	body, err := cl.CallStream(ctxT(t), api.MethodSend, api.SendRequest{Dataset: "tank/data", To: "tank/data@s2"}, nil)
	if body != nil {
		_ = body.Close()
		t.Fatal("a stream")
	}
	if e := callError(t, err); e == nil || e.Code != rpc.CodeInternal || !strings.Contains(e.Message, "cannot hold") {
		t.Errorf("error %v; want internal with zfs's message", err)
	}
}

// TestSendStreamFails: zfs send dying mid-stream reaches the client as an
// error of the body, after the bytes sent so far, never as a clean EOF.
func TestSendStreamFails(t *testing.T) {
	for _, n := range []int{1, 1000, 1 << 20, 1<<20 + 1, 2<<20 + 12345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			z := newFake()
			z.failAfter = n
			z.streamErr = errors.New("zfs send tank/data@s2: exit status 1: I/O error")
			cl := session(t, z, "backup")
			var resp api.SendResponse
			req := api.SendRequest{Dataset: "tank/data", To: "tank/data@s2"}
			body, err := cl.CallStream(ctxT(t), api.MethodSend, req, &resp)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := io.ReadAll(body)
			if err == nil {
				t.Fatalf("the failed stream read as complete (%d bytes)", len(got))
			}
			if e := callError(t, err); e.Code != rpc.CodeInternal || !strings.Contains(e.Message, "I/O error") {
				t.Errorf("body error %v; want internal with zfs's message", err)
			}
			if want := streamBytes(zfs.SendOptions{Snapshot: req.To})[:n]; !bytes.Equal(got, want) {
				t.Errorf("got %d bytes before the error; want the stream's first %d", len(got), n)
			}
			if _, err := body.Read(make([]byte, 1)); err == nil || err == io.EOF {
				t.Errorf("Read after the error: %v; want the error again", err)
			}
			_ = body.Close()

			// The session survives a failed call.
			if _, _, cerr := listing(t, cl, api.MethodListVersions, api.ListVersionsRequest{Dataset: "tank/data"}); cerr != nil {
				t.Errorf("ListVersions after the failed stream: %v", cerr)
			}
		})
	}
}

// TestSendCanceled: a client that stops reading cancels zfs send; the
// server closes the stream.
func TestSendCanceled(t *testing.T) {
	z := newFake()
	cl := session(t, z, "backup")
	body, err := cl.CallStream(ctxT(t), api.MethodSend, api.SendRequest{Dataset: "tank/data", To: "tank/data@s2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(body, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := body.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	z.waitStreamsClosed(t, 1)
}
