package replication

import (
	"context"
	"strings"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/sendstream/streamtest"
	"github.com/zrep/zrep/zfs"
)

// encrypted is fsys of an encrypted dataset.
func encrypted(name string, versions ...api.Version) api.Filesystem {
	fs := fsys(name, versions...)
	fs.Encrypted = true
	return fs
}

// TestRunRaw: which datasets are asked for raw, and that a raw request
// answered in plaintext is refused.
func TestRunRaw(t *testing.T) {
	e1, p1 := snap("tank/enc", "s1", 11, 10), snap("tank/plain", "s1", 21, 10)
	const te = runRoot + "/tank/enc"
	// How the target of tank/enc exists before the run.
	const (
		noTarget          = iota
		receivedRaw       // encrypted, its own encryption root
		receivedRawTree   // encrypted with a raw parent's key (zfs change-key -i)
		receivedDecrypted // encrypted with the backup root's key
	)
	tests := []struct {
		name    string
		opts    Options
		target  int
		wantRaw map[string]bool
		failed  map[string]string
	}{
		{"--raw: encrypted datasets raw, others not", Options{Raw: true}, noTarget, map[string]bool{"tank/enc": true, "tank/plain": false}, nil},
		{"no --raw: plaintext", Options{}, noTarget, map[string]bool{"tank/enc": false, "tank/plain": false}, nil},
		{"no --raw, but received raw before: stays raw", Options{}, receivedRaw, map[string]bool{"tank/enc": true, "tank/plain": false}, nil},
		{"no --raw, received raw, inheriting a raw parent's key: stays raw", Options{}, receivedRawTree, map[string]bool{"tank/enc": true, "tank/plain": false}, nil},
		{"no --raw, received decrypted into an encrypted root: stays decrypted", Options{}, receivedDecrypted, map[string]bool{"tank/enc": false, "tank/plain": false}, nil},
		{"a raw_only sink: encrypted datasets only", Options{RequireRaw: true}, noTarget, map[string]bool{"tank/enc": true},
			map[string]string{"tank/plain": "this sink takes encrypted datasets only, raw (raw_only)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(encrypted("tank/enc", e1), fsys("tank/plain", p1))
			target := map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil}
			if tt.target != noTarget {
				src.fss[0].Versions = append(src.fss[0].Versions, snap("tank/enc", "s2", 12, 20))
				target[te] = []zfs.Version{tsnap(te, "s1", 11, 5)}
			}
			dst := newFakeTarget(target)
			dst.encrypted[te] = tt.target != noTarget
			dst.keyRoot[te] = map[int]string{receivedRaw: te, receivedRawTree: runRoot + "/tank", receivedDecrypted: runRoot}[tt.target]
			tt.opts.Root = runRoot
			sum, err := Run(context.Background(), src, dst, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range sum.Results {
				if want, ok := tt.failed[r.Dataset]; ok {
					if r.Outcome != OutcomeFailed || !strings.Contains(r.Error, want) {
						t.Errorf("%s: %s %q, want failed: %q", r.Dataset, r.Outcome, r.Error, want)
					}
				} else if r.Outcome != OutcomeReplicated {
					t.Errorf("%s: %s %s", r.Dataset, r.Outcome, r.Error)
				}
			}
			got := map[string]bool{}
			for _, req := range src.sends {
				got[req.Dataset] = req.Raw
			}
			for ds, want := range tt.wantRaw {
				if got[ds] != want {
					t.Errorf("%s asked raw: %v, want %v", ds, got[ds], want)
				}
			}
		})
	}

	t.Run("a raw request answered in plaintext", func(t *testing.T) {
		src := newFakeSource(encrypted("tank/enc", e1))
		src.forge["tank/enc@s1"] = streamtest.Stream("tank/enc", 0, []streamtest.Snap{{Name: "s1", GUID: 11}}, false, 100)
		dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil})
		sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, Raw: true})
		if err != nil {
			t.Fatal(err)
		}
		if r := sum.Results[0]; r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "a plaintext stream of tank/enc@s1 where a raw (encrypted) one was asked for") {
			t.Errorf("%s: %s", r.Outcome, r.Error)
		}
		if len(dst.recvs) != 0 {
			t.Errorf("zfs receive ran")
		}
	})
}

// TestRunAsksForStreamFlags: -L -e -c are asked for where the local zfs,
// which receives them, has them.
func TestRunAsksForStreamFlags(t *testing.T) {
	for _, has := range []bool{false, true} {
		src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10)))
		dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil})
		dst.features.SendLargeBlocks, dst.features.SendEmbedded, dst.features.SendCompressed = has, has, has
		if _, err := Run(context.Background(), src, dst, Options{Root: runRoot}); err != nil {
			t.Fatal(err)
		}
		req := src.sends[0]
		if req.LargeBlocks != has || req.Embedded != has || req.Compressed != has {
			t.Errorf("local zfs has them %v: asked %+v", has, req)
		}
	}
}
