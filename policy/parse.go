package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/zrep/zrep/internal/yamlstrict"
)

// parser walks the yaml.Node tree of one policy file. It accepts only the
// documented keys, so a typo is an error rather than a silently ignored
// rule, and it reports the first problem found, in document order.
type parser struct {
	yamlstrict.Parser
}

func parseYAML(data []byte, source string) (map[string]*Filter, error) {
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

func (p *parser) file(root *yaml.Node) (map[string]*Filter, error) {
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
	if yamlstrict.IsNull(ids) || ids.Kind == yaml.MappingNode && len(ids.Content) == 0 {
		return nil, p.Errorf(ids, "no identities defined")
	}
	if ids.Kind != yaml.MappingNode {
		return nil, p.Errorf(ids, `"identities" must be a mapping of identity names, not %s`, yamlstrict.Describe(ids))
	}
	filters := make(map[string]*Filter)
	err = p.EachPair(ids, "", "identity", func(name string, k, v *yaml.Node) error {
		if name == "" {
			return p.Errorf(k, "empty identity name")
		}
		if strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return p.Errorf(k, "identity name %q contains a control character", name)
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
	if yamlstrict.IsNull(val) {
		return nil, p.Errorf(key, "%sno datasets map", ctx)
	}
	if val.Kind != yaml.MappingNode {
		return nil, p.Errorf(val, `%smust be a mapping with the key "datasets", not %s`, ctx, yamlstrict.Describe(val))
	}
	var dsKey, ds *yaml.Node
	err := p.EachPair(val, ctx, "key", func(k string, kn, vn *yaml.Node) error {
		if k != "datasets" {
			return p.Errorf(kn, `%sunknown key %q (the only key of an identity is "datasets")`, ctx, k)
		}
		dsKey, ds = kn, vn
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ds == nil {
		return nil, p.Errorf(key, "%sno datasets map", ctx)
	}
	if yamlstrict.IsNull(ds) {
		return nil, p.Errorf(dsKey, "%sno datasets map", ctx)
	}
	if ds.Kind != yaml.MappingNode {
		return nil, p.Errorf(ds, "%sdatasets must be a mapping of dataset patterns to true or false, not %s", ctx, yamlstrict.Describe(ds))
	}
	if len(ds.Content) == 0 {
		return nil, p.Errorf(dsKey, "%sdatasets map is empty", ctx)
	}
	var rules []Rule
	err = p.EachPair(ds, ctx, "dataset pattern", func(k string, kn, vn *yaml.Node) error {
		r, err := p.rule(ctx, k, kn, vn)
		rules = append(rules, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rules, nil
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
