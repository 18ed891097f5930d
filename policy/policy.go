// Package policy reads the YAML policy file that decides what an SSH
// identity may do: which ZFS datasets it may pull (a source), and under
// which dataset it may push (a sink).
//
// The file maps identities to dataset filters written in zrepl's filter
// syntax, and to sinks:
//
//	identities:
//	  backup1:
//	    datasets:
//	      "tank/data<": true          # tank/data and everything below it
//	      "tank/data/private<": false # ...except this subtree
//	      "tank/vm": true             # exactly tank/vm, not its children
//	  laptop1:
//	    sink:
//	      root: backup/laptops/laptop1 # pushes land below this dataset
//	      quota: 500G                  # optional, applied to root
//	      raw_only: true               # optional: encrypted datasets only, raw
//
// An identity with datasets may also have "raw_only: true": encrypted
// datasets go to it only raw (zfs send -w), never as plaintext; and
// "cursor_bookmarks: true": the source keeps a bookmark of the newest
// snapshot the identity confirmed receiving, so that incrementals can start
// there after the snapshot itself was pruned.
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
// "datasets", "raw_only" and "sink" (with "root", "quota" and "raw_only").
// A sink root is a dataset
// below a pool, and no two identities' sink roots may be inside one
// another. Anything else is an error naming the file and line.
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
	source     string
	names      []string // sorted
	identities map[string]*Identity
}

// Identity is what one identity may do: pull the datasets its Source
// allows, push under its Sink's root, or both.
type Identity struct {
	Name string
	// Source decides which datasets the identity may list and send; nil
	// when the identity may not pull.
	Source *Filter
	// Sink is where the identity may push; nil when it may not.
	Sink *Sink
	// RawOnly: encrypted datasets go to this identity only raw (zfs send
	// -w), so it never gets their plaintext.
	RawOnly bool
	// CursorBookmarks: the source keeps the bookmark
	// DATASET#zrep_cursor_<identity> at the newest snapshot the identity
	// confirmed receiving; otherwise the endpoint changes nothing.
	CursorBookmarks bool
}

// Sink is an identity's push target: pushes add snapshots under Root and
// nothing else.
type Sink struct {
	Root  string // the dataset pushes are received under
	Quota uint64 // bytes, applied to Root; 0 means none
	// RawOnly: the sink accepts only raw streams of encrypted datasets, so
	// the backup server never holds plaintext of what it is given.
	RawOnly bool
	Line    int // where root is in the file
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
	identities, err := parseYAML(data, source)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(identities))
	for name := range identities {
		names = append(names, name)
	}
	sort.Strings(names)
	return &File{source: source, names: names, identities: identities}, nil
}

// Identities returns the identities the file defines, sorted.
func (f *File) Identities() []string {
	return append([]string(nil), f.names...)
}

// Identity returns what identity may do. For an identity the file does not
// define it returns an error wrapping ErrUnknownIdentity.
func (f *File) Identity(identity string) (*Identity, error) {
	if id, ok := f.identities[identity]; ok {
		return id, nil
	}
	return nil, fmt.Errorf("%s: %w %q", f.source, ErrUnknownIdentity, identity)
}

// ErrNoDatasets is returned (wrapped) by File.Filter for an identity that
// has a sink but no datasets: it may push, not pull.
var ErrNoDatasets = errors.New("identity has no datasets")

// Filter returns the dataset filter of identity: an error wrapping
// ErrUnknownIdentity for an identity the file does not define, and one
// wrapping ErrNoDatasets for one that may only push.
func (f *File) Filter(identity string) (*Filter, error) {
	id, err := f.Identity(identity)
	if err != nil {
		return nil, err
	}
	if id.Source == nil {
		return nil, fmt.Errorf("%s: %w: %q may only push (it has a sink and no datasets)", f.source, ErrNoDatasets, identity)
	}
	return id.Source, nil
}
