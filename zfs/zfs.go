// Package zfs runs the zfs command line tool: it lists datasets, snapshots and bookmarks,
// streams zfs send into zfs receive, and makes the few changes the receiving side needs.
// It is the only package of zrep that runs zfs. It works with zfs-fuse 0.7 as well as
// OpenZFS 2.x, detecting the optional features from zfs's usage text.
package zfs

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/errors"
)

// ZFS runs zfs commands through a Runner. It is safe for concurrent use.
type ZFS struct {
	r Runner

	mu       sync.Mutex
	features *Features
	// delegated: this process is not root, so zfs runs with the
	// permissions `zfs allow` gave its user (Features.Delegated).
	delegated bool

	// busyTimeout and busyInterval govern retries of DestroySnapshot on "is busy".
	busyTimeout  time.Duration
	busyInterval time.Duration
}

// New returns a ZFS that runs zfs through r (use &CLI{} for the real binary).
func New(r Runner) *ZFS {
	return &ZFS{r: r, delegated: os.Geteuid() != 0, busyTimeout: 10 * time.Second, busyInterval: 250 * time.Millisecond}
}

// Features detects the features of the installed zfs from its usage text (zfs run without
// arguments). The result is cached; a failed detection is retried on the next call.
func (z *ZFS) Features(ctx context.Context) (Features, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.features != nil {
		return *z.features, nil
	}
	out, err := z.r.Run(ctx)
	usage := string(out)
	if err != nil {
		var ce *CommandError
		if !errors.As(err, &ce) || ctx.Err() != nil {
			return Features{}, errors.Wrap(err, "detect zfs features")
		}
		usage = ce.Stderr + "\n" + usage
	}
	if !usageLooksValid(usage) {
		return Features{}, errors.Errorf("detect zfs features: zfs without arguments did not print its usage text: %q",
			truncate(usage, 200))
	}
	f := DetectFeatures(usage)
	f.Delegated = z.delegated
	z.features = &f
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// versionTypes is the -t list for versions.
func (f Features) versionTypes() string {
	if f.Bookmarks {
		return "snapshot,bookmark"
	}
	return "snapshot"
}

// listArgs returns the arguments that list datasets and versions (with depth "-d 1" or
// "-r"), and the parser for their output. With tokens, where zfs has
// resumable receives, the same listing reads each dataset's
// receive_resume_token too (one pass over the datasets instead of two).
func (z *ZFS) listArgs(ctx context.Context, depth []string, root string, tokens bool) ([]string, func(io.Reader) ([]entry, error), error) {
	f, err := z.Features(ctx)
	if err != nil {
		return nil, nil, err
	}
	var args []string
	parse := parseGet
	if f.ListParsable {
		cols, props := "name,"+listProps, listColumns
		if f.Encryption {
			cols, props = cols+",encryption,encryptionroot", append(slices.Clone(props), haveEncryption, haveEncryptionRoot)
		}
		if tokens && f.ResumeTokens {
			cols, props = cols+",receive_resume_token", append(slices.Clone(props), haveToken)
		}
		args = append([]string{"list", "-H", "-p", "-o", cols, "-t", "filesystem,volume," + f.versionTypes()}, depth...)
		parse = func(r io.Reader) ([]entry, error) { return parseListOf(r, props) }
	} else {
		args = append([]string{"get", "-H", "-p", "-o", "name,property,value"}, depth...)
		args = append(args, listProps)
	}
	if root != "" {
		args = append(args, root)
	}
	return args, parse, nil
}

// ListDatasets returns filesystems and volumes, without their versions,
// from one zfs process, sorted by name. root "" lists all pools; otherwise
// root and everything below it (ErrNotFound if root does not exist).
func (z *ZFS) ListDatasets(ctx context.Context, root string) ([]Dataset, error) {
	if root != "" {
		if err := ValidateDatasetName(root); err != nil {
			return nil, err
		}
	}
	f, err := z.Features(ctx)
	if err != nil {
		return nil, err
	}
	cols := "name,type"
	if f.Encryption {
		cols += ",encryption"
	}
	args := []string{"list", "-H", "-o", cols, "-t", "filesystem,volume"}
	if root != "" {
		args = append(args, "-r", root)
	}
	out, err := z.r.Run(ctx, args...)
	if err != nil {
		return nil, wrapCmd(err, "zfs list")
	}
	ds, err := parseDatasets(bytes.NewReader(out), f.Encryption)
	return ds, errors.Wrap(err, "zfs list")
}

// ListVersions returns the snapshots (and bookmarks where supported) of exactly that
// dataset, sorted by CreateTXG, then name. It returns ErrNotFound if the dataset does not exist.
func (z *ZFS) ListVersions(ctx context.Context, dataset string) ([]Version, error) {
	if err := ValidateDatasetName(dataset); err != nil {
		return nil, err
	}
	args, parse, err := z.listArgs(ctx, []string{"-d", "1"}, dataset, false)
	if err != nil {
		return nil, err
	}
	out, err := z.r.Run(ctx, args...)
	if err != nil {
		return nil, wrapCmd(err, "list versions of %s", dataset)
	}
	entries, err := parse(bytes.NewReader(out))
	if err != nil {
		return nil, errors.Wrapf(err, "list versions of %s", dataset)
	}
	tree, err := buildTree(entries, dataset)
	if err != nil {
		return nil, errors.Wrapf(err, "list versions of %s", dataset)
	}
	for _, d := range tree {
		if d.Name == dataset {
			if d.Versions == nil {
				return []Version{}, nil
			}
			return d.Versions, nil
		}
	}
	return nil, errors.Wrapf(ErrNotFound, "%s is not a filesystem or volume", dataset)
}

// ListTree returns filesystems and volumes with their versions, from one zfs process,
// sorted by dataset name. root "" lists all pools; otherwise root and everything below it
// (ErrNotFound if root does not exist).
func (z *ZFS) ListTree(ctx context.Context, root string) ([]DatasetVersions, error) {
	if root != "" {
		if err := ValidateDatasetName(root); err != nil {
			return nil, err
		}
	}
	args, parse, err := z.listArgs(ctx, []string{"-r"}, root, true)
	if err != nil {
		return nil, err
	}
	what := "list all datasets"
	if root != "" {
		what = "list datasets under " + root
	}
	rc, err := z.r.StartOutput(ctx, args...)
	if err != nil {
		return nil, wrapCmd(err, "%s", what)
	}
	entries, err := parse(rc)
	cerr := rc.Close()
	if err != nil {
		return nil, wrapCmd(err, "%s", what)
	}
	if cerr != nil {
		return nil, wrapCmd(cerr, "%s", what)
	}
	tree, err := buildTree(entries, root)
	if err != nil {
		return nil, errors.Wrap(err, what)
	}
	if root != "" && (len(tree) == 0 || tree[0].Name != root) {
		return nil, errors.Wrapf(ErrNotFound, "%s is not a filesystem or volume", root)
	}
	return tree, nil
}

// Exists reports whether a filesystem, volume, snapshot or bookmark exists.
// Bookmark names report false where zfs has no bookmarks.
func (z *ZFS) Exists(ctx context.Context, name string) (bool, error) {
	typ := "filesystem,volume"
	switch {
	case strings.ContainsAny(name, "@#"):
		_, sep, _, err := SplitVersion(name)
		if err != nil {
			return false, err
		}
		typ = "snapshot"
		if sep == '#' {
			f, err := z.Features(ctx)
			if err != nil {
				return false, err
			}
			if !f.Bookmarks {
				return false, nil
			}
			typ = "bookmark"
		}
	default:
		if err := ValidateDatasetName(name); err != nil {
			return false, err
		}
	}
	_, err := z.r.Run(ctx, "list", "-H", "-o", "name", "-t", typ, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, wrapCmd(err, "zfs list %s", name)
}

// SendOptions says what Send sends.
type SendOptions struct {
	Snapshot      string // the snapshot to send, "pool/a@s2"
	From          string // optional incremental base: an earlier snapshot (or bookmark) of the same dataset
	Intermediates bool   // -I (all snapshots between From and Snapshot in one stream) instead of -i
	// ResumeToken resumes a cut transfer of Snapshot (zfs send -t); From and
	// Intermediates must be empty then: the token says what to send. The
	// caller must have checked every field of the token (package
	// resumetoken): zfs send -t trusts it entirely.
	ResumeToken string
	// Raw sends an encrypted dataset as it is on disk, ciphertext (-w).
	Raw bool
	// LargeBlocks, Embedded, Compressed: -L, -e, -c.
	LargeBlocks, Embedded, Compressed bool
}

// flags returns the stream flags of o, in zfs's order.
func (o SendOptions) flags() []string {
	var out []string
	for _, f := range []struct {
		on   bool
		flag string
	}{{o.Raw, "-w"}, {o.LargeBlocks, "-L"}, {o.Embedded, "-e"}, {o.Compressed, "-c"}} {
		if f.on {
			out = append(out, f.flag)
		}
	}
	return out
}

// checkFlags refuses flags the installed zfs lacks.
func (o SendOptions) checkFlags(f Features) error {
	for _, c := range []struct {
		want, have bool
		flag       string
	}{{o.Raw, f.SendRaw, "-w"}, {o.LargeBlocks, f.SendLargeBlocks, "-L"}, {o.Embedded, f.SendEmbedded, "-e"}, {o.Compressed, f.SendCompressed, "-c"}} {
		if c.want && !c.have {
			return errors.Wrapf(ErrUnsupported, "zfs send %s of %s", c.flag, o.Snapshot)
		}
	}
	return nil
}

// maxTokenLen bounds a resume token (the property's 8 KiB buffer).
const maxTokenLen = 8191

// validToken refuses anything but the token syntax zfs writes,
// <version>-<hex>-<hex>-<hex>, so that a token can never be an option.
func validToken(t string) error {
	if t == "" || len(t) > maxTokenLen {
		return errors.Errorf("resume token of %d bytes", len(t))
	}
	parts := strings.Split(t, "-")
	if len(parts) != 4 {
		return errors.New("resume token is not four fields joined by '-'")
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789abcdefABCDEF") != "" {
			return errors.New("resume token has a field that is not hexadecimal")
		}
	}
	return nil
}

// sendArgs validates o and builds the arguments of zfs send; it runs nothing.
func sendArgs(o SendOptions) ([]string, bool, error) {
	if err := ValidateSnapshotName(o.Snapshot); err != nil {
		return nil, false, err
	}
	if o.ResumeToken != "" {
		if o.From != "" || o.Intermediates {
			return nil, false, errors.Errorf("send %s: a resume token says what to send: no From, no -I", o.Snapshot)
		}
		if err := validToken(o.ResumeToken); err != nil {
			return nil, false, errors.WithMessagef(err, "send %s", o.Snapshot)
		}
		return append(append([]string{"send"}, o.flags()...), "-t", o.ResumeToken), false, nil
	}
	ds, _ := splitVersionName(o.Snapshot)
	if o.From == "" {
		if o.Intermediates {
			return nil, false, errors.Errorf("send %s: -I needs a From snapshot", o.Snapshot)
		}
		return append(append([]string{"send"}, o.flags()...), o.Snapshot), false, nil
	}
	fromDS, sep, _, err := SplitVersion(o.From)
	if err != nil {
		return nil, false, err
	}
	switch {
	case fromDS != ds:
		return nil, false, errors.Errorf("send %s: incremental base %s belongs to another dataset", o.Snapshot, o.From)
	case o.From == o.Snapshot:
		return nil, false, errors.Errorf("send %s: incremental base is the snapshot itself", o.Snapshot)
	case sep == '#' && o.Intermediates:
		return nil, false, errors.Errorf("send %s: -I needs a snapshot as base, not bookmark %s", o.Snapshot, o.From)
	}
	flag := "-i"
	if o.Intermediates {
		flag = "-I"
	}
	return append(append([]string{"send"}, o.flags()...), flag, o.From, o.Snapshot), sep == '#', nil
}

// Send starts `zfs send [-i|-I FROM] SNAPSHOT` and returns its stream; see Runner.StartOutput
// for how the end of the stream and Close behave. Names are validated before anything runs.
func (z *ZFS) Send(ctx context.Context, o SendOptions) (io.ReadCloser, error) {
	args, fromBookmark, err := sendArgs(o)
	if err != nil {
		return nil, err
	}
	if fromBookmark || o.ResumeToken != "" || len(o.flags()) > 0 {
		f, err := z.Features(ctx)
		if err != nil {
			return nil, err
		}
		if err := o.checkFlags(f); err != nil {
			return nil, err
		}
		if fromBookmark && !f.Bookmarks {
			return nil, errors.Wrapf(ErrUnsupported, "send from bookmark %s", o.From)
		}
		if o.ResumeToken != "" && !f.ResumeTokens {
			return nil, errors.Wrapf(ErrUnsupported, "resume the send of %s", o.Snapshot)
		}
	}
	rc, err := z.r.StartOutput(ctx, args...)
	if err != nil {
		return nil, wrapCmd(err, "zfs send %s", o.Snapshot)
	}
	return rc, nil
}

// EstimateSend returns the size in bytes of the stream Send would produce
// for o, from a dry run (zfs send -n -v -P); 0 when the installed zfs
// cannot tell (zfs-fuse) or did not say.
func (z *ZFS) EstimateSend(ctx context.Context, o SendOptions) (int64, error) {
	args, _, err := sendArgs(o)
	if err != nil {
		return 0, err
	}
	f, err := z.Features(ctx)
	if err != nil || !f.SendEstimate {
		return 0, err
	}
	out, err := z.r.Run(ctx, append([]string{"send", "-n", "-v", "-P"}, args[1:]...)...)
	if err != nil {
		return 0, wrapCmd(err, "zfs send -n %s", o.Snapshot)
	}
	return parseSendSize(out), nil
}

// parseSendSize finds the "size\t<bytes>" line of zfs send -nvP's output.
func parseSendSize(out []byte) int64 {
	for line := range strings.SplitSeq(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "size\t"); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64); err == nil && n >= 0 {
				return n
			}
		}
	}
	return 0
}

