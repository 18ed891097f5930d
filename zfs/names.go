package zfs

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"
)

// ErrInvalidName is wrapped by every error that reports a malformed dataset, snapshot or bookmark name.
var ErrInvalidName = errors.New("invalid name")

const (
	// maxNameLen is ZFS_MAX_DATASET_NAME_LEN: a full name must be shorter than this.
	maxNameLen = 256
	// maxPoolNameLen leaves room for "pool/$ORIGIN@$ORIGIN", as zpool create insists.
	maxPoolNameLen = maxNameLen - 2 - 2*len("$ORIGIN")
)

// nameError describes why a name was refused; it unwraps to ErrInvalidName.
type nameError struct {
	name string
	why  string
}

func (e *nameError) Error() string {
	return fmt.Sprintf("invalid name %q: %s", e.name, e.why)
}

func (e *nameError) Unwrap() error { return ErrInvalidName }

func invalidName(name, format string, args ...any) error {
	return errors.WithStack(&nameError{name: name, why: fmt.Sprintf(format, args...)})
}

// validChar reports whether c may appear in a name component (zfs_namecheck.c valid_char).
func validChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':' || c == ' '
}

// charProblem explains why c is not allowed, for the error message.
func charProblem(c byte, where string) string {
	switch c {
	case '@':
		return fmt.Sprintf("'@' is not allowed in %s", where)
	case '#':
		return fmt.Sprintf("'#' is not allowed in %s", where)
	case '%':
		return fmt.Sprintf("'%%' is not allowed in %s", where)
	case '/':
		return fmt.Sprintf("'/' is not allowed in %s", where)
	}
	return fmt.Sprintf("invalid character %q in %s", rune(c), where)
}

// commonCheck applies the rules shared by every kind of name.
func commonCheck(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name[0] == '-':
		return "starts with '-'"
	case len(name) >= maxNameLen:
		return fmt.Sprintf("%d bytes long, must be shorter than %d", len(name), maxNameLen)
	}
	return ""
}

// datasetProblem returns why ds is not a valid filesystem or volume name, or "".
func datasetProblem(ds string) string {
	if ds == "" {
		return "empty dataset name"
	}
	if ds[0] == '/' {
		return "leading '/'"
	}
	if ds[len(ds)-1] == '/' {
		return "trailing '/'"
	}
	for i := 0; i < len(ds); i++ {
		if c := ds[i]; c != '/' && !validChar(c) {
			return charProblem(c, "a dataset name")
		}
	}
	first := true
	for comp := range strings.SplitSeq(ds, "/") {
		switch comp {
		case "":
			return "empty component (\"//\")"
		case ".", "..":
			return fmt.Sprintf("component %q is not allowed", comp)
		}
		if first {
			if why := poolProblem(comp); why != "" {
				return why
			}
			first = false
		}
	}
	return ""
}

// poolProblem applies zpool's pool name rules (pool_namecheck and zpool_name_valid).
func poolProblem(pool string) string {
	c := pool[0]
	switch {
	case len(pool) >= maxPoolNameLen:
		return fmt.Sprintf("pool name is %d bytes long, must be shorter than %d", len(pool), maxPoolNameLen)
	case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
		return "pool name must start with a letter"
	case strings.HasPrefix(pool, "mirror"), strings.HasPrefix(pool, "raidz"),
		strings.HasPrefix(pool, "draid"), strings.HasPrefix(pool, "spare"), pool == "log":
		return fmt.Sprintf("pool name %q is reserved", pool)
	case c == 'c' && len(pool) > 1 && pool[1] >= '0' && pool[1] <= '9':
		return fmt.Sprintf("pool name %q looks like a disk name (c[0-9]...)", pool)
	}
	return ""
}

// shortProblem returns why the part after '@' or '#' is invalid, or "".
func shortProblem(short, kind string) string {
	if short == "" {
		return "empty " + kind + " name"
	}
	if short == "." || short == ".." {
		return fmt.Sprintf("%s name %q is not allowed", kind, short)
	}
	for i := 0; i < len(short); i++ {
		if c := short[i]; !validChar(c) {
			return charProblem(c, "a "+kind+" name")
		}
	}
	return ""
}

// ValidateDatasetName checks a filesystem or volume name, pool[/component]*.
// Names follow OpenZFS zfs_namecheck.c, with the stricter pool rules of zpool create,
// and never contain '%' or start with '-'.
func ValidateDatasetName(name string) error {
	if why := commonCheck(name); why != "" {
		return invalidName(name, "%s", why)
	}
	if why := datasetProblem(name); why != "" {
		return invalidName(name, "%s", why)
	}
	return nil
}

// ValidateSnapshotName checks a snapshot name, dataset@snap.
func ValidateSnapshotName(name string) error {
	return validateVersion(name, '@')
}

// ValidateBookmarkName checks a bookmark name, dataset#bookmark.
func ValidateBookmarkName(name string) error {
	return validateVersion(name, '#')
}

// ValidateVersionName checks a snapshot or bookmark name.
func ValidateVersionName(name string) error {
	_, _, _, err := SplitVersion(name)
	return err
}

// SplitVersion validates a snapshot or bookmark name and splits "pool/a@s1" into
// ("pool/a", '@', "s1"), or "pool/a#b1" into ("pool/a", '#', "b1").
func SplitVersion(name string) (dataset string, sep byte, short string, err error) {
	i := strings.IndexAny(name, "@#")
	if i < 0 {
		if why := commonCheck(name); why != "" {
			return "", 0, "", invalidName(name, "%s", why)
		}
		return "", 0, "", invalidName(name, "neither a snapshot (dataset@snap) nor a bookmark (dataset#bookmark)")
	}
	sep = name[i]
	if err := validateVersion(name, sep); err != nil {
		return "", 0, "", err
	}
	return name[:i], sep, name[i+1:], nil
}

func validateVersion(name string, sep byte) error {
	kind := "snapshot"
	if sep == '#' {
		kind = "bookmark"
	}
	if why := commonCheck(name); why != "" {
		return invalidName(name, "%s", why)
	}
	i := strings.IndexByte(name, sep)
	if i < 0 {
		return invalidName(name, "not a %s name: no '%c'", kind, sep)
	}
	if why := datasetProblem(name[:i]); why != "" {
		return invalidName(name, "%s", why)
	}
	if why := shortProblem(name[i+1:], kind); why != "" {
		return invalidName(name, "%s", why)
	}
	return nil
}

// splitVersionName splits a version name at its first '@' or '#' without validating it.
func splitVersionName(name string) (dataset, short string) {
	i := strings.IndexAny(name, "@#")
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

// validatePropertyName refuses anything that is not a plain property name
// (a native one such as "mountpoint" or a user one such as "com.example:x"),
// so that a name can never be taken for an option.
func validatePropertyName(name string) error {
	if name == "" || len(name) > maxNameLen || name[0] == '-' {
		return invalidName(name, "not a property name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return invalidName(name, "invalid character %q in a property name", rune(c))
		}
	}
	return nil
}
