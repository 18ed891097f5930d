package resumetoken

import (
	"fmt"
	"strings"
)

// snapshotNameProblem says why name is not a snapshot name pool[/fs]*@snap
// that OpenZFS could have (zfs_namecheck.c, and zpool's pool name rules),
// or returns "". The rules are those of zfs.ValidateSnapshotName, which
// this package does not import so that package zfs may import it; a test
// checks that both agree.
func snapshotNameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("%d bytes long, more than %d", len(name), MaxNameLen)
	}
	at := strings.IndexByte(name, '@')
	if at < 0 {
		return "no '@'"
	}
	ds, snap := name[:at], name[at+1:]
	if ds == "" {
		return "empty dataset name"
	}
	if ds[0] == '/' || ds[len(ds)-1] == '/' {
		return "dataset name starts or ends with '/'"
	}
	for i := 0; i < len(ds); i++ {
		if c := ds[i]; c != '/' && !nameChar(c) {
			return fmt.Sprintf("%s in the dataset name", charString(c))
		}
	}
	for i, comp := range strings.Split(ds, "/") {
		switch comp {
		case "":
			return "empty dataset name component"
		case ".", "..":
			return fmt.Sprintf("dataset name component %q", comp)
		}
		if i == 0 {
			if why := poolNameProblem(comp); why != "" {
				return why
			}
		}
	}
	switch snap {
	case "":
		return "empty snapshot name"
	case ".", "..":
		return fmt.Sprintf("snapshot name %q", snap)
	}
	for i := 0; i < len(snap); i++ {
		if c := snap[i]; !nameChar(c) {
			return fmt.Sprintf("%s in the snapshot name", charString(c))
		}
	}
	return ""
}

// nameChar reports whether c may appear in a name component
// (zfs_namecheck.c valid_char).
func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == ':' || c == ' '
}

// poolNameProblem applies the pool name rules of zpool create
// (pool_namecheck and zpool_name_valid), as zfs.ValidateSnapshotName does.
func poolNameProblem(pool string) string {
	c := pool[0]
	switch {
	case len(pool) >= MaxNameLen+1-2-2*len("$ORIGIN"):
		return fmt.Sprintf("pool name of %d bytes", len(pool))
	case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
		return "pool name does not start with a letter"
	case strings.HasPrefix(pool, "mirror"), strings.HasPrefix(pool, "raidz"),
		strings.HasPrefix(pool, "draid"), strings.HasPrefix(pool, "spare"), pool == "log":
		return fmt.Sprintf("reserved pool name %q", pool)
	case c == 'c' && len(pool) > 1 && pool[1] >= '0' && pool[1] <= '9':
		return fmt.Sprintf("pool name %q looks like a disk (c[0-9]...)", pool)
	}
	return ""
}
