package fleet

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// fakeSource lists datasets without snapshots (nothing to transfer), or
// runs list first; encrypted datasets have a snapshot, and their sends
// are recorded and fail.
type fakeSource struct {
	names     []string
	encrypted []string
	list      func(ctx context.Context) error
	mu        sync.Mutex
	sends     []api.SendRequest
}

func (f *fakeSource) ListFilesystems(ctx context.Context, _ bool) ([]api.Filesystem, error) {
	if f.list != nil {
		if err := f.list(ctx); err != nil {
			return nil, err
		}
	}
	var out []api.Filesystem
	for _, n := range f.names {
		out = append(out, api.Filesystem{Name: n, Type: "filesystem"})
	}
	for _, n := range f.encrypted {
		out = append(out, api.Filesystem{Name: n, Type: "filesystem", Encrypted: true,
			Versions: []api.Version{{Name: n + "@s1", Type: api.TypeSnapshot, GUID: 7, CreateTXG: 1, Creation: time.Now()}}})
	}
	return out, nil
}

func (f *fakeSource) Send(_ context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	f.mu.Lock()
	f.sends = append(f.sends, req)
	f.mu.Unlock()
	return nil, nil, errors.New("no sends here")
}

func (f *fakeSource) Confirm(context.Context, api.ConfirmRequest) error {
	return errors.New("unimplemented")
}

// emptyTarget has the pool of every root and nothing in it.
type emptyTarget struct{ replication.Target }

func (emptyTarget) Features(context.Context) (zfs.Features, error) { return zfs.Features{}, nil }
func (emptyTarget) ListTree(_ context.Context, root string) ([]zfs.DatasetVersions, error) {
	return nil, errors.Wrap(zfs.ErrNotFound, root)
}
func (emptyTarget) Exists(context.Context, string) (bool, error) { return true, nil }

func source(name string, timeout time.Duration) pullconfig.Source {
	return pullconfig.Source{Name: name, SSH: name, Root: "bk/" + name, Timeout: timeout}
}

