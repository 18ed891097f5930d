package policy

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors name the
// source, and that a file that parses gives Filters whose Decide never
// panics and agrees with the rules it was built from.
func FuzzParse(f *testing.F) {
	f.Add([]byte(testPolicy), "tank/data/x")
	f.Add([]byte("identities:\n  a: &x\n    datasets: {\"p<\": true, p/q: false}\n  b: *x\n"), "p/q")
	for _, tt := range parseErrorTests {
		f.Add([]byte(tt.text), "tank")
	}
	f.Fuzz(func(t *testing.T, data []byte, dataset string) {
		file, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("error does not name the source: %v", err)
			}
			return
		}
		ids := file.Identities()
		if len(ids) == 0 {
			t.Fatal("a parsed file has no identities")
		}
		for _, id := range ids {
			ident, err := file.Identity(id)
			if err != nil {
				t.Fatalf("Identity(%q) of a listed identity: %v", id, err)
			}
			if ident.Source == nil && ident.Sink == nil {
				t.Fatalf("identity %q may neither pull nor push", id)
			}
			flt, err := file.Filter(id)
			if ident.Source == nil { // push only: no filter, and says so
				if !errors.Is(err, ErrNoDatasets) {
					t.Fatalf("Filter(%q) of a push-only identity: %v", id, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Filter(%q): %v", id, err)
			}
			check(t, flt, dataset)
			for name, r := range flt.exact {
				if d := check(t, flt, name); d.Rule != r {
					t.Fatalf("Decide(%q) = %v; want the exact rule %v", name, d, r)
				}
			}
			for name, r := range flt.subtree {
				if d := check(t, flt, name); d.Rule != r && d.Rule != flt.exact[name] {
					t.Fatalf("Decide(%q) = %v; want %v", name, d, r)
				}
				below := name + "/zz"
				if name == "" { // the bare "<": every pool
					below = "zz"
				}
				if d := check(t, flt, below); d.Rule == nil {
					t.Fatalf("Decide(%q) matched nothing below %v", below, r)
				}
			}
		}
	})
}

// check decides name and verifies the Decision is consistent.
func check(t *testing.T, flt *Filter, name string) Decision {
	d := flt.Decide(name)
	if d.Rule != nil && d.Allowed != d.Rule.Allow {
		t.Fatalf("Decide(%q) = %v: Allowed disagrees with the rule", name, d)
	}
	if d.Rule == nil && d.Allowed {
		t.Fatalf("Decide(%q) allowed without a rule", name)
	}
	if strings.ContainsAny(name, "@#") && d.Allowed {
		t.Fatalf("Decide(%q) allowed a snapshot or bookmark name", name)
	}
	_ = d.String()
	return d
}
