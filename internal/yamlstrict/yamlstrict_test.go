package yamlstrict

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestDocumentAndValues(t *testing.T) {
	p := Parser{Source: "f.yaml"}
	if _, err := p.Document([]byte("# only a comment\n")); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty file: %v", err)
	}
	for text, want := range map[string]string{
		"a: [\n":            "f.yaml:1: invalid YAML: did not find expected node content",
		"a: 1\n---\nb: 2\n": "f.yaml:2: more than one YAML document",
	} {
		if _, err := p.Document([]byte(text)); err == nil || err.Error() != want {
			t.Errorf("Document(%q) = %v, want %s", text, err, want)
		}
	}
	root, err := p.Document([]byte("b: true\ns: x\ni: 3\nl: [a, b]\nalias: &x y\nref: *x\nb: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*yaml.Node{}
	err = p.EachPair(root, "ctx: ", "key", func(k string, _, v *yaml.Node) error {
		got[k] = v
		return nil
	})
	if err == nil || err.Error() != `f.yaml:7: ctx: duplicate key "b" (first on line 1)` {
		t.Errorf("duplicate key: %v", err)
	}
	if b, err := p.Bool(got["b"], "", "b"); !b || err != nil {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if _, err := p.Bool(got["s"], "", "s"); err == nil || err.Error() != `f.yaml:2: value of "s" must be true or false, not "x" (str)` {
		t.Errorf("Bool of a string: %v", err)
	}
	if s, err := p.String(got["ref"], "", "ref"); s != "y" || err != nil {
		t.Errorf("String of an alias = %q, %v", s, err)
	}
	if i, err := p.Int(got["i"], "", "i"); i != 3 || err != nil {
		t.Errorf("Int = %v, %v", i, err)
	}
	if _, err := p.Int(got["s"], "", "s"); err == nil {
		t.Error("Int of a string")
	}
	if l, err := p.Strings(got["l"], "", "l"); len(l) != 2 || err != nil {
		t.Errorf("Strings = %v, %v", l, err)
	}
	if _, err := p.Strings(got["i"], "", "i"); err == nil {
		t.Error("Strings of an int")
	}
}
