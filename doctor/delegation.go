package doctor

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/zfs"
)

// Delegations reads what `zfs allow` delegates; *zfs.ZFS implements it.
type Delegations interface {
	Allow(ctx context.Context, dataset string) (*zfs.Allow, error)
}

// FeatureDetector detects what the installed zfs supports; *zfs.ZFS
// implements it.
type FeatureDetector interface {
	Features(ctx context.Context) (zfs.Features, error)
}

// Who is the user a zrep process runs as, whose `zfs allow` permissions
// the delegation checks check.
type Who struct {
	zfs.Principal
	Why string // how doctor knows: "--user", "owner of FILE", "the user doctor runs as"
}

// LookupUser returns the user named name, or with the uid name, and its
// groups.
func LookupUser(name string) (zfs.Principal, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var uerr error
		if u, uerr = user.LookupId(name); uerr != nil {
			return zfs.Principal{}, errors.Wrapf(err, "user %s", name)
		}
	}
	return principal(u)
}

// LookupUID returns the user with uid, and its groups. A uid without a
// passwd entry gives a Principal with the uid only.
func LookupUID(uid uint32) (zfs.Principal, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	var unknown user.UnknownUserIdError
	if errors.As(err, &unknown) {
		return zfs.Principal{UID: uid}, nil
	}
	if err != nil {
		return zfs.Principal{}, errors.Wrapf(err, "uid %d", uid)
	}
	return principal(u)
}

func principal(u *user.User) (zfs.Principal, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return zfs.Principal{}, errors.Errorf("user %s: uid %q is not a number", u.Username, u.Uid)
	}
	p := zfs.Principal{User: u.Username, UID: uint32(uid)}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid} // no group database: the primary group only
	}
	for _, g := range gids {
		id, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			continue
		}
		p.GIDs = append(p.GIDs, uint32(id))
		if grp, err := user.LookupGroupId(g); err == nil {
			p.Groups = append(p.Groups, grp.Name)
		}
	}
	return p, nil
}

// name is the user as zfs allow -u takes it.
func (w Who) name() string {
	if w.User != "" {
		return w.User
	}
	return strconv.FormatUint(uint64(w.UID), 10)
}

func (w Who) subject() string {
	return fmt.Sprintf("user %s (%s)", w.name(), w.Why)
}

// asRoot is the finding for a process that runs as root.
func (w Who) asRoot() []Finding {
	return []Finding{finding("delegation", w.subject(), OK, "runs as root: no delegation needed", "")}
}

// need is the permissions one dataset needs, by where zfs checks them:
// on the dataset itself (and, when below is set, on the datasets below
// it), and on its snapshots (send).
type need struct {
	here     []string
	snapshot []string
	below    bool
}

// lacking returns the permissions of n that who lacks, and of those the
// ones it has on the dataset itself only (given with zfs allow -l).
func (n need) lacking(a *zfs.Allow, dataset string, who zfs.Principal) (missing, localOnly []string) {
	here := a.Effective(dataset, who)
	// A dataset below, or a snapshot: both get what is given to
	// descendants (a new name below stands for them).
	desc := a.Effective(dataset+"@zrep-doctor", who)
	add := func(p string, local bool) {
		for _, m := range missing {
			if m == p {
				return
			}
		}
		missing = append(missing, p)
		if local {
			localOnly = append(localOnly, p)
		}
	}
	for _, p := range n.snapshot {
		if !desc[p] {
			add(p, here[p])
		}
	}
	for _, p := range n.here {
		switch {
		case !here[p]:
			add(p, false)
		case n.below && !desc[p]:
			add(p, true)
		}
	}
	return missing, localOnly
}

// lackMessage says what who lacks on dataset, and why it matters.
func lackMessage(who Who, dataset string, missing, localOnly []string, why string) string {
	msg := fmt.Sprintf("user %s lacks %s on %s: %s", who.name(), strings.Join(missing, ","), dataset, why)
	if len(localOnly) > 0 {
		msg += fmt.Sprintf(" (%s is given on %s itself only, as zfs allow -l does: its snapshots and the datasets below it need it too)",
			strings.Join(localOnly, ","), dataset)
	}
	return msg
}

