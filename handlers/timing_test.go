package handlers_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// zfsProcessTime is how long each run of the fake zfs takes, on top of
// starting a shell: zfs-fuse's zfs get takes about 12 ms on the
// development machine.
const zfsProcessTime = "0.015"

// slowZFS writes a stand-in for the zfs command that logs each run's
// arguments (one line per run) to log and takes zfsProcessTime. It knows
// pool/data, pool/data/a and pool/data/private, which have no snapshots.
func slowZFS(t *testing.T) (bin, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, log = filepath.Join(dir, "zfs"), filepath.Join(dir, "zfs.log")
	usage := "usage: zfs command args ...\n" +
		"\tlist [-rH][-d max] [-o property[,...]] [-t type[,...]] [filesystem|volume|snapshot] ...\n" +
		"\tget [-rHp] [-d max] [-o field[,...]] <property[,...]> [filesystem|volume|snapshot] ...\n" +
		"\tsend [-Rp] [-[iI] snapshot] <snapshot>\n" +
		"\treceive [-vnF] <filesystem|volume|snapshot>\n"
	script := fmt.Sprintf(`#!/bin/sh
if [ $# -eq 0 ]; then printf '%%s' '%s' >&2; exit 2; fi
echo "$*" >> '%s'
sleep %s
for last; do :; done
if [ "$1" = list ] && [ "$last" = pool/data ]; then
	printf 'pool/data\tfilesystem\npool/data/a\tfilesystem\npool/data/private\tfilesystem\n'
	exit 0
fi
case "$last" in
pool/data|pool/data/a|pool/data/private)
	printf '%%s\ttype\tfilesystem\n%%s\tguid\t1\n%%s\tcreatetxg\t1\n%%s\tcreation\t1700000000\n' "$last" "$last" "$last" "$last"
	exit 0 ;;
esac
echo "cannot open '$last': dataset does not exist" >&2
exit 1
`, usage, log, zfsProcessTime)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

// TestDeniedAndMissingTakeTheSamePath: inside an allowed subtree, a name
// the policy hides (pool/data/private, which exists) and a name that does
// not exist (pool/data/privat) must cost the same, or the time of an
// answer tells which names the policy hides (issue 8, finding 3). The
// handlers run with the real zfs package over a stand-in zfs that takes
// a realistic time per process.
//
// What makes it honest and stable: the hard check is on what zfs runs,
// which does not depend on the machine's load: both names must run the
// same zfs commands with the same arguments, none naming the dataset
// asked about. The timing check then compares medians of interleaved
// calls in random order, so that load hits both alike, with a wide
// margin (a factor of 3): the leak it guards against is a factor of 30.
func TestDeniedAndMissingTakeTheSamePath(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a shell per zfs call")
	}
	bin, log := slowZFS(t)
	flt := policyFrom(t, `identities:
  backup:
    datasets:
      "pool/data<": true
      "pool/data/private<": false
`)
	cl := connect(t, handlers.New(zfs.New(&zfs.CLI{Bin: bin}), flt, zaptest.NewLogger(t)))

	const denied, missing = "pool/data/private", "pool/data/privat"
	type sample struct {
		took time.Duration
		runs []string // the zfs command lines, in order, blanks as '_'

	}
	// call probes ds and returns what it took and which zfs runs it made.
	call := func(p probe, ds string) sample {
		before, _ := os.ReadFile(log)
		start := time.Now()
		err := p.do(t, cl, ds)
		took := time.Since(start)
		if e := callError(t, err); e == nil || e.Code != rpc.CodeNotFound || e.Message != fmt.Sprintf("dataset %q does not exist", ds) {
			t.Fatalf("%s %s: %v; want not_found", p.name, ds, err)
		}
		after, _ := os.ReadFile(log)
		return sample{took, strings.Fields(strings.ReplaceAll(string(after[len(before):]), " ", "_"))}
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			call(p, "pool/data/warmup") // zfs feature detection happens once, here
			const rounds = 15
			got := map[string][]sample{}
			for range rounds {
				names := []string{denied, missing}
				rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
				for _, ds := range names {
					got[ds] = append(got[ds], call(p, ds))
				}
			}

			runs := got[missing][0].runs
		check:
			for _, ds := range []string{denied, missing} {
				for i, s := range got[ds] {
					if !reflect.DeepEqual(s.runs, runs) {
						t.Errorf("%s call %d ran zfs %q; %s's first call ran %q: a denied name must take the path of a missing one", ds, i, s.runs, missing, runs)
						break check
					}
				}
			}
			for _, r := range runs {
				if strings.Contains(r, "pool/data/priv") {
					t.Errorf("zfs ran %q: the dataset asked about reached zfs", r)
				}
			}

			med := func(ds string) time.Duration {
				var d []time.Duration
				for _, s := range got[ds] {
					d = append(d, s.took)
				}
				slices.Sort(d)
				return d[len(d)/2]
			}
			md, mm := med(denied), med(missing)
			t.Logf("median %s (denied) %v, %s (missing) %v, zfs runs %q", denied, md, missing, mm, runs)
			if md*3 < mm || mm*3 < md {
				t.Errorf("median time of %s (denied) %v, of %s (missing) %v: the time tells them apart", denied, md, missing, mm)
			}
		})
	}
}

// policyFrom parses a policy file with one identity, "backup", and returns its filter.
func policyFrom(t *testing.T, text string) *policy.Filter {
	t.Helper()
	file, err := policy.Parse([]byte(text), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	flt, err := file.Filter("backup")
	if err != nil {
		t.Fatal(err)
	}
	return flt
}
