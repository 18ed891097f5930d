package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	pkgerrors "github.com/pkg/errors"
	"go.yaml.in/yaml/v3"

	"github.com/zrep/zrep/internal/units"
)

// parser walks the yaml.Node tree of one policy file. It accepts only the
// documented keys, so a typo is an error rather than a silently ignored
// rule, and it reports the first problem found, in document order.
type parser struct {
	source string
}

func parseYAML(data []byte, source string) (map[string]*Identity, error) {
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

func (p *parser) file(root *yaml.Node) (map[string]*Identity, error) {
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
	identities := make(map[string]*Identity)
	err = p.eachPair(ids, "", "identity", func(name string, k, v *yaml.Node) error {
		if name == "" {
			return p.errorf(k, "empty identity name")
		}
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return p.errorf(k, "identity name %q contains a control character", name)
		}
		id, err := p.identity(name, k, v)
		if err != nil {
			return err
		}
		identities[name] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := p.checkSinkRoots(identities); err != nil {
		return nil, err
	}
	return identities, nil
}

// identity parses the value of one identity: a mapping with the key
// "datasets" (a source: a map of patterns to booleans), the key "sink" (a
// push target), or both.
func (p *parser) identity(name string, key, val *yaml.Node) (*Identity, error) {
	ctx := fmt.Sprintf("identity %q: ", name)
	val = resolve(val)
	if isNull(val) {
		return nil, p.errorf(key, `%sneeds "datasets" (what it may pull) or "sink" (where it may push)`, ctx)
	}
	if val.Kind != yaml.MappingNode {
		return nil, p.errorf(val, `%smust be a mapping with the keys "datasets" and/or "sink", not %s`, ctx, describe(val))
	}
	id := &Identity{Name: name}
	err := p.eachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		var err error
		switch k {
		case "datasets":
			var rules []Rule
			if rules, err = p.datasets(ctx, kn, vn); err == nil {
				id.Source = newFilter(rules)
			}
		case "sink":
			id.Sink, err = p.sink(ctx, kn, vn)
		case "raw_only":
			id.RawOnly, err = p.boolean(ctx, k, vn)
		case "cursor_bookmarks":
			if id.CursorBookmarks, err = p.boolean(ctx, k, vn); err == nil && id.CursorBookmarks && !bookmarkSafe(name) {
				err = p.errorf(vn, "%scursor_bookmarks needs an identity name of letters, digits, '_', '-', '.' and ':' (it names the bookmark zrep_cursor_%s)", ctx, name)
			}
		default:
			err = p.errorf(kn, `%sunknown key %q (the keys of an identity are "datasets", "raw_only", "cursor_bookmarks" and "sink")`, ctx, k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if id.Source == nil && id.Sink == nil {
		return nil, p.errorf(key, `%sneeds "datasets" (what it may pull) or "sink" (where it may push)`, ctx)
	}
	if id.RawOnly && id.Source == nil {
		return nil, p.errorf(key, `%sraw_only applies to the datasets it may pull, and it has none (a sink takes raw_only under "sink")`, ctx)
	}
	if id.CursorBookmarks && id.Source == nil {
		return nil, p.errorf(key, `%scursor_bookmarks applies to the datasets it may pull, and it has none`, ctx)
	}
	return id, nil
}

// bookmarkSafe reports whether an identity name can go into a bookmark
// name as it is: not empty, at most 200 bytes, and of plain characters.
func bookmarkSafe(name string) bool {
	if name == "" || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:", r)) {
			return false
		}
	}
	return true
}

// boolean parses a true/false value of key.
func (p *parser) boolean(ctx, key string, vn *yaml.Node) (bool, error) {
	var b bool
	if vn.Kind != yaml.ScalarNode || vn.ShortTag() != "!!bool" || vn.Decode(&b) != nil {
		return false, p.errorf(vn, "%s%s must be true or false, not %s", ctx, key, describe(vn))
	}
	return b, nil
}

// datasets parses an identity's datasets map of patterns to booleans.
func (p *parser) datasets(ctx string, dsKey, ds *yaml.Node) ([]Rule, error) {
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
	err := p.eachPair(ds, ctx, "dataset pattern", func(k string, kn, vn *yaml.Node) error {
		r, err := p.rule(ctx, k, kn, vn)
		rules = append(rules, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rules, nil
}

// sink parses an identity's sink: {root: DATASET, quota: SIZE}.
func (p *parser) sink(ctx string, key, val *yaml.Node) (*Sink, error) {
	ctx += "sink: "
	if val = resolve(val); val.Kind != yaml.MappingNode {
		return nil, p.errorf(val, `%smust be a mapping with the key "root" (and optionally "quota" and "raw_only"), not %s`, ctx, describe(val))
	}
	s := &Sink{}
	err := p.eachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		if k == "raw_only" {
			var err error
			s.RawOnly, err = p.boolean(ctx, k, vn)
			return err
		}
		if vn.Kind != yaml.ScalarNode || isNull(vn) {
			return p.errorf(vn, "%s%s must be a string, not %s", ctx, k, describe(vn))
		}
		switch k {
		case "root":
			if problem, _ := checkName(vn.Value); problem != "" {
				return p.errorf(vn, "%sroot %q is not a dataset name: %s", ctx, vn.Value, problem)
			}
			if !strings.Contains(vn.Value, "/") {
				return p.errorf(vn, "%sroot %q is a pool: give a dataset below it, such as %s/pushed", ctx, vn.Value, vn.Value)
			}
			s.Root, s.Line = vn.Value, vn.Line
		case "quota":
			q, err := units.ParseSize(vn.Value)
			if err == nil && q == 0 {
				err = pkgerrors.New("a quota of 0 would refuse every push; leave quota out for none")
			}
			if err != nil {
				return p.errorf(vn, "%squota: %v", ctx, err)
			}
			s.Quota = q
		default:
			return p.errorf(kn, `%sunknown key %q (the keys of a sink are "root", "quota" and "raw_only")`, ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Root == "" {
		return nil, p.errorf(key, `%sneeds "root": the dataset pushes are received under`, ctx)
	}
	return s, nil
}

// checkSinkRoots refuses sink roots inside one another: each identity's
// pushes must stay apart from every other's.
func (p *parser) checkSinkRoots(ids map[string]*Identity) error {
	var sinks []*Identity
	for _, id := range ids {
		if id.Sink != nil {
			sinks = append(sinks, id)
		}
	}
	sort.Slice(sinks, func(i, j int) bool { return sinks[i].Sink.Line < sinks[j].Sink.Line })
	for i, a := range sinks {
		for _, b := range sinks[i+1:] {
			ra, rb := a.Sink.Root, b.Sink.Root
			if ra == rb || strings.HasPrefix(ra, rb+"/") || strings.HasPrefix(rb, ra+"/") {
				return errAt(p.source, b.Sink.Line, fmt.Sprintf("identity %q: sink root %q overlaps identity %q's sink root %q (line %d): each identity's pushes must stay apart",
					b.Name, rb, a.Name, ra, a.Sink.Line))
			}
		}
	}
	return nil
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
