package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	pkgerrors "github.com/pkg/errors"
	"go.yaml.in/yaml/v3"
)

// parser walks the yaml.Node tree of one policy file. It accepts only the
// documented keys, so a typo is an error rather than a silently ignored
// rule, and it reports the first problem found, in document order.
type parser struct {
	source string
}

func parseYAML(data []byte, source string) (map[string]*Filter, error) {
	p := parser{source: source}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errorf(nil, "no identities defined (empty file)")
		}
		return nil, p.yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, p.yamlError(err)
	default:
		return nil, p.errorf(&next, "more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errorf(&doc, "not a YAML document")
	}
	return p.file(doc.Content[0])
}

func (p *parser) file(root *yaml.Node) (map[string]*Filter, error) {
	root = resolve(root)
	if isNull(root) {
		return nil, p.errorf(nil, "no identities defined (empty document)")
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, `top level must be a mapping with the key "identities", not %s`, describe(root))
	}
	var ids *yaml.Node
	err := p.eachPair(root, "", "key", func(key string, k, v *yaml.Node) error {
		if key != "identities" {
			return p.errorf(k, `unknown key %q (the only top-level key is "identities")`, key)
		}
		ids = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return nil, p.errorf(root, `no identities defined (missing key "identities")`)
	}
	if ids = resolve(ids); isNull(ids) || ids.Kind == yaml.MappingNode && len(ids.Content) == 0 {
		return nil, p.errorf(ids, "no identities defined")
	}
	if ids.Kind != yaml.MappingNode {
		return nil, p.errorf(ids, `"identities" must be a mapping of identity names, not %s`, describe(ids))
	}
	filters := make(map[string]*Filter)
	err = p.eachPair(ids, "", "identity", func(name string, k, v *yaml.Node) error {
		if name == "" {
			return p.errorf(k, "empty identity name")
		}
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return p.errorf(k, "identity name %q contains a control character", name)
		}
		rules, err := p.identity(name, k, v)
		if err != nil {
			return err
		}
		filters[name] = newFilter(rules)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return filters, nil
}

// identity parses the value of one identity: a mapping with the single key
// "datasets", whose value maps patterns to booleans.
func (p *parser) identity(name string, key, val *yaml.Node) ([]Rule, error) {
	ctx := fmt.Sprintf("identity %q: ", name)
	val = resolve(val)
	if isNull(val) {
		return nil, p.errorf(key, "%sno datasets map", ctx)
	}
	if val.Kind != yaml.MappingNode {
		return nil, p.errorf(val, `%smust be a mapping with the key "datasets", not %s`, ctx, describe(val))
	}
	var dsKey, ds *yaml.Node
	err := p.eachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		if k != "datasets" {
			return p.errorf(kn, `%sunknown key %q (the only key of an identity is "datasets")`, ctx, k)
		}
		dsKey, ds = kn, vn
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ds == nil {
		return nil, p.errorf(key, "%sno datasets map", ctx)
	}
	if ds = resolve(ds); isNull(ds) {
		return nil, p.errorf(dsKey, "%sno datasets map", ctx)
	}
	if ds.Kind != yaml.MappingNode {
		return nil, p.errorf(ds, "%sdatasets must be a mapping of dataset patterns to true or false, not %s", ctx, describe(ds))
	}
	if len(ds.Content) == 0 {
		return nil, p.errorf(dsKey, "%sdatasets map is empty", ctx)
	}
	var rules []Rule
	err = p.eachPair(ds, ctx, "dataset pattern", func(k string, kn, vn *yaml.Node) error {
		r, err := p.rule(ctx, k, kn, vn)
		rules = append(rules, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rules, nil
}

// rule parses one "pattern: bool" entry.
func (p *parser) rule(ctx, key string, kn, vn *yaml.Node) (Rule, error) {
	pattern, subtree := strings.CutSuffix(key, "<")
	if problem, at := checkName(pattern); problem != "" {
		if problem == "invalid character" {
			if r, _ := utf8.DecodeRuneInString(pattern[at:]); r != utf8.RuneError {
				problem = fmt.Sprintf("invalid character %q", r)
			} else {
				problem = fmt.Sprintf("invalid byte 0x%02x", pattern[at])
			}
		}
		return Rule{}, p.errorf(kn, "%sinvalid dataset pattern %q: %s", ctx, key, problem)
	}
	var allow bool
	if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!bool" || vn.Decode(&allow) != nil {
		return Rule{}, p.errorf(vn, "%svalue of %q must be true or false, not %s", ctx, key, describe(vn))
	}
	return Rule{Pattern: pattern, Subtree: subtree, Allow: allow, Line: kn.Line}, nil
}

// eachPair calls fn for each key/value pair of the mapping m, in order,
// with aliases resolved. It refuses keys that are not non-null scalars,
// merge keys, and duplicate keys; what names the kind of key in messages.
func (p *parser) eachPair(m *yaml.Node, ctx, what string, fn func(key string, k, v *yaml.Node) error) error {
	first := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			return p.errorf(k, "%smerge keys (<<) are not supported", ctx)
		case k.Kind != yaml.ScalarNode || isNull(k):
			return p.errorf(k, "%s%s must be a string, not %s", ctx, what, describe(k))
		}
		if line, dup := first[k.Value]; dup {
			return p.errorf(k, "%sduplicate %s %q (first on line %d)", ctx, what, k.Value, line)
		}
		first[k.Value] = k.Line
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// errorf returns "source:line: message", or "source: message" when n is
// nil or has no line.
func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return errAt(p.source, line, fmt.Sprintf(format, args...))
}

// yamlError rewrites a syntax error of the yaml package, "yaml: line 3:
// did not find expected key", as "source:3: invalid YAML: did not ...".
func (p *parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	return errAt(p.source, line, "invalid YAML: "+msg)
}

func errAt(source string, line int, msg string) error {
	if line > 0 {
		return pkgerrors.Errorf("%s:%d: %s", source, line, msg)
	}
	return pkgerrors.Errorf("%s: %s", source, msg)
}

// resolve follows aliases (*name) to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of n for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		return "an unresolved alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q (%s)", n.Value, strings.TrimPrefix(n.ShortTag(), "!!"))
	}
	return "an unexpected YAML node"
}
