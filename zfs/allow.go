package zfs

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Allow is the output of `zfs allow DATASET`: the permissions delegated on
// the dataset and on each of its ancestors that has any, nearest first.
type Allow struct {
	Blocks []AllowBlock
}

// AllowBlock is what `zfs allow` lists for one dataset: the block headed
// "---- Permissions on DATASET ----".
type AllowBlock struct {
	Dataset string
	// Sets are the permission sets defined here ("@name" to its
	// permissions and sets), "Permission sets:".
	Sets map[string][]string
	// Create lists the "Create time permissions:": what the creator of a
	// new descendant gets on it. They grant nothing on existing datasets.
	Create  []string
	Entries []AllowEntry
}

// Scope is where a delegated permission applies, relative to the dataset
// it is set on.
type Scope uint8

// Scopes: "Local permissions:", "Descendent permissions:" and both,
// "Local+Descendent permissions:" (zfs allow without -l or -d).
const (
	Local           Scope = 1 << iota // the dataset itself (zfs allow -l)
	Descendent                        // the datasets and snapshots below it (zfs allow -d)
	LocalDescendent = Local | Descendent
)

// String is the scope as zfs allow prints its section, without " permissions:".
func (s Scope) String() string {
	switch s {
	case Local:
		return "Local"
	case Descendent:
		return "Descendent"
	case LocalDescendent:
		return "Local+Descendent"
	}
	return "Scope(" + strconv.Itoa(int(s)) + ")"
}

// WhoKind is whom an entry delegates to.
type WhoKind string

// The kinds of entries.
const (
	User     WhoKind = "user"
	Group    WhoKind = "group"
	Everyone WhoKind = "everyone"
)

// AllowEntry is one line of a Local, Descendent or Local+Descendent
// section: `user NAME perms`, `group NAME perms` or `everyone perms`.
type AllowEntry struct {
	Scope Scope
	Kind  WhoKind
	// Name is the user or group as zfs printed it; "" for everyone.
	Name string
	// ID is N of a name zfs printed as "(unknown: N)" (an id without a
	// passwd or group entry); -1 otherwise.
	ID    int64
	Perms []string // permission names and @set names
}

// Bounds of what ParseAllow accepts.
const (
	maxAllowOutput = 1 << 20 // bytes of output
	maxSetName     = 64      // ZFS_PERMSET_MAXLEN, with the '@'
	maxPermName    = 256
)

// section is the part of a block a line belongs to.
type section uint8

const (
	secNone section = iota
	secSets
	secCreate
	secEntries
)

var sectionHeaders = map[string]struct {
	sec   section
	scope Scope
}{
	"Permission sets:":              {secSets, 0},
	"Create time permissions:":      {secCreate, 0},
	"Local permissions:":            {secEntries, Local},
	"Descendent permissions:":       {secEntries, Descendent},
	"Local+Descendent permissions:": {secEntries, LocalDescendent},
}

const allowHeaderPrefix = "---- Permissions on "

