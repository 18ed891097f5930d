package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	pkgerrors "github.com/pkg/errors"
	"go.yaml.in/yaml/v3"

	"github.com/zrep/zrep/internal/units"
	"github.com/zrep/zrep/internal/yamlstrict"
)

// parser walks the yaml.Node tree of one policy file. It accepts only the
// documented keys, so a typo is an error rather than a silently ignored
// rule, and it reports the first problem found, in document order.
type parser struct {
	yamlstrict.Parser
}

func parseYAML(data []byte, source string) (map[string]*Identity, error) {
	p := parser{yamlstrict.Parser{Source: source}}
	root, err := p.Document(data)
	if errors.Is(err, yamlstrict.ErrEmpty) {
		return nil, p.Errorf(nil, "no identities defined (empty file)")
	}
	if err != nil {
		return nil, err
	}
	return p.file(root)
}

func (p *parser) file(root *yaml.Node) (map[string]*Identity, error) {
	root = yamlstrict.Resolve(root)
	if yamlstrict.IsNull(root) {
		return nil, p.Errorf(nil, "no identities defined (empty document)")
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.Errorf(root, `top level must be a mapping with the key "identities", not %s`, yamlstrict.Describe(root))
	}
	var ids *yaml.Node
	err := p.EachPair(root, "", "key", func(key string, k, v *yaml.Node) error {
		if key != "identities" {
			return p.Errorf(k, `unknown key %q (the only top-level key is "identities")`, key)
		}
		ids = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return nil, p.Errorf(root, `no identities defined (missing key "identities")`)
	}
	if ids = yamlstrict.Resolve(ids); yamlstrict.IsNull(ids) || ids.Kind == yaml.MappingNode && len(ids.Content) == 0 {
		return nil, p.Errorf(ids, "no identities defined")
	}
	if ids.Kind != yaml.MappingNode {
		return nil, p.Errorf(ids, `"identities" must be a mapping of identity names, not %s`, yamlstrict.Describe(ids))
	}
	identities := make(map[string]*Identity)
	err = p.EachPair(ids, "", "identity", func(name string, k, v *yaml.Node) error {
		if name == "" {
			return p.Errorf(k, "empty identity name")
		}
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return p.Errorf(k, "identity name %q contains a control character", name)
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
	val = yamlstrict.Resolve(val)
	if yamlstrict.IsNull(val) {
		return nil, p.Errorf(key, `%sneeds "datasets" (what it may pull) or "sink" (where it may push)`, ctx)
	}
	if val.Kind != yaml.MappingNode {
		return nil, p.Errorf(val, `%smust be a mapping with the keys "datasets" and/or "sink", not %s`, ctx, yamlstrict.Describe(val))
	}
	id := &Identity{Name: name}
	err := p.EachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
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
				err = p.Errorf(vn, "%scursor_bookmarks needs an identity name of letters, digits, '_', '-', '.' and ':' (it names the bookmark zrep_cursor_%s)", ctx, name)
			}
		default:
			err = p.Errorf(kn, `%sunknown key %q (the keys of an identity are "datasets", "raw_only", "cursor_bookmarks" and "sink")`, ctx, k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if id.Source == nil && id.Sink == nil {
		return nil, p.Errorf(key, `%sneeds "datasets" (what it may pull) or "sink" (where it may push)`, ctx)
	}
	if id.RawOnly && id.Source == nil {
		return nil, p.Errorf(key, `%sraw_only applies to the datasets it may pull, and it has none (a sink takes raw_only under "sink")`, ctx)
	}
	if id.CursorBookmarks && id.Source == nil {
		return nil, p.Errorf(key, `%scursor_bookmarks applies to the datasets it may pull, and it has none`, ctx)
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
		return false, p.Errorf(vn, "%s%s must be true or false, not %s", ctx, key, yamlstrict.Describe(vn))
	}
	return b, nil
}

// datasets parses an identity's datasets map of patterns to booleans.
func (p *parser) datasets(ctx string, dsKey, ds *yaml.Node) ([]Rule, error) {
	if ds = yamlstrict.Resolve(ds); yamlstrict.IsNull(ds) {
		return nil, p.Errorf(dsKey, "%sno datasets map", ctx)
	}
	if ds.Kind != yaml.MappingNode {
		return nil, p.Errorf(ds, "%sdatasets must be a mapping of dataset patterns to true or false, not %s", ctx, yamlstrict.Describe(ds))
	}
	if len(ds.Content) == 0 {
		return nil, p.Errorf(dsKey, "%sdatasets map is empty", ctx)
	}
	var rules []Rule
	err := p.EachPair(ds, ctx, "dataset pattern", func(k string, kn, vn *yaml.Node) error {
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
	if val = yamlstrict.Resolve(val); val.Kind != yaml.MappingNode {
		return nil, p.Errorf(val, `%smust be a mapping with the key "root" (and optionally "quota" and "raw_only"), not %s`, ctx, yamlstrict.Describe(val))
	}
	s := &Sink{}
	err := p.EachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		if k == "raw_only" {
			var err error
			s.RawOnly, err = p.boolean(ctx, k, vn)
			return err
		}
		if vn.Kind != yaml.ScalarNode || yamlstrict.IsNull(vn) {
			return p.Errorf(vn, "%s%s must be a string, not %s", ctx, k, yamlstrict.Describe(vn))
		}
		switch k {
		case "root":
			if problem, _ := checkName(vn.Value); problem != "" {
				return p.Errorf(vn, "%sroot %q is not a dataset name: %s", ctx, vn.Value, problem)
			}
			if !strings.Contains(vn.Value, "/") {
				return p.Errorf(vn, "%sroot %q is a pool: give a dataset below it, such as %s/pushed", ctx, vn.Value, vn.Value)
			}
			s.Root, s.Line = vn.Value, vn.Line
		case "quota":
			q, err := units.ParseSize(vn.Value)
			if err == nil && q == 0 {
				err = pkgerrors.New("a quota of 0 would refuse every push; leave quota out for none")
			}
			if err != nil {
				return p.Errorf(vn, "%squota: %v", ctx, err)
			}
			s.Quota = q
		default:
			return p.Errorf(kn, `%sunknown key %q (the keys of a sink are "root", "quota" and "raw_only")`, ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Root == "" {
		return nil, p.Errorf(key, `%sneeds "root": the dataset pushes are received under`, ctx)
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
				return p.Errorf(&yaml.Node{Line: b.Sink.Line}, "identity %q: sink root %q overlaps identity %q's sink root %q (line %d): each identity's pushes must stay apart",
					b.Name, rb, a.Name, ra, a.Sink.Line)
			}
		}
	}
	return nil
}

// rule parses one "pattern: bool" entry. The bare key "<" is the subtree
// of every pool: all datasets.
func (p *parser) rule(ctx, key string, kn, vn *yaml.Node) (Rule, error) {
	pattern, subtree := strings.CutSuffix(key, "<")
	if key != "<" {
		if problem, at := checkName(pattern); problem != "" {
			if problem == "invalid character" {
				if r, _ := utf8.DecodeRuneInString(pattern[at:]); r != utf8.RuneError {
					problem = fmt.Sprintf("invalid character %q", r)
				} else {
					problem = fmt.Sprintf("invalid byte 0x%02x", pattern[at])
				}
			}
			return Rule{}, p.Errorf(kn, "%sinvalid dataset pattern %q: %s", ctx, key, problem)
		}
	}
	allow, err := p.Bool(vn, ctx, key)
	if err != nil {
		return Rule{}, err
	}
	return Rule{Pattern: pattern, Subtree: subtree, Allow: allow, Line: kn.Line}, nil
}
