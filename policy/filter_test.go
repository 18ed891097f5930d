package policy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const testPolicy = `identities:
  backup1:
    datasets:
      "tank<": false
      "tank/data<": true
      "tank/data/private<": false
      "tank/data/private/ok": true
      "tank/vm": true
      "tank/sub<": true
      "tank/sub": false
      "pool2<": true
      "pool 3/a b:c.d_e-f<": true
  narrow:
    datasets:
      tank/data<: true
      tank/data/private<: false
`

func mustParse(t testing.TB, text string) *File {
	t.Helper()
	f, err := Parse([]byte(text), "policy.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func TestDecide(t *testing.T) {
	f := mustParse(t, testPolicy)
	tests := []struct {
		identity, dataset string
		allowed           bool
		line              int // line of the deciding rule; 0: none
		str               string
	}{
		// Subtree rule: the dataset itself and everything below it.
		{"backup1", "tank/data", true, 5, `allowed by "tank/data<": true (line 5)`},
		{"backup1", "tank/data/a/b", true, 5, `allowed by "tank/data<": true (line 5)`},
		// A sibling sharing the prefix is not below tank/data.
		{"backup1", "tank/database", false, 4, `denied by "tank<": false (line 4)`},
		{"narrow", "tank/database", false, 0, `denied by default: no rule matches`},
		{"narrow", "tank/dat", false, 0, `denied by default: no rule matches`},
		// Explicitly denied child subtree.
		{"backup1", "tank/data/private", false, 6, `denied by "tank/data/private<": false (line 6)`},
		{"backup1", "tank/data/private/x/y", false, 6, `denied by "tank/data/private<": false (line 6)`},
		{"narrow", "tank/data/private/x", false, 16, `denied by "tank/data/private<": false (line 16)`},
		{"narrow", "tank/data/a", true, 15, `allowed by "tank/data<": true (line 15)`},
		// Most specific wins, allow below deny...
		{"backup1", "tank/data/private/ok", true, 7, `allowed by "tank/data/private/ok": true (line 7)`},
		// ...but an exact key does not reach the children.
		{"backup1", "tank/data/private/ok/child", false, 6, `denied by "tank/data/private<": false (line 6)`},
		{"backup1", "tank/vm", true, 8, `allowed by "tank/vm": true (line 8)`},
		{"backup1", "tank/vm/disk0", false, 4, `denied by "tank<": false (line 4)`},
		// Exact beats subtree for the same dataset, deny over allow.
		{"backup1", "tank/sub", false, 10, `denied by "tank/sub": false (line 10)`},
		{"backup1", "tank/sub/x", true, 9, `allowed by "tank/sub<": true (line 9)`},
		// Pool-root patterns match the pool itself and everything in it.
		{"backup1", "tank", false, 4, `denied by "tank<": false (line 4)`},
		{"backup1", "pool2", true, 11, `allowed by "pool2<": true (line 11)`},
		{"backup1", "pool2/a/b/c/d", true, 11, `allowed by "pool2<": true (line 11)`},
		{"backup1", "pool22", false, 0, `denied by default: no rule matches`},
		{"narrow", "tank", false, 0, `denied by default: no rule matches`},
		{"backup1", "pool 3/a b:c.d_e-f/g", true, 12, `allowed by "pool 3/a b:c.d_e-f<": true (line 12)`},
		{"backup1", "other/tank/data", false, 0, `denied by default: no rule matches`},
		// Not dataset names: denied without a rule, whatever the patterns say.
		{"backup1", "tank/data@snap", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data#mark", false, 0, `denied: not a valid dataset name`},
		{"backup1", "pool2/a@snap", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data/", false, 0, `denied: not a valid dataset name`},
		{"backup1", "/tank/data", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank//data", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data/../vm", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data/./x", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data<", false, 0, `denied: not a valid dataset name`},
		{"backup1", "tank/data\x00", false, 0, `denied: not a valid dataset name`},
		{"backup1", "", false, 0, `denied: not a valid dataset name`},
	}
	for _, tt := range tests {
		t.Run(tt.identity+":"+tt.dataset, func(t *testing.T) {
			flt, err := f.Filter(tt.identity)
			if err != nil {
				t.Fatal(err)
			}
			d := flt.Decide(tt.dataset)
			line := 0
			if d.Rule != nil {
				line = d.Rule.Line
			}
			if d.Allowed != tt.allowed || line != tt.line {
				t.Errorf("Decide(%q) = allowed %t, rule line %d; want %t, %d", tt.dataset, d.Allowed, line, tt.allowed, tt.line)
			}
			if got := d.String(); got != tt.str {
				t.Errorf("Decide(%q).String() = %q; want %q", tt.dataset, got, tt.str)
			}
			if got := flt.Allows(tt.dataset); got != tt.allowed {
				t.Errorf("Allows(%q) = %t; want %t", tt.dataset, got, tt.allowed)
			}
		})
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		r    Rule
		want string
	}{
		{Rule{Pattern: "tank/data", Subtree: true, Allow: true, Line: 4}, `"tank/data<": true (line 4)`},
		{Rule{Pattern: "tank/vm", Allow: false, Line: 12}, `"tank/vm": false (line 12)`},
		{Rule{Pattern: "pool 3/a", Subtree: true, Allow: false, Line: 1}, `"pool 3/a<": false (line 1)`},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.r, got, tt.want)
		}
	}
	if got, want := (Decision{}).String(), "denied by default: no rule matches"; got != want {
		t.Errorf("zero Decision.String() = %q; want %q", got, want)
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	flt, err := mustParse(t, testPolicy).Filter("backup1")
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []string{"tank/data/private/ok/child/a/b", "pool22", "tank/x@y"} {
		if n := testing.AllocsPerRun(100, func() { flt.Decide(ds) }); n != 0 {
			t.Errorf("Decide(%q) allocates %v times", ds, n)
		}
	}
}

// BenchmarkDecide decides a listing of deep dataset names against a policy
// of a thousand rules, as a source with many datasets would.
func BenchmarkDecide(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("identities:\n  big:\n    datasets:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "      \"tank/d%d<\": %t\n      \"tank/d%d/x/y\": false\n", i, i%3 != 0, i)
	}
	flt, err := mustParse(b, sb.String()).Filter("big")
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, 5000)
	for i := range names {
		names[i] = fmt.Sprintf("tank/d%d/x/y/z/%d", i%1500, i)
	}
	b.ResetTimer()
	for i := range b.N {
		flt.Decide(names[i%len(names)])
	}
}

func TestFilterRoots(t *testing.T) {
	tests := []struct {
		rules string
		want  []string
	}{
		{`"tank/data<": true`, []string{"tank/data"}},
		{`"tank/data<": true
      "tank/data/private<": false
      "tank/vm": true`, []string{"tank/data", "tank/vm"}},
		{`"tank<": true
      "tank/vm": true
      "tank/x/y<": true`, []string{"tank"}},
		{`"tank/vm": true
      "tank/vm/disk0<": true`, []string{"tank/vm"}},
		{`"tank/a": true
      "tank/a b": true
      "tank/ab<": true`, []string{"tank/a", "tank/a b", "tank/ab"}},
		{`"tank<": false`, nil},
		{`"tank/a": true
      "tank/a b": true
      "tank/a/x<": true`, []string{"tank/a", "tank/a b"}},
		{`"pool1<": true
      "pool2/x<": true`, []string{"pool1", "pool2/x"}},
	}
	for _, tt := range tests {
		f, err := Parse([]byte("identities:\n  id:\n    datasets:\n      "+tt.rules+"\n"), "p.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tt.rules, err)
		}
		filter, err := f.Filter("id")
		if err != nil {
			t.Fatal(err)
		}
		if got := filter.Roots(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("Roots of %s = %q, want %q", tt.rules, got, tt.want)
		}
	}
}

// zrepl's documentation on filesystem filters
// (https://zrepl.github.io/configuration/filter_syntax.html) gives two
// examples: full access with the bare "<", and three rules with a table of
// which rule decides which dataset. The policy reads zrepl's syntax and
// must decide those examples as zrepl documents them.
func TestZreplFilterExamples(t *testing.T) {
	full := mustParse(t, "identities:\n  id:\n    datasets: {\n      \"<\": true,\n    }\n")
	flt, err := full.Filter("id")
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []string{"tank", "tank/a/b", "zroot", "pool 2/x"} {
		d := flt.Decide(ds)
		if want := `allowed by "<": true (line 4) (the bare "<" matches every dataset of every pool)`; !d.Allowed || d.String() != want {
			t.Errorf("full access: Decide(%q) = %q, want %q", ds, d, want)
		}
	}
	if got := flt.Roots(); len(got) != 1 || got[0] != "" {
		t.Errorf("full access: Roots() = %q, want [\"\"] (all pools)", got)
	}
	if d := flt.Decide("tank@snap"); d.Allowed {
		t.Errorf("full access allowed a snapshot name: %v", d)
	}

	fine := mustParse(t, `identities:
  id:
    datasets: {
      "tank<": true,
      "tank/foo<": false,
      "tank/foo/bar": true,
    }
`)
	flt, err = fine.Filter("id")
	if err != nil {
		t.Fatal(err)
	}
	// zrepl's table: path, the rule that applies (0: none), the result.
	for _, tt := range []struct {
		path    string
		rule    int
		allowed bool
	}{
		{"tank/foo/bar/loo", 2, false},
		{"tank/bar", 1, true},
		{"tank/foo/bar", 3, true},
		{"zroot", 0, false},
		{"tank/var/log", 1, true},
	} {
		d := flt.Decide(tt.path)
		rule := 0
		if d.Rule != nil {
			rule = d.Rule.Line - 3 // rule 1 is on line 4
		}
		if d.Allowed != tt.allowed || rule != tt.rule {
			t.Errorf("Decide(%q) = %v (rule %d); zrepl documents rule %d, %t", tt.path, d, rule, tt.rule, tt.allowed)
		}
	}

	// "<" is the least specific key: every other rule beats it.
	mixed := mustParse(t, "identities:\n  id:\n    datasets:\n      \"<\": true\n      \"tank/private<\": false\n      \"tank/private/ok\": true\n")
	flt, _ = mixed.Filter("id")
	for ds, want := range map[string]bool{"tank": true, "tank/private": false, "tank/private/x": false, "tank/private/ok": true, "other": true} {
		if got := flt.Allows(ds); got != want {
			t.Errorf("mixed: Allows(%q) = %t, want %t", ds, got, want)
		}
	}
	denyAll := mustParse(t, "identities:\n  id:\n    datasets:\n      \"<\": false\n      \"tank/a\": true\n")
	flt, _ = denyAll.Filter("id")
	if got := flt.Roots(); strings.Join(got, "|") != "tank/a" {
		t.Errorf(`"<": false: Roots() = %q, want [tank/a]`, got)
	}
}

func TestAllow(t *testing.T) {
	f, err := Allow([]string{"tank/home<", "tank/vm"})
	if err != nil {
		t.Fatal(err)
	}
	for ds, want := range map[string]bool{"tank/home": true, "tank/home/u": true, "tank/homes": false, "tank/vm": true, "tank/vm/disk": false, "tank": false} {
		if got := f.Allows(ds); got != want {
			t.Errorf("Allows(%q) = %v, want %v", ds, got, want)
		}
	}
	if got := f.Roots(); !reflect.DeepEqual(got, []string{"tank/home", "tank/vm"}) {
		t.Errorf("Roots() = %q", got)
	}
	for _, bad := range []string{"", "tank/a@s", "/etc", "tank/../x", "tank<a"} {
		if _, err := Allow([]string{bad}); err == nil {
			t.Errorf("Allow(%q) accepted", bad)
		}
	}
}