// RecvOptions says how Recv receives.
type RecvOptions struct {
	Target    string // dataset to receive into, "backup/pool/a"
	Force     bool   // -F (only when the operator asked to roll back)
	Unmounted bool   // -u; an error wrapping ErrUnsupported if zfs lacks it
	// Resumable: keep what arrived of a cut stream, with a
	// receive_resume_token to continue from (-s); an error wrapping
	// ErrUnsupported if zfs lacks it.
	Resumable bool
	// Exclude are properties forced to inherit rather than taken from the
	// stream (-x PROP each); an error wrapping ErrUnsupported if zfs lacks -x.
	Exclude []string
}

// recvArgs validates o and builds the arguments of zfs receive.
func recvArgs(o RecvOptions, f Features) ([]string, error) {
	if err := ValidateDatasetName(o.Target); err != nil {
		return nil, err
	}
	args := []string{"receive"}
	if o.Force {
		args = append(args, "-F")
	}
	if o.Unmounted {
		if !f.RecvUnmounted {
			return nil, errors.Wrapf(ErrUnsupported, "receive %s: zfs receive -u", o.Target)
		}
		args = append(args, "-u")
	}
	if o.Resumable {
		if !f.ResumeTokens {
			return nil, errors.Wrapf(ErrUnsupported, "receive %s: zfs receive -s", o.Target)
		}
		args = append(args, "-s")
	}
	if len(o.Exclude) > 0 && !f.RecvExclude {
		return nil, errors.Wrapf(ErrUnsupported, "receive %s: zfs receive -x", o.Target)
	}
	for _, prop := range o.Exclude {
		if err := validatePropertyName(prop); err != nil {
			return nil, err
		}
		args = append(args, "-x", prop)
	}
	return append(args, o.Target), nil
}

