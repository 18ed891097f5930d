package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Rule is one "pattern: bool" entry of an identity's datasets map.
type Rule struct {
	Pattern string // dataset name, without the trailing '<'
	Subtree bool   // the key ended in '<': Pattern and all datasets below it
	Allow   bool   // the value: true allows, false denies
	Line    int    // line of the key in the policy file
}

// String formats r as it appears in the file, with its line:
// `"tank/data<": true (line 4)`.
func (r Rule) String() string {
	key := r.Pattern
	if r.Subtree {
		key += "<"
	}
	return fmt.Sprintf("%q: %t (line %d)", key, r.Allow, r.Line)
}

// Filter decides which datasets one identity may access. It is immutable
// and safe for concurrent use.
type Filter struct {
	exact   map[string]*Rule // keys without '<', by Pattern
	subtree map[string]*Rule // keys with '<', by Pattern
}

func newFilter(rules []Rule) *Filter {
	f := &Filter{exact: make(map[string]*Rule), subtree: make(map[string]*Rule)}
	for i := range rules {
		r := &rules[i]
		if r.Subtree {
			f.subtree[r.Pattern] = r
		} else {
			f.exact[r.Pattern] = r
		}
	}
	return f
}

// Decision is the outcome of Filter.Decide.
type Decision struct {
	Allowed bool
	// Rule is the rule that decided; nil when no rule matched and the
	// dataset was denied by default. It points into the Filter: do not
	// modify it.
	Rule *Rule

	invalid bool // the name was not a valid dataset name
}

// String explains d, e.g. `allowed by "tank/data<": true (line 4)`
// (a decision by the bare "<" says that it matches everything),
// `denied by default: no rule matches`, or, for a name that is not a
// dataset name, `denied: not a valid dataset name`.
func (d Decision) String() string {
	all := ""
	if d.Rule != nil && d.Rule.Subtree && d.Rule.Pattern == "" {
		all = ` (the bare "<" matches every dataset of every pool)`
	}
	switch {
	case d.Rule != nil && d.Allowed:
		return "allowed by " + d.Rule.String() + all
	case d.Rule != nil:
		return "denied by " + d.Rule.String() + all
	case d.invalid:
		return "denied: not a valid dataset name"
	default:
		return "denied by default: no rule matches"
	}
}

// Decide reports whether dataset may be accessed and which rule decided.
//
// dataset must be a plain dataset name such as "tank/data/a". Snapshot and
// bookmark names ("tank/a@snap", "tank/a#mark") are not dataset names:
// callers decide on the dataset part. Any name that is not a valid dataset
// name (see the package documentation) is denied, with a nil Rule.
//
// Decide does not allocate; its cost is a validity scan of the name plus
// one map lookup per path component.
func (f *Filter) Decide(dataset string) Decision {
	if problem, _ := checkName(dataset); problem != "" {
		return Decision{invalid: true}
	}
	if r, ok := f.exact[dataset]; ok {
		return Decision{Allowed: r.Allow, Rule: r}
	}
	// The deepest subtree pattern that is dataset or one of its ancestors;
	// last the bare "<" (Pattern ""), the subtree of every pool.
	for name := dataset; ; {
		if r, ok := f.subtree[name]; ok {
			return Decision{Allowed: r.Allow, Rule: r}
		}
		if name == "" {
			return Decision{}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			i = 0
		}
		name = name[:i]
	}
}

// Allows reports whether dataset may be accessed; see Decide.
func (f *Filter) Allows(dataset string) bool {
	return f.Decide(dataset).Allowed
}

// Roots returns the datasets below which every dataset the filter may allow
// lies: the patterns of the allowing rules, leaving out those below another
// allowing pattern, sorted. Listing each root recursively finds every
// allowed dataset (and some denied ones, which Decide then drops), without
// walking pools the identity cannot see. An allowing bare "<" makes the
// only root "", which stands for all pools.
func (f *Filter) Roots() []string {
	if r := f.subtree[""]; r != nil && r.Allow {
		return []string{""}
	}
	var allowed []string
	for _, rules := range []map[string]*Rule{f.exact, f.subtree} {
		for p, r := range rules {
			if r.Allow {
				allowed = append(allowed, p)
			}
		}
	}
	sort.Strings(allowed)
	var roots []string
	for _, p := range allowed {
		if n := len(roots); n > 0 && roots[n-1] == p {
			continue // both "p" and "p<" allow
		}
		if !f.belowAllowed(p) {
			roots = append(roots, p)
		}
	}
	return roots
}

// belowAllowed reports whether a proper ancestor of p is an allowing pattern.
func (f *Filter) belowAllowed(p string) bool {
	for i := strings.LastIndexByte(p, '/'); i > 0; i = strings.LastIndexByte(p[:i], '/') {
		anc := p[:i]
		if r := f.exact[anc]; r != nil && r.Allow {
			return true
		}
		if r := f.subtree[anc]; r != nil && r.Allow {
			return true
		}
	}
	return false
}

// Allow returns a Filter allowing exactly the datasets patterns name, in
// the policy's syntax ("tank/data" one dataset, "tank/data<" it and every
// dataset below it), and nothing else: a pushing host's --dataset list.
func Allow(patterns []string) (*Filter, error) {
	rules := make([]Rule, 0, len(patterns))
	for i, key := range patterns {
		pattern, subtree := strings.CutSuffix(key, "<")
		if problem, _ := checkName(pattern); problem != "" {
			return nil, fmt.Errorf("invalid dataset pattern %q: %s", key, problem)
		}
		rules = append(rules, Rule{Pattern: pattern, Subtree: subtree, Allow: true, Line: i + 1})
	}
	return newFilter(rules), nil
}
