// Package policy reads the YAML policy file that decides which ZFS datasets
// an SSH identity may see and replicate.
//
// The file maps identities to dataset filters written in zrepl's filter
// syntax:
//
//	identities:
//	  backup1:
//	    datasets:
//	      "tank/data<": true          # tank/data and everything below it
//	      "tank/data/private<": false # ...except this subtree
//	      "tank/vm": true             # exactly tank/vm, not its children
//
// A key ending in '<' matches the dataset and every dataset below it
// (tank/data< matches tank/data/b but not tank/database); a key without
// '<' matches exactly one dataset. The bare key "<" matches every dataset
// of every pool. The most specific matching key wins:
// an exact key beats a subtree key, and among subtree keys the deepest
// wins. A dataset no key matches is denied.
//
// Patterns, and the names passed to Filter.Decide, are ZFS dataset names:
// components of letters, digits, '_', '.', ':', '-' and space, separated
// by single '/'; no leading '/' or '-', no trailing '/', no "." or ".."
// component, no '@', '#' or '%'. A '<' may only end a pattern. Values are
// YAML booleans; the only keys are "identities" and, per identity,
// "datasets". Anything else is an error naming the file and line.
//
// The package does no I/O beyond Load and keeps no global state; a parsed
// File and its Filters are immutable and safe for concurrent use.
package policy

import (
	"errors"
	"fmt"
	"os"
	"sort"

	pkgerrors "github.com/pkg/errors"
)

// ErrUnknownIdentity is returned (wrapped) by File.Filter for an identity
// the policy file does not define. Test for it with errors.Is.
var ErrUnknownIdentity = errors.New("unknown identity")

// File is a parsed policy file.
type File struct {
	source  string
	names   []string // sorted
	filters map[string]*Filter
}

// Load reads and parses the policy file at path. Error messages name path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, pkgerrors.Wrap(err, "load policy")
	}
	return Parse(data, path)
}

// Parse parses a policy file held in data. source names the file in error
// messages, which read "source:line: problem".
func Parse(data []byte, source string) (*File, error) {
	filters, err := parseYAML(data, source)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(filters))
	for name := range filters {
		names = append(names, name)
	}
	sort.Strings(names)
	return &File{source: source, names: names, filters: filters}, nil
}

// Identities returns the identities the file defines, sorted.
func (f *File) Identities() []string {
	return append([]string(nil), f.names...)
}

// Filter returns the dataset filter of identity. For an identity the file
// does not define it returns an error wrapping ErrUnknownIdentity.
func (f *File) Filter(identity string) (*Filter, error) {
	if flt, ok := f.filters[identity]; ok {
		return flt, nil
	}
	return nil, fmt.Errorf("%s: %w %q", f.source, ErrUnknownIdentity, identity)
}