// Recv starts `zfs receive [-F] [-u] TARGET` and returns its stdin. Close it to finish the
// receive (its error says whether zfs accepted the stream), or Abort it to discard it.
func (z *ZFS) Recv(ctx context.Context, o RecvOptions) (InputStream, error) {
	if err := ValidateDatasetName(o.Target); err != nil {
		return nil, err
	}
	var f Features
	if o.Unmounted || o.Resumable || len(o.Exclude) > 0 {
		var err error
		if f, err = z.Features(ctx); err != nil {
			return nil, err
		}
	}
	args, err := recvArgs(o, f)
	if err != nil {
		return nil, err
	}
	in, err := z.r.StartInput(ctx, args...)
	if err != nil {
		return nil, wrapCmd(err, "zfs receive %s", o.Target)
	}
	return in, nil
}

// CreatePlaceholder creates an unmounted filesystem to hold received children:
// `zfs create -o mountpoint=none DATASET`. Its parent must exist.
//
// A delegated user (Features.Delegated) may not set mountpoint, and cannot
// mount: it runs `zfs create -u DATASET`, which inherits the parent's
// mountpoint, and so only under a parent whose mountpoint is none.
func (z *ZFS) CreatePlaceholder(ctx context.Context, dataset string) error {
	if err := ValidateDatasetName(dataset); err != nil {
		return err
	}
	slash := strings.LastIndexByte(dataset, '/')
	if slash < 0 {
		return invalidName(dataset, "a pool cannot be created with zfs create")
	}
	f, err := z.Features(ctx)
	if err != nil {
		return err
	}
	if !f.Delegated {
		_, err := z.r.Run(ctx, "create", "-o", "mountpoint=none", dataset)
		return wrapCmd(err, "zfs create %s", dataset)
	}
	if !f.CreateUnmounted {
		return errors.Wrapf(ErrUnsupported, "create %s: zfs create -u", dataset)
	}
	props, err := z.GetProperties(ctx, dataset[:slash], "mountpoint")
	if err != nil {
		return errors.WithMessagef(err, "create %s", dataset)
	}
	if parent, mp := dataset[:slash], props["mountpoint"]; mp != "none" {
		return errors.Errorf("create %s: its parent %s has mountpoint %s, and a user other than root cannot set "+
			"mountpoint=none on what it creates (as root: zfs set mountpoint=none %s)", dataset, parent, mp, parent)
	}
	_, err = z.r.Run(ctx, "create", "-u", dataset)
	return wrapCmd(err, "zfs create -u %s", dataset)
}