func TestRunOutcomesAndState(t *testing.T) {
	dir := t.TempDir()
	sources := []pullconfig.Source{
		source("ok", time.Minute),
		source("refused", time.Minute),
		source("hangs", 50*time.Millisecond),
		source("lost", time.Minute),
		source("broken", time.Minute),
	}
	conns := map[string]*fakeSource{
		"ok": {names: []string{"tank/a", "tank/b"}},
		// Hangs until its timeout ends it.
		"hangs": {list: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		// The session breaks before anything was planned.
		"lost": {list: func(context.Context) error { return errors.WithMessage(rpc.ErrPeerGone, "listing") }},
		// The listing fails on the source (a call error, not the session).
		"broken": {list: func(context.Context) error { return errors.New("listing datasets failed") }},
	}
	var mu sync.Mutex
	var done []string
	results := Run(context.Background(), sources, Options{
		Jobs: 2,
		Connect: func(ctx context.Context, s pullconfig.Source) (replication.Source, func() error, error) {
			if s.Name == "refused" {
				return nil, nil, errors.New("ssh refused: connection refused")
			}
			return conns[s.Name], func() error { return nil }, nil
		},
		Target:    emptyTarget{},
		StatePath: func(name string) string { return filepath.Join(dir, name+".json") },
		Done: func(r Result) {
			mu.Lock()
			done = append(done, r.Source.Name)
			mu.Unlock()
		},
	})
	want := map[string]pullstate.Outcome{"ok": pullstate.OK, "refused": pullstate.Unreachable, "hangs": pullstate.TimedOut,
		"lost": pullstate.Unreachable, "broken": pullstate.Failed}
	if len(results) != len(sources) || len(done) != len(sources) {
		t.Fatalf("%d results, %d Done calls, want %d", len(results), len(done), len(sources))
	}
	for i, r := range results {
		if r.Source.Name != sources[i].Name {
			t.Errorf("result %d is %s, want %s", i, r.Source.Name, sources[i].Name)
		}
		if r.Outcome != want[r.Source.Name] {
			t.Errorf("%s: outcome %s (%v), want %s", r.Source.Name, r.Outcome, r.Err, want[r.Source.Name])
		}
		if (r.Err == nil) != (r.Outcome == pullstate.OK) {
			t.Errorf("%s: outcome %s with error %v", r.Source.Name, r.Outcome, r.Err)
		}
		st, err := pullstate.Load(filepath.Join(dir, r.Source.Name+".json"))
		if err != nil || st == nil || r.StateErr != nil {
			t.Fatalf("%s: state %v, %v, %v", r.Source.Name, st, err, r.StateErr)
		}
		if st.Outcome != r.Outcome || st.Root != "bk/"+r.Source.Name || (st.Error == "") != (r.Err == nil) {
			t.Errorf("%s: state %+v", r.Source.Name, st)
		}
	}
	if err := results[2].Err; !strings.Contains(err.Error(), "timed out after 50ms (the source's timeout)") {
		t.Errorf("timeout error: %v", err)
	}
	st, _ := pullstate.Load(filepath.Join(dir, "ok.json"))
	if len(st.Datasets) != 2 || st.Datasets[0].Outcome != replication.OutcomeNoSnapshots || st.LastSuccess.IsZero() {
		t.Errorf("ok's state: %+v", st)
	}
}

// Sources run in parallel up to Jobs and never beyond: "a" and "b" each
// wait inside their run until both are in it, which only works with two
// at a time (with one, they would wait for their timeout).
func TestRunParallelUpToJobs(t *testing.T) {
	var mu sync.Mutex
	active, most, arrived := 0, 0, 0
	bothIn := make(chan struct{})
	meet := func(ctx context.Context) error {
		mu.Lock()
		if arrived++; arrived == 2 {
			close(bothIn)
		}
		mu.Unlock()
		select {
		case <-bothIn:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	conns := map[string]*fakeSource{"a": {list: meet}, "b": {list: meet}, "c": {}, "d": {}}
	var sources []pullconfig.Source
	for _, n := range []string{"a", "b", "c", "d"} {
		sources = append(sources, source(n, 5*time.Minute))
	}
	results := Run(context.Background(), sources, Options{
		Jobs: 2,
		Connect: func(_ context.Context, s pullconfig.Source) (replication.Source, func() error, error) {
			mu.Lock()
			active++
			most = max(most, active)
			mu.Unlock()
			return conns[s.Name], func() error {
				mu.Lock()
				active--
				mu.Unlock()
				return nil
			}, nil
		},
		Target: emptyTarget{},
	})
	for _, r := range results {
		if r.Outcome != pullstate.OK {
			t.Errorf("%s: %s %v", r.Source.Name, r.Outcome, r.Err)
		}
	}
	if most != 2 {
		t.Errorf("at most %d sources ran at once, want exactly 2", most)
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	results := Run(ctx, []pullconfig.Source{source("a", time.Minute)}, Options{
		Jobs: 1,
		Connect: func(ctx context.Context, s pullconfig.Source) (replication.Source, func() error, error) {
			return nil, nil, ctx.Err()
		},
		Target: emptyTarget{},
	})
	if results[0].Outcome == pullstate.OK || results[0].Outcome == pullstate.TimedOut {
		t.Errorf("canceled run: %s %v", results[0].Outcome, results[0].Err)
	}
}

// raw: true asks the source for encrypted datasets raw; Options.Raw does
// for every source.
func TestRunRaw(t *testing.T) {
	for _, tt := range []struct {
		name           string
		sourceRaw, all bool
		wantRaw        bool
	}{
		{"neither", false, false, false},
		{"source says raw", true, false, true},
		{"--raw", false, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{encrypted: []string{"tank/secret"}}
			s := source("enc", time.Minute)
			s.Raw = tt.sourceRaw
			Run(context.Background(), []pullconfig.Source{s}, Options{
				Jobs: 1, Raw: tt.all, Target: emptyTarget{},
				Connect: func(context.Context, pullconfig.Source) (replication.Source, func() error, error) {
					return src, func() error { return nil }, nil
				},
			})
			if len(src.sends) != 1 || src.sends[0].Raw != tt.wantRaw {
				t.Errorf("sends %+v, want one with Raw %t", src.sends, tt.wantRaw)
			}
		})
	}
}
