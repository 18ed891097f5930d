// Package yamlstrict is the strict way zrep reads its YAML files (the
// policy, the pull configuration): it walks the yaml.Node tree itself, so
// that every unknown key, duplicate key, merge key or value of the wrong
// kind is an error naming the file and line, "source:line: problem",
// rather than something silently ignored.
package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	pkgerrors "github.com/pkg/errors"
	"go.yaml.in/yaml/v3"
)

// Parser reads one file; Source names it in error messages.
type Parser struct {
	Source string
}

// ErrEmpty is returned (wrapped) by Document for a file without a document.
var ErrEmpty = errors.New("empty file")

// Document decodes data, which must hold exactly one YAML document, and
// returns its root node with aliases resolved. A file with no document
// (empty, or only comments) gives an error wrapping ErrEmpty.
func (p *Parser) Document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		return nil, p.yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, p.yamlError(err)
	default:
		return nil, p.Errorf(&next, "more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.Errorf(&doc, "not a YAML document")
	}
	return Resolve(doc.Content[0]), nil
}

// EachPair calls fn for each key/value pair of the mapping m, in order,
// with aliases resolved. It refuses keys that are not non-null scalars,
// merge keys, and duplicate keys; ctx prefixes messages and what names the
// kind of key in them.
func (p *Parser) EachPair(m *yaml.Node, ctx, what string, fn func(key string, k, v *yaml.Node) error) error {
	first := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := Resolve(m.Content[i]), Resolve(m.Content[i+1])
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			return p.Errorf(k, "%smerge keys (<<) are not supported", ctx)
		case k.Kind != yaml.ScalarNode || IsNull(k):
			return p.Errorf(k, "%s%s must be a string, not %s", ctx, what, Describe(k))
		}
		if line, dup := first[k.Value]; dup {
			return p.Errorf(k, "%sduplicate %s %q (first on line %d)", ctx, what, k.Value, line)
		}
		first[k.Value] = k.Line
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// Errorf returns "source:line: message", or "source: message" when n is
// nil or has no line.
func (p *Parser) Errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return errAt(p.Source, line, fmt.Sprintf(format, args...))
}

// yamlError rewrites a syntax error of the yaml package, "yaml: line 3:
// did not find expected key", as "source:3: invalid YAML: did not ...".
func (p *Parser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	return errAt(p.Source, line, "invalid YAML: "+msg)
}

func errAt(source string, line int, msg string) error {
	if line > 0 {
		return pkgerrors.Errorf("%s:%d: %s", source, line, msg)
	}
	return pkgerrors.Errorf("%s: %s", source, msg)
}

// Resolve follows aliases (*name) to the anchored node.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is a null scalar ("", "~", "null").
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names the kind of n for error messages: "a mapping",
// "a sequence", "null", or the scalar with its tag, `"yes" (str)`.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		return "an unresolved alias"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q (%s)", n.Value, strings.TrimPrefix(n.ShortTag(), "!!"))
	}
	return "an unexpected YAML node"
}

// Bool decodes a YAML boolean (true or false, not "yes" or a quoted
// string); ctx and key name it in the error.
func (p *Parser) Bool(n *yaml.Node, ctx, key string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return false, p.Errorf(n, "%svalue of %q must be true or false, not %s", ctx, key, Describe(n))
	}
	return b, nil
}

// String decodes a non-empty plain or quoted string scalar.
func (p *Parser) String(n *yaml.Node, ctx, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || n.Value == "" {
		return "", p.Errorf(n, "%svalue of %q must be a non-empty string, not %s", ctx, key, Describe(n))
	}
	return n.Value, nil
}

// Int decodes an integer scalar.
func (p *Parser) Int(n *yaml.Node, ctx, key string) (int, error) {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		return 0, p.Errorf(n, "%svalue of %q must be a whole number, not %s", ctx, key, Describe(n))
	}
	return i, nil
}

// Strings decodes a sequence of non-empty strings; a null value is an
// empty list.
func (p *Parser) Strings(n *yaml.Node, ctx, key string) ([]string, error) {
	if IsNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.Errorf(n, "%svalue of %q must be a list of strings, not %s", ctx, key, Describe(n))
	}
	out := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		item = Resolve(item)
		if item.Kind != yaml.ScalarNode || item.ShortTag() != "!!str" || item.Value == "" {
			return nil, p.Errorf(item, "%sitems of %q must be non-empty strings, not %s", ctx, key, Describe(item))
		}
		out = append(out, item.Value)
	}
	return out, nil
}