// Rollback rolls a dataset back to snapshot: `zfs rollback [-r] SNAPSHOT`. With
// destroyNewer, snapshots newer than snapshot are destroyed (zfs refuses otherwise).
func (z *ZFS) Rollback(ctx context.Context, snapshot string, destroyNewer bool) error {
	if err := ValidateSnapshotName(snapshot); err != nil {
		return err
	}
	args := []string{"rollback"}
	if destroyNewer {
		args = append(args, "-r")
	}
	_, err := z.r.Run(ctx, append(args, snapshot)...)
	return wrapCmd(err, "zfs rollback %s", snapshot)
}

// DestroySnapshot destroys one snapshot: `zfs destroy SNAPSHOT`. Anything that is not a
// snapshot name is refused. "busy" answers are retried for a few seconds.
// A snapshot that does not exist gives an error matching ErrNotFound.
func (z *ZFS) DestroySnapshot(ctx context.Context, snapshot string) error {
	if err := ValidateSnapshotName(snapshot); err != nil {
		return err
	}
	deadline := time.Now().Add(z.busyTimeout)
	for {
		_, err := z.r.Run(ctx, "destroy", snapshot)
		if err == nil || !isBusy(err) || time.Now().Add(z.busyInterval).After(deadline) {
			return wrapCmd(err, "zfs destroy %s", snapshot)
		}
		t := time.NewTimer(z.busyInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Wrapf(ctx.Err(), "zfs destroy %s (busy: %v)", snapshot, err)
		case <-t.C:
		}
	}
}

