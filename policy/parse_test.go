package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ds builds a one-identity policy whose datasets map holds the given
// lines; the first of them is line 4.
func ds(lines ...string) string {
	return "identities:\n  backup1:\n    datasets:\n      " + strings.Join(lines, "\n      ") + "\n"
}

var parseErrorTests = []struct {
	name, text, want string
}{
	// Malformed YAML.
	{"unclosed flow", "identities: [\n", `policy.yaml:1: invalid YAML: did not find expected node content`},
	{"tab indent", "identities:\n\tbackup1: {}\n", `policy.yaml:2: invalid YAML: found character that cannot start any token`},
	{"two documents", ds(`"tank<": true`) + "---\nidentities: {}\n", `policy.yaml:5: more than one YAML document`},

	// Empty file, no identities.
	{"empty file", "", `policy.yaml: no identities defined (empty file)`},
	{"only comments", "# nothing\n\n", `policy.yaml: no identities defined (empty file)`},
	{"empty document", "---\n", `policy.yaml: no identities defined (empty document)`},
	{"null identities", "identities:\n", `policy.yaml:1: no identities defined`},
	{"empty identities", "identities: {}\n", `policy.yaml:1: no identities defined`},
	{"missing identities", "{}\n", `policy.yaml:1: no identities defined (missing key "identities")`},
	{"top level sequence", "- identities\n", `policy.yaml:1: top level must be a mapping with the key "identities", not a sequence`},
	{"identities sequence", "identities:\n  - backup1\n", `policy.yaml:2: "identities" must be a mapping of identity names, not a sequence`},

	// Unknown keys, at every level.
	{"unknown top key", "identities:\n  a:\n    datasets: {x: true}\nidentity: {}\n", `policy.yaml:4: unknown key "identity" (the only top-level key is "identities")`},
	{"unknown identity key", "identities:\n  backup1:\n    datasets: {x: true}\n    dataset: {y: true}\n", `policy.yaml:4: identity "backup1": unknown key "dataset" (the keys of an identity are "datasets", "raw_only", "cursor_bookmarks" and "sink")`},
	{"merge key", "identities:\n  backup1:\n    <<: {datasets: {x: true}}\n", `policy.yaml:3: identity "backup1": merge keys (<<) are not supported`},

	// Identities without datasets.
	{"identity null", "identities:\n  backup1:\n", `policy.yaml:2: identity "backup1": needs "datasets" (what it may pull) or "sink" (where it may push)`},
	{"identity empty", "identities:\n  backup1: {}\n", `policy.yaml:2: identity "backup1": needs "datasets" (what it may pull) or "sink" (where it may push)`},
	{"datasets null", "identities:\n  backup1:\n    datasets:\n", `policy.yaml:3: identity "backup1": no datasets map`},
	{"datasets empty", "identities:\n  backup1:\n    datasets: {}\n", `policy.yaml:3: identity "backup1": datasets map is empty`},
	{"datasets list", "identities:\n  backup1:\n    datasets:\n      - tank<\n", `policy.yaml:4: identity "backup1": datasets must be a mapping of dataset patterns to true or false, not a sequence`},
	{"identity scalar", "identities:\n  backup1: tank<\n", `policy.yaml:2: identity "backup1": must be a mapping with the keys "datasets" and/or "sink", not "tank<" (str)`},
	{"empty identity name", "identities:\n  \"\": {datasets: {x: true}}\n", `policy.yaml:2: empty identity name`},
	{"null identity name", "identities:\n  ~: {datasets: {x: true}}\n", `policy.yaml:2: identity must be a string, not null`},

	// Duplicates.
	{"duplicate top key", "identities:\n  a: {datasets: {x: true}}\nidentities:\n  b: {datasets: {x: true}}\n", `policy.yaml:3: duplicate key "identities" (first on line 1)`},
	{"duplicate identity", "identities:\n  a: {datasets: {x: true}}\n  a: {datasets: {y: true}}\n", `policy.yaml:3: duplicate identity "a" (first on line 2)`},
	{"duplicate datasets", "identities:\n  a:\n    datasets: {x: true}\n    datasets: {y: true}\n", `policy.yaml:4: identity "a": duplicate key "datasets" (first on line 3)`},
	{"duplicate pattern", ds(`"tank/a<": true`, `tank/b: true`, `'tank/a<': false`), `policy.yaml:6: identity "backup1": duplicate dataset pattern "tank/a<" (first on line 4)`},

	// Values that are not booleans.
	{"value yes", ds(`tank<: yes`), `policy.yaml:4: identity "backup1": value of "tank<" must be true or false, not "yes" (str)`},
	{"value quoted true", ds(`tank/a: true`, `tank<: "true"`), `policy.yaml:5: identity "backup1": value of "tank<" must be true or false, not "true" (str)`},
	{"value 1", ds(`tank<: 1`), `policy.yaml:4: identity "backup1": value of "tank<" must be true or false, not "1" (int)`},
	{"value null", ds(`tank<:`), `policy.yaml:4: identity "backup1": value of "tank<" must be true or false, not null`},
	{"value map", ds(`tank<: {a: b}`), `policy.yaml:4: identity "backup1": value of "tank<" must be true or false, not a mapping`},

	// Invalid patterns.
	{"empty pattern", ds(`"": true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "": empty name`},
	{"only <<", ds(`"<<": true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "<<": '<' is only allowed at the end`},
	{"leading slash", ds(`/tank<: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "/tank<": leading '/'`},
	{"trailing slash", ds(`tank/: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/": trailing '/'`},
	{"trailing slash subtree", ds(`tank/<: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/<": trailing '/'`},
	{"double slash", ds(`tank/a: true`, `tank//b<: true`), `policy.yaml:5: identity "backup1": invalid dataset pattern "tank//b<": empty component ('//')`},
	{"dot", ds(`tank/./a: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/./a": '.' or '..' component`},
	{"dotdot", ds(`tank/..<: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/..<": '.' or '..' component`},
	{"snapshot", ds(`tank/a@snap: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/a@snap": '@' (snapshot names are not datasets)`},
	{"bookmark", ds(`"tank/a#b": true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/a#b": '#' (bookmark names are not datasets)`},
	{"percent", ds(`tank/a%b: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/a%b": '%' (reserved by ZFS)`},
	{"leading dash", ds(`-tank<: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "-tank<": leading '-'`},
	{"inner <", ds(`tank<a: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank<a": '<' is only allowed at the end`},
	{"double <", ds(`tank<<: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank<<": '<' is only allowed at the end`},
	{"star", ds(`"tank/*": true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/*": invalid character '*'`},
	{"non-ascii", ds(`tank/ü: true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/ü": invalid character 'ü'`},
	{"control", ds(`"tank/a\tb": true`), `policy.yaml:4: identity "backup1": invalid dataset pattern "tank/a\tb": invalid character '\t'`},
	{"sequence key", ds(`[tank]: true`), `policy.yaml:4: identity "backup1": dataset pattern must be a string, not a sequence`},

	// Sinks.
	{"sink without root", "identities:\n  l1:\n    sink: {quota: 1G}\n", `policy.yaml:3: identity "l1": sink: needs "root": the dataset pushes are received under`},
	{"sink scalar", "identities:\n  l1:\n    sink: backup/l1\n", `policy.yaml:3: identity "l1": sink: must be a mapping with the key "root" (and optionally "quota" and "raw_only"), not "backup/l1" (str)`},
	{"sink root a pool", "identities:\n  l1:\n    sink: {root: backup}\n", `policy.yaml:3: identity "l1": sink: root "backup" is a pool: give a dataset below it, such as backup/pushed`},
	{"sink root with a snapshot", "identities:\n  l1:\n    sink: {root: backup/l1@x}\n", `policy.yaml:3: identity "l1": sink: root "backup/l1@x" is not a dataset name: '@' (snapshot names are not datasets)`},
	{"sink root with ..", "identities:\n  l1:\n    sink: {root: backup/../etc}\n", `policy.yaml:3: identity "l1": sink: root "backup/../etc" is not a dataset name: '.' or '..' component`},
	{"sink root a map", "identities:\n  l1:\n    sink: {root: {a: b}}\n", `policy.yaml:3: identity "l1": sink: root must be a string, not a mapping`},
	{"sink bad quota", "identities:\n  l1:\n    sink: {root: backup/l1, quota: lots}\n", `policy.yaml:3: identity "l1": sink: quota: size "lots": no number`},
	{"sink zero quota", "identities:\n  l1:\n    sink: {root: backup/l1, quota: 0}\n", `policy.yaml:3: identity "l1": sink: quota: a quota of 0 would refuse every push; leave quota out for none`},
	{"sink unknown key", "identities:\n  l1:\n    sink: {root: backup/l1, destroy: true}\n", `policy.yaml:3: identity "l1": sink: unknown key "destroy" (the keys of a sink are "root", "quota" and "raw_only")`},
	{"raw_only not a bool", "identities:\n  b:\n    datasets: {x: true}\n    raw_only: yes\n", `policy.yaml:4: identity "b": raw_only must be true or false, not "yes" (str)`},
	{"raw_only without datasets", "identities:\n  l1:\n    raw_only: true\n    sink: {root: backup/l1}\n", `policy.yaml:2: identity "l1": raw_only applies to the datasets it may pull, and it has none (a sink takes raw_only under "sink")`},
	{"sink raw_only not a bool", "identities:\n  l1:\n    sink: {root: backup/l1, raw_only: 1}\n", `policy.yaml:3: identity "l1": sink: raw_only must be true or false, not "1" (int)`},
	{"cursor_bookmarks with a name unfit for a bookmark", "identities:\n  \"backup one\":\n    datasets: {x: true}\n    cursor_bookmarks: true\n", `policy.yaml:4: identity "backup one": cursor_bookmarks needs an identity name of letters, digits, '_', '-', '.' and ':' (it names the bookmark zrep_cursor_backup one)`},
	{"cursor_bookmarks without datasets", "identities:\n  l1:\n    cursor_bookmarks: true\n    sink: {root: backup/l1}\n", `policy.yaml:2: identity "l1": cursor_bookmarks applies to the datasets it may pull, and it has none`},
	{"sink roots nested", "identities:\n  l1:\n    sink: {root: backup/l}\n  l2:\n    sink: {root: backup/l/l2}\n", `policy.yaml:5: identity "l2": sink root "backup/l/l2" overlaps identity "l1"'s sink root "backup/l" (line 3): each identity's pushes must stay apart`},
	{"sink roots equal", "identities:\n  l1:\n    sink: {root: backup/l}\n  l2:\n    sink: {root: backup/l}\n", `policy.yaml:5: identity "l2": sink root "backup/l" overlaps identity "l1"'s sink root "backup/l" (line 3): each identity's pushes must stay apart`},
}

// TestParseSinks: an identity may be a source, a sink, or both; Filter
// refuses one that may only push.
func TestParseSinks(t *testing.T) {
	f := mustParse(t, `identities:
  backup1:
    datasets: {"tank<": true}
  laptop1:
    sink: {root: backup/laptops/laptop1, quota: 500G}
  both:
    datasets: {"tank/x": true}
    sink: {root: backup/both}
  siblings:
    sink: {root: backup/laptops/laptop10, raw_only: true}
  rawsource:
    datasets: {"tank/enc<": true}
    raw_only: true
    cursor_bookmarks: true
`)
	for _, tt := range []struct {
		name   string
		source bool
		sink   *Sink
	}{
		{"backup1", true, nil},
		{"laptop1", false, &Sink{Root: "backup/laptops/laptop1", Quota: 500 << 30, Line: 5}},
		{"both", true, &Sink{Root: "backup/both", Line: 8}},
		{"siblings", false, &Sink{Root: "backup/laptops/laptop10", RawOnly: true, Line: 10}},
		{"rawsource", true, nil},
	} {
		id, err := f.Identity(tt.name)
		if err != nil {
			t.Fatal(err)
		}
		if (id.Source != nil) != tt.source || !reflect.DeepEqual(id.Sink, tt.sink) {
			t.Errorf("%s: source %v, sink %+v; want source %v, sink %+v", tt.name, id.Source != nil, id.Sink, tt.source, tt.sink)
		}
		if id.RawOnly != (tt.name == "rawsource") || id.CursorBookmarks != (tt.name == "rawsource") {
			t.Errorf("%s: raw_only %v, cursor_bookmarks %v", tt.name, id.RawOnly, id.CursorBookmarks)
		}
		_, err = f.Filter(tt.name)
		if tt.source != (err == nil) || !tt.source && !errors.Is(err, ErrNoDatasets) {
			t.Errorf("Filter(%s) = %v", tt.name, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.text), "policy.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded with identities %v; want error %q", f.Identities(), tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	f := mustParse(t, `# zrep source policy
identities:
  zeta: {datasets: {"tank<": true}}
  alpha:
    datasets:
      tank/a: True       # YAML booleans in any of their spellings
      "tank/b<": FALSE
  shared: &shared
    datasets:
      pool/x<: true
  reuse: *shared
`)
	if got, want := f.Identities(), []string{"alpha", "reuse", "shared", "zeta"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Identities() = %q; want %q", got, want)
	}
	// The returned slice is a copy.
	f.Identities()[0] = "changed"
	if got := f.Identities()[0]; got != "alpha" {
		t.Errorf("Identities() shares its slice: got %q", got)
	}
	for _, tt := range []struct {
		identity, dataset, want string
	}{
		{"alpha", "tank/a", `allowed by "tank/a": true (line 6)`},
		{"alpha", "tank/b/c", `denied by "tank/b<": false (line 7)`},
		{"reuse", "pool/x/y", `allowed by "pool/x<": true (line 10)`},
		{"zeta", "tank/q", `allowed by "tank<": true (line 3)`},
	} {
		flt, err := f.Filter(tt.identity)
		if err != nil {
			t.Fatal(err)
		}
		if got := flt.Decide(tt.dataset).String(); got != tt.want {
			t.Errorf("%s: Decide(%q) = %q; want %q", tt.identity, tt.dataset, got, tt.want)
		}
	}
}

func TestFilterUnknownIdentity(t *testing.T) {
	f := mustParse(t, testPolicy)
	flt, err := f.Filter("nobody")
	if flt != nil || !errors.Is(err, ErrUnknownIdentity) {
		t.Fatalf("Filter(nobody) = %v, %v; want nil, ErrUnknownIdentity", flt, err)
	}
	if got, want := err.Error(), `policy.yaml: unknown identity "nobody"`; got != want {
		t.Errorf("error = %q; want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Identities(); len(got) != 2 {
		t.Errorf("Identities() = %q", got)
	}
	_, err = f.Filter("nobody")
	if want := path + `: unknown identity "nobody"`; err == nil || err.Error() != want {
		t.Errorf("Filter(nobody) error = %v; want %s", err, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(ds("tank/: true")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if want := bad + `:4: identity "backup1": invalid dataset pattern "tank/": trailing '/'`; err == nil || err.Error() != want {
		t.Errorf("Load(bad) error = %v; want %s", err, want)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "load policy: open ") {
		t.Errorf("Load(missing) error = %v; want a wrapped os.ErrNotExist", err)
	}
}