// ParseAllow parses the output of `zfs allow DATASET`, as printed by
// OpenZFS 2.1 to 2.3 (see testdata/allow). Empty output (nothing
// delegated) gives an Allow without blocks. Anything else is an error.
func ParseAllow(r io.Reader) (*Allow, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAllowOutput+1))
	if err != nil {
		return nil, errors.Wrap(err, "read zfs allow output")
	}
	if len(data) > maxAllowOutput {
		return nil, errors.Errorf("zfs allow output is longer than %d bytes", maxAllowOutput)
	}
	a := &Allow{}
	var (
		cur   *AllowBlock
		sec   = secNone
		scope Scope
		seen  = map[string]bool{}
	)
	err = readLines(bytes.NewReader(data), func(line []byte) error {
		s := string(line)
		if strings.HasPrefix(s, allowHeaderPrefix) {
			name, err := parseAllowHeader(s)
			if err != nil {
				return err
			}
			if seen[name] {
				return errors.Errorf("permissions on %s listed twice", name)
			}
			seen[name] = true
			a.Blocks = append(a.Blocks, AllowBlock{Dataset: name, Sets: map[string][]string{}})
			cur, sec = &a.Blocks[len(a.Blocks)-1], secNone
			return nil
		}
		if h, ok := sectionHeaders[s]; ok {
			if cur == nil {
				return errors.Errorf("%q before the first \"---- Permissions on\" line", s)
			}
			sec, scope = h.sec, h.scope
			return nil
		}
		if s[0] != '\t' || sec == secNone {
			return errors.Errorf("unexpected line %q", truncate(s, 100))
		}
		body := s[1:]
		switch sec {
		case secSets:
			name, perms, ok := splitNamePerms(body)
			if !ok || !validSetName(name) {
				return errors.Errorf("expected @SET PERMISSIONS, got %q", truncate(body, 100))
			}
			if _, dup := cur.Sets[name]; dup {
				return errors.Errorf("set %s defined twice on %s", name, cur.Dataset)
			}
			cur.Sets[name] = perms
		case secCreate:
			perms, ok := parsePermList(body)
			if !ok || cur.Create != nil {
				return errors.Errorf("expected one line of create time permissions, got %q", truncate(body, 100))
			}
			cur.Create = perms
		case secEntries:
			e, err := parseAllowEntry(body, scope)
			if err != nil {
				return err
			}
			cur.Entries = append(cur.Entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// parseAllowHeader returns the dataset of "---- Permissions on NAME ---...":
// the dashes pad the line to 70 columns; a longer one ends with the space.
func parseAllowHeader(s string) (string, error) {
	rest := strings.TrimRight(s[len(allowHeaderPrefix):], "-")
	name, ok := strings.CutSuffix(rest, " ")
	if !ok || ValidateDatasetName(name) != nil {
		return "", errors.Errorf("bad header %q", truncate(s, 100))
	}
	if width := max(70, len(allowHeaderPrefix)+len(name)+1); len(s) != width {
		return "", errors.Errorf("bad header %q: %d columns, expected %d", truncate(s, 100), len(s), width)
	}
	return name, nil
}

// parseAllowEntry parses `user NAME perms`, `group NAME perms` or
// `everyone perms`.
func parseAllowEntry(body string, scope Scope) (AllowEntry, error) {
	e := AllowEntry{Scope: scope, ID: -1}
	kind, rest, _ := strings.Cut(body, " ")
	switch WhoKind(kind) {
	case Everyone:
		perms, ok := parsePermList(rest)
		if !ok {
			return e, errors.Errorf("expected everyone PERMISSIONS, got %q", truncate(body, 100))
		}
		e.Kind, e.Perms = Everyone, perms
		return e, nil
	case User, Group:
		name, perms, ok := splitNamePerms(rest)
		if !ok || strings.ContainsAny(name, "\t,") {
			return e, errors.Errorf("expected %s NAME PERMISSIONS, got %q", kind, truncate(body, 100))
		}
		if n, ok := strings.CutPrefix(name, "(unknown: "); ok {
			id, ok := parseUint([]byte(strings.TrimSuffix(n, ")")))
			if !ok || !strings.HasSuffix(n, ")") || id > 1<<32-1 {
				return e, errors.Errorf("bad id in %q", truncate(body, 100))
			}
			e.ID = int64(id)
		}
		e.Kind, e.Name, e.Perms = WhoKind(kind), name, perms
		return e, nil
	}
	return e, errors.Errorf("expected user, group or everyone, got %q", truncate(body, 100))
}

// splitNamePerms splits "NAME PERMS" where NAME may contain spaces: at the
// first space after which the rest is a permission list. Names are short
// (user, group and set names), which keeps a long line from costing the
// square of its length.
func splitNamePerms(s string) (string, []string, bool) {
	for i := 0; i < len(s) && i <= maxPermName; i++ {
		if s[i] != ' ' || i == 0 {
			continue
		}
		if perms, ok := parsePermList(s[i+1:]); ok {
			return s[:i], perms, true
		}
	}
	return "", nil, false
}

// parsePermList parses a comma list of permission names (lower case
// words that may hold digits, '_', '-', '.' and ':', as receive:append)
// and @set names.
func parsePermList(s string) ([]string, bool) {
	if s == "" {
		return nil, false
	}
	perms := strings.Split(s, ",")
	for _, p := range perms {
		if !validSetName(p) && !validPermName(p) {
			return nil, false
		}
	}
	return perms, true
}

func validPermName(p string) bool {
	if p == "" || len(p) > maxPermName || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_-.:", c) >= 0) {
			return false
		}
	}
	return true
}

// validSetName: '@' and one name component (zfs_deleg.c permset_namecheck).
func validSetName(s string) bool {
	if len(s) < 2 || len(s) >= maxSetName || s[0] != '@' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !validChar(s[i]) {
			return false
		}
	}
	return true
}

func isSet(p string) bool { return strings.HasPrefix(p, "@") }

// Principal is the user a delegated zfs runs as, with what the kernel
// matches entries against: its uid, name, and groups (primary and
// supplementary).
type Principal struct {
	User   string
	UID    uint32
	Groups []string // names of its groups
	GIDs   []uint32 // ids of its groups
}

// matches reports whether entry e delegates to p.
func (e *AllowEntry) matches(p Principal) bool {
	switch e.Kind {
	case Everyone:
		return true
	case User:
		return e.ID >= 0 && uint32(e.ID) == p.UID || e.ID < 0 && e.Name == p.User && p.User != ""
	case Group:
		if e.ID >= 0 {
			return slices.Contains(p.GIDs, uint32(e.ID))
		}
		return slices.Contains(p.Groups, e.Name)
	}
	return false
}

// PermSet is a set of permission names.
type PermSet map[string]bool

// Missing returns those of need that s lacks, in the order given.
func (s PermSet) Missing(need ...string) []string {
	var out []string
	for _, p := range need {
		if !s[p] {
			out = append(out, p)
		}
	}
	return out
}

// Sorted returns the permissions, sorted.
func (s PermSet) Sorted() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Effective returns the permissions who has on name, a dataset or a
// snapshot ("pool/a@s"), by the rules of OpenZFS's dsl_deleg_access_impl:
//
//   - the blocks of name's dataset and its ancestors apply, nearest first;
//     on the dataset itself Local and Local+Descendent entries, on an
//     ancestor Descendent and Local+Descendent ones; a snapshot is a
//     descendant of its dataset, so Local entries never apply to it;
//   - an entry applies to its user (by name, or by uid when zfs printed
//     "(unknown: N)"), to members of its group, and everyone to all;
//   - a @set granted on a dataset is looked up there and then upwards: the
//     nearest definition wins, and sets in it expand the same way from
//     that level;
//   - create time permissions grant nothing on existing datasets.
//
// name need not exist: a name below the dataset zfs allow was run on gets
// what a new descendant would. Set names are not in the result.
func (a *Allow) Effective(name string, who Principal) PermSet {
	fs, _, snapshot := strings.Cut(name, "@")
	var levels []*AllowBlock
	for i := range a.Blocks {
		if b := &a.Blocks[i]; underRoot(fs, b.Dataset) {
			levels = append(levels, b)
		}
	}
	// Nearest first, whatever the order zfs printed.
	slices.SortStableFunc(levels, func(x, y *AllowBlock) int { return len(y.Dataset) - len(x.Dataset) })
	perms := PermSet{}
	resolved := map[string]bool{} // granted sets: whether their definition was found yet
	add := func(ps []string) {
		for _, p := range ps {
			if !isSet(p) {
				perms[p] = true
			} else if _, ok := resolved[p]; !ok {
				resolved[p] = false
			}
		}
	}
	for _, b := range levels {
		want := Descendent
		if b.Dataset == fs && !snapshot {
			want = Local
		}
		for i := range b.Entries {
			if e := &b.Entries[i]; e.Scope&want != 0 && e.matches(who) {
				add(e.Perms)
			}
		}
		// Expand the sets defined here until nothing new is found; each
		// set is expanded once, so cycles end.
		for changed := true; changed; {
			changed = false
			for _, s := range sortedKeys(resolved) {
				if def, ok := b.Sets[s]; ok && !resolved[s] {
					resolved[s], changed = true, true
					add(def)
				}
			}
		}
	}
	return perms
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Allow returns the permissions delegated on dataset and its ancestors:
// `zfs allow DATASET`. A dataset that does not exist gives an error
// matching ErrNotFound; a zfs whose allow does not work (zfs-fuse, which
// lacks pyzfs) one matching ErrUnsupported.
func (z *ZFS) Allow(ctx context.Context, dataset string) (*Allow, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return nil, err
	}
	out, err := z.r.Run(ctx, "allow", dataset)
	if err != nil {
		// zfs-fuse prints "internal error: /usr/lib/zfs/pyzfs.py not
		// found" on stdout, and exits 255.
		var ce *CommandError
		if msg := strings.TrimSpace(string(out)); errors.As(err, &ce) && strings.Contains(msg+ce.Stderr, "pyzfs") {
			return nil, errors.Wrapf(ErrUnsupported, "zfs allow %s: %s", dataset, truncate(strings.TrimSpace(msg+" "+ce.Stderr), 200))
		}
		return nil, wrapCmd(err, "zfs allow %s", dataset)
	}
	a, err := ParseAllow(bytes.NewReader(out))
	if err != nil {
		return nil, errors.Wrapf(err, "zfs allow %s", dataset)
	}
	return a, nil
}