// SetQuota sets a dataset's quota to bytes: `zfs set quota=BYTES DATASET`,
// unless the quota is that already (then a user without the quota
// permission can run with a quota that root set).
func (z *ZFS) SetQuota(ctx context.Context, dataset string, bytes uint64) error {
	if err := ValidateDatasetName(dataset); err != nil {
		return err
	}
	if bytes == 0 {
		return errors.Errorf("set quota of %s: a quota of 0 bytes", dataset)
	}
	want := strconv.FormatUint(bytes, 10)
	props, err := z.GetProperties(ctx, dataset, "quota")
	if err != nil {
		return err
	}
	if props["quota"] == want {
		return nil
	}
	_, err = z.r.Run(ctx, "set", "quota="+want, dataset)
	return wrapCmd(err, "zfs set quota on %s", dataset)
}

// AbortResume discards what a cut resumable receive left in dataset, and
// its token: `zfs receive -A DATASET`. A partly received new dataset is
// gone afterwards; an existing one keeps its snapshots.
func (z *ZFS) AbortResume(ctx context.Context, dataset string) error {
	if err := ValidateDatasetName(dataset); err != nil {
		return err
	}
	_, err := z.r.Run(ctx, "receive", "-A", dataset)
	return wrapCmd(err, "zfs receive -A %s", dataset)
}

// Bookmark creates bookmark (pool/a#b) of snapshot (pool/a@s): `zfs
// bookmark SNAPSHOT BOOKMARK`. Both must be of the same dataset.
func (z *ZFS) Bookmark(ctx context.Context, snapshot, bookmark string) error {
	if err := ValidateSnapshotName(snapshot); err != nil {
		return err
	}
	if err := ValidateBookmarkName(bookmark); err != nil {
		return err
	}
	if ds, _ := splitVersionName(snapshot); !strings.HasPrefix(bookmark, ds+"#") {
		return errors.Errorf("bookmark %s of %s: not of the same dataset", bookmark, snapshot)
	}
	f, err := z.Features(ctx)
	if err != nil {
		return err
	}
	if !f.Bookmarks {
		return errors.Wrapf(ErrUnsupported, "bookmark %s", snapshot)
	}
	_, err = z.r.Run(ctx, "bookmark", snapshot, bookmark)
	return wrapCmd(err, "zfs bookmark %s %s", snapshot, bookmark)
}

// DestroyBookmark destroys one bookmark: `zfs destroy POOL/A#B`. Anything
// that is not a bookmark name is refused.
func (z *ZFS) DestroyBookmark(ctx context.Context, bookmark string) error {
	if err := ValidateBookmarkName(bookmark); err != nil {
		return err
	}
	_, err := z.r.Run(ctx, "destroy", bookmark)
	return wrapCmd(err, "zfs destroy %s", bookmark)
}