// allowFix is the command that gives who perms on dataset.
func allowFix(who Who, perms []string, dataset string) string {
	return fmt.Sprintf("zfs allow -u %s %s %s", who.name(), strings.Join(perms, ","), shellQuote(dataset))
}

// shellQuote quotes a dataset name with a space for the fix's command line.
func shellQuote(s string) string {
	if strings.ContainsAny(s, " '") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

// readFailed is the finding for a dataset whose `zfs allow` failed.
func readFailed(subject, dataset string, err error) Finding {
	return finding("delegation", subject, Error, "cannot read its permissions: "+err.Error(),
		"check that zfs works on this host (zfs allow "+shellQuote(dataset)+")")
}

// missingRoot is the finding for a root (of a sink, or of a backup host's
// source) that does not exist: only root can make it unmounted.
func missingRoot(subject, root string, who Who, what, fix string) Finding {
	return finding("delegation", subject, Error,
		fmt.Sprintf("does not exist: a user other than root cannot create it with mountpoint=none, so every %s as %s fails", what, who.name()),
		fmt.Sprintf("as root: zfs create -o mountpoint=none %s && %s", shellQuote(root), fix))
}

// unsupported is the one warning for a zfs whose allow does not work.
func unsupported(who Who, err error) Finding {
	return finding("delegation", who.subject(), Warning, "delegation could not be checked: "+err.Error(),
		"zfs allow does not work here (zfs-fuse): run zrep as root")
}

// SourceDelegationCheck checks, for a serve that runs as who, the `zfs
// allow` permissions each identity of the policy needs: on each dataset it
// may pull (as a root of its filter), send and hold, and bookmark and
// destroy with cursor_bookmarks; on each sink root, receive:append, create
// and mount. Root needs none.
func SourceDelegationCheck(policyFile string, who Who, z Delegations) Check {
	return func(ctx context.Context) []Finding {
		if who.UID == 0 {
			return who.asRoot()
		}
		p, err := policy.Load(policyFile)
		if err != nil {
			return []Finding{finding("delegation", who.subject(), Warning, "not checked: the policy does not parse", "correct the policy first (see the policy finding)")}
		}
		var out []Finding
		for _, id := range p.Identities() {
			ident, _ := p.Identity(id)
			if ident.Source != nil {
				fs, stop := sourceDelegation(ctx, id, ident, who, z)
				out = append(out, fs...)
				if stop {
					return out
				}
			}
			if ident.Sink != nil {
				f, stop := sinkDelegation(ctx, id, ident.Sink.Root, who, z)
				out = append(out, f)
				if stop {
					return out
				}
			}
		}
		if len(out) == 0 {
			out = append(out, finding("delegation", who.subject(), OK, "no identity pulls or pushes: nothing to delegate", ""))
		}
		return out
	}
}

// sourceDelegation checks the roots an identity may pull; stop is set when
// zfs allow does not work at all.
func sourceDelegation(ctx context.Context, id string, ident *policy.Identity, who Who, z Delegations) (out []Finding, stop bool) {
	perms := []string{"send", "hold"}
	why := "pulls of it fail with \"permission denied\" (send sends its snapshots, send -I holds them while it runs)"
	if ident.CursorBookmarks {
		perms = append(perms, "bookmark", "destroy")
		why += "; cursor_bookmarks needs bookmark and destroy (to replace its bookmark)"
	}
	var good []string
	for _, root := range ident.Source.Roots() {
		subject := fmt.Sprintf("%s (identity %s, user %s)", root, id, who.name())
		if root == "" {
			out = append(out, finding("delegation", subject, Warning,
				fmt.Sprintf("identity %s may pull every pool (the bare \"<\"): doctor does not check zfs allow on each", id),
				fmt.Sprintf("on each pool: zfs allow -u %s %s POOL", who.name(), strings.Join(perms, ","))))
			continue
		}
		a, err := z.Allow(ctx, root)
		switch {
		case errors.Is(err, zfs.ErrUnsupported):
			return append(out, unsupported(who, err)), true
		case errors.Is(err, zfs.ErrNotFound):
			continue // the policy check says so
		case err != nil:
			out = append(out, readFailed(subject, root, err))
			continue
		}
		d := ident.Source.Decide(root + "/x")
		n := need{here: perms[1:], snapshot: perms[:1], below: d.Allowed && d.Rule != nil && d.Rule.Subtree}
		missing, localOnly := n.lacking(a, root, who.Principal)
		if len(missing) > 0 {
			out = append(out, finding("delegation", subject, Error, lackMessage(who, root, missing, localOnly, why), allowFix(who, perms, root)))
			continue
		}
		good = append(good, root)
	}
	if len(good) > 0 {
		out = append(out, finding("delegation", who.subject(), OK,
			fmt.Sprintf("identity %s: may %s %s", id, strings.Join(perms, ","), strings.Join(good, ", ")), ""))
	}
	return out, false
}

// sinkDelegation checks an identity's sink root.
func sinkDelegation(ctx context.Context, id, root string, who Who, z Delegations) (Finding, bool) {
	subject := fmt.Sprintf("%s (sink of identity %s, user %s)", root, id, who.name())
	fix := allowFix(who, []string{"receive:append", "create", "mount"}, root)
	a, err := z.Allow(ctx, root)
	switch {
	case errors.Is(err, zfs.ErrUnsupported):
		return unsupported(who, err), true
	case errors.Is(err, zfs.ErrNotFound):
		return missingRoot(subject, root, who, "push", fix), false
	case err != nil:
		return readFailed(subject, root, err), false
	}
	n := need{here: []string{"receive:append", "create", "mount"}, below: true}
	missing, localOnly := n.lacking(a, root, who.Principal)
	why := "pushes are received below it"
	if len(missing) > 0 && missing[0] == "receive:append" {
		plain := need{here: []string{"receive"}, below: true}
		if m, _ := plain.lacking(a, root, who.Principal); len(m) == 0 {
			missing, localOnly = missing[1:], without(localOnly, "receive:append")
			if len(missing) == 0 {
				return finding("delegation", subject, Warning,
					fmt.Sprintf("user %s has receive, not receive:append, on %s: a pusher can then destroy snapshots there with zfs receive -F (openzfs#16943)", who.name(), root),
					fmt.Sprintf("on OpenZFS 2.3.2 or later: %s, then take receive away (zfs unallow -u %s receive %s, or from the set or group that gives it)",
						allowFix(who, []string{"receive:append"}, root), who.name(), shellQuote(root))), false
			}
		}
	}
	if len(missing) > 0 {
		return finding("delegation", subject, Error, lackMessage(who, root, missing, localOnly, why),
			fix+" (receive:append needs OpenZFS 2.3.2 or later; older ones have only receive, which can destroy snapshots with receive -F)"), false
	}
	return finding("delegation", subject, OK, fmt.Sprintf("user %s may receive:append,create,mount below %s", who.name(), root), ""), false
}

func without(s []string, x string) []string {
	var out []string
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// PullDelegationCheck checks, for a pull that runs as who, the `zfs
// allow` permissions on a source's root: create, mount and receive (and
// destroy, to discard a resume token that can no longer be used). Root
// needs none.
func PullDelegationCheck(s pullconfig.Source, who Who, z Delegations) Check {
	return func(ctx context.Context) []Finding {
		if who.UID == 0 {
			return who.asRoot()
		}
		subject := fmt.Sprintf("%s (source %s, user %s)", s.Root, s.Name, who.name())
		perms := []string{"create", "mount", "receive"}
		fix := allowFix(who, perms, s.Root)
		a, err := z.Allow(ctx, s.Root)
		switch {
		case errors.Is(err, zfs.ErrUnsupported):
			return []Finding{unsupported(who, err)}
		case errors.Is(err, zfs.ErrNotFound):
			return []Finding{missingRoot(subject, s.Root, who, "pull", fix)}
		case err != nil:
			return []Finding{readFailed(subject, s.Root, err)}
		}
		missing, localOnly := need{here: perms, below: true}.lacking(a, s.Root, who.Principal)
		if len(missing) > 0 {
			return []Finding{finding("delegation", subject, Error,
				lackMessage(who, s.Root, missing, localOnly, "pulls receive below it (mount is needed even though nothing is mounted)"), fix)}
		}
		if m, _ := (need{here: []string{"destroy"}, below: true}).lacking(a, s.Root, who.Principal); len(m) > 0 {
			return []Finding{finding("delegation", subject, Warning,
				fmt.Sprintf("user %s may create,mount,receive below %s, but not destroy: a dataset whose interrupted receive can no longer be resumed fails until root discards it (zfs receive -A DATASET)", who.name(), s.Root),
				allowFix(who, []string{"destroy"}, s.Root))}
		}
		return []Finding{finding("delegation", subject, OK, fmt.Sprintf("user %s may create,mount,receive,destroy below %s", who.name(), s.Root), "")}
	}
}

// FeaturesCheck reports what the installed zfs supports, with a warning
// on zfs-fuse, which has neither resumable receives nor bookmarks.
func FeaturesCheck(z FeatureDetector) Check {
	return func(ctx context.Context) []Finding {
		f, err := z.Features(ctx)
		if err != nil {
			return []Finding{finding("zfs", "features", Error, "cannot run zfs: "+err.Error(), "install zfs, or give its path with --zfs-bin")}
		}
		var has, lacks []string
		for _, c := range []struct {
			ok   bool
			name string
		}{
			{f.ResumeTokens, "resumable receives"},
			{f.Bookmarks, "bookmarks"},
			{f.SendRaw, "raw sends"},
			{f.Encryption, "encryption"},
			{f.RecvUnmounted, "unmounted receives"},
			{f.CreateUnmounted, "create -u"},
			{f.ListParsable, "list -p"},
			{f.SendCompressed, "compressed sends"},
			{f.SendLargeBlocks, "large blocks"},
			{f.SendEstimate, "send estimates"},
		} {
			if c.ok {
				has = append(has, c.name)
			} else {
				lacks = append(lacks, c.name)
			}
		}
		msg := "has " + orNothing(has)
		if len(lacks) > 0 {
			msg += "; lacks " + strings.Join(lacks, ", ")
		}
		if !f.ResumeTokens && !f.Bookmarks {
			return []Finding{finding("zfs", "features", Warning,
				"zfs-fuse or another old zfs: an interrupted transfer starts over, no cursor bookmarks, no raw sends of encrypted datasets, and zfs allow does not work: "+msg,
				"use OpenZFS (2.3.2 or later for an append-only sink)")}
		}
		return []Finding{finding("zfs", "features", OK, msg, "")}
	}
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "none of the optional features"
	}
	return strings.Join(s, ", ")
}

// ServeUsers returns the users serve runs as: the one of --user, or the
// owner of each authorized_keys file (sshd runs the forced command as
// that user), or, for a file that cannot be read, the user doctor runs as.
func ServeUsers(flagUser *Who, authKeys []string) ([]Who, error) {
	if flagUser != nil {
		return []Who{*flagUser}, nil
	}
	var out []Who
	seen := map[uint32]bool{}
	for _, f := range authKeys {
		var who *Who
		if st, err := os.Stat(f); err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				p, err := LookupUID(sys.Uid)
				if err != nil {
					return nil, err
				}
				who = &Who{Principal: p, Why: "owner of " + f}
			}
		}
		if who == nil {
			var err error
			if who, err = CurrentUser(); err != nil {
				return nil, err
			}
		}
		if !seen[who.UID] {
			seen[who.UID] = true
			out = append(out, *who)
		}
	}
	return out, nil
}

// CurrentUser is the user doctor runs as.
func CurrentUser() (*Who, error) {
	p, err := LookupUID(uint32(os.Geteuid()))
	if err != nil {
		return nil, err
	}
	return &Who{Principal: p, Why: "the user doctor runs as"}, nil
}
