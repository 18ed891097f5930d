// Package handlers implements the calls of the zrep source endpoint:
// listing datasets and their versions, and `zfs send`, each restricted by
// the caller's dataset policy. The handlers only read: nothing here creates,
// destroys, rolls back or receives anything on the source host.
//
// A dataset the policy denies is answered exactly like one that does not
// exist (same code, same message, and the same zfs commands before the
// answer, so the same time), so a key cannot probe for names.
package handlers

import (
	"bytes"
	"context"
	"io"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// ZFS is what the handlers need of the zfs package; tests substitute a fake.
type ZFS interface {
	// Features are what the installed zfs supports.
	Features(ctx context.Context) (zfs.Features, error)
	// ListDatasets lists filesystems and volumes: all of them for root "",
	// else root and below it (zfs.ErrNotFound if root does not exist).
	ListDatasets(ctx context.Context, root string) ([]zfs.Dataset, error)
	ListVersions(ctx context.Context, dataset string) ([]zfs.Version, error)
	ListTree(ctx context.Context, root string) ([]zfs.DatasetVersions, error)
	Send(ctx context.Context, o zfs.SendOptions) (io.ReadCloser, error)
	// EstimateSend is the stream's size from a dry run; 0 if unknown.
	EstimateSend(ctx context.Context, o zfs.SendOptions) (int64, error)
}

var _ ZFS = (*zfs.ZFS)(nil)

// Policy decides which datasets the caller may see.
type Policy interface {
	Allows(dataset string) bool
	// Roots are the datasets below which every allowed dataset lies.
	Roots() []string
}

var _ Policy = (*policy.Filter)(nil)

// Handlers serves one caller (one identity) with its policy.
type Handlers struct {
	zfs     ZFS
	policy  Policy
	log     *zap.Logger
	rawOnly bool
	cursors CursorZFS // nil: no Confirm, and the handlers only read
	cursor  string    // the short name of the caller's cursor bookmark
	// cursorNext is the short name of the bookmark that holds the cursor's
	// new position while the cursor is remade there; no identity's cursor
	// can have it.
	cursorNext string
}

// CursorZFS is what cursor bookmarks need of zfs, besides ZFS: the only
// changes the endpoint ever makes, and only with the policy's
// cursor_bookmarks.
type CursorZFS interface {
	Bookmark(ctx context.Context, snapshot, bookmark string) error
	DestroyBookmark(ctx context.Context, bookmark string) error
}

var _ CursorZFS = (*zfs.ZFS)(nil)

// An Option changes what the handlers allow.
type Option func(*Handlers)

// RawOnly makes encrypted datasets go out only raw (zfs send -w): the
// caller never gets their plaintext (the policy's raw_only).
func RawOnly() Option { return func(h *Handlers) { h.rawOnly = true } }

// Cursors lets the caller confirm what it received (Confirm): the endpoint
// then keeps the bookmark DATASET#zrep_cursor_<identity> at the newest
// confirmed snapshot, and may destroy that bookmark, and nothing else, when
// it moves it (the policy's cursor_bookmarks); while it moves, a second one,
// DATASET#zrep_cursornext_<identity>, holds the new position. identity must
// be valid in a bookmark name (the policy checks it).
func Cursors(z CursorZFS, identity string) Option {
	return func(h *Handlers) {
		h.cursors, h.cursor, h.cursorNext = z, "zrep_cursor_"+identity, "zrep_cursornext_"+identity
	}
}

// New returns the handlers for a caller whose datasets p allows.
func New(z ZFS, p Policy, log *zap.Logger, opts ...Option) *Handlers {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handlers{zfs: z, policy: p, log: log}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Methods returns every call of the endpoint by name, as rpc.Server.Register
// takes them; a caller may wrap some before registering them.
func (h *Handlers) Methods() map[string]any {
	m := map[string]any{
		api.MethodListFilesystems: h.ListFilesystems,
		api.MethodListVersions:    h.ListVersions,
		api.MethodSend:            h.Send,
	}
	if h.cursors != nil {
		m[api.MethodConfirm] = h.Confirm
	}
	return m
}

// Register adds every call of the endpoint to s.
func (h *Handlers) Register(s *rpc.Server) error {
	for name, fn := range h.Methods() {
		if err := s.Register(name, fn); err != nil {
			return err
		}
	}
	return nil
}

// notFound is the one answer for a dataset that does not exist and for one
// the policy denies.
func notFound(dataset string) error {
	return rpc.Errorf(rpc.CodeNotFound, "dataset %q does not exist", dataset)
}

func invalid(err error) error {
	return rpc.Errorf(rpc.CodeInvalidArgument, "%v", err)
}

// ListFilesystems lists the filesystems and volumes the policy allows,
// optionally with their versions; the listing is the body (api.ReadListing).
func (h *Handlers) ListFilesystems(ctx context.Context, req api.ListFilesystemsRequest) (*api.ListResponse, io.ReadCloser, error) {
	var out []api.Filesystem
	if req.WithVersions {
		tree, err := h.allowedTrees(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range tree {
			if h.policy.Allows(d.Name) {
				out = append(out, api.Filesystem{Name: d.Name, Type: string(d.Type), Encrypted: d.Encrypted, Versions: apiVersions(d.Versions)})
			}
		}
	} else {
		list, err := h.zfs.ListDatasets(ctx, "")
		if err != nil {
			return nil, nil, h.listFailed(err, "")
		}
		for _, d := range list {
			if h.policy.Allows(d.Name) {
				out = append(out, api.Filesystem{Name: d.Name, Type: string(d.Type), Encrypted: d.Encrypted})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return h.listing(out, nil)
}

// allowedTrees lists, with their versions, the datasets below the policy's
// roots (one zfs process per root), so that a listing never walks the
// pools and subtrees the caller cannot see at all.
func (h *Handlers) allowedTrees(ctx context.Context) ([]zfs.DatasetVersions, error) {
	var all []zfs.DatasetVersions
	for _, root := range h.policy.Roots() {
		tree, err := h.zfs.ListTree(ctx, root)
		if errors.Is(err, zfs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, h.listFailed(err, root)
		}
		all = append(all, tree...)
	}
	return all, nil
}

// listFailed logs why a listing failed and answers with a generic error:
// zfs's messages could name datasets the policy denies.
func (h *Handlers) listFailed(err error, root string) error {
	h.log.Error("listing datasets failed", zap.String("root", root), zap.Error(err))
	return rpc.Errorf(rpc.CodeInternal, "listing datasets failed; the server's log has the details")
}

// ListVersions lists the snapshots (and bookmarks) of one allowed dataset,
// oldest first.
func (h *Handlers) ListVersions(ctx context.Context, req api.ListVersionsRequest) (*api.ListResponse, io.ReadCloser, error) {
	_, versions, err := h.versions(ctx, req.Dataset)
	if err != nil {
		return nil, nil, err
	}
	return h.listing(nil, apiVersions(versions))
}

// versions validates dataset, applies the policy and lists its versions.
//
// A name the policy denies and one that does not exist must not only get
// the same answer but take the same time, or timing would tell which
// names the policy hides. So existence is decided first, for every name
// below one of the policy's roots alike, from one listing of that root
// (zfs runs the same command whichever name was asked about), and the
// policy after it; only an allowed dataset that exists gets its versions
// listed. A name below no root is denied whatever exists, and answered
// without running zfs: that tells only where the roots are.
func (h *Handlers) versions(ctx context.Context, dataset string) (zfs.Dataset, []zfs.Version, error) {
	if err := zfs.ValidateDatasetName(dataset); err != nil {
		return zfs.Dataset{}, nil, invalid(err)
	}
	root, ok := h.rootOf(dataset)
	if !ok {
		return zfs.Dataset{}, nil, notFound(dataset)
	}
	ds, exists, err := h.findBelow(ctx, root, dataset)
	if err != nil {
		return zfs.Dataset{}, nil, err
	}
	if !exists || !h.policy.Allows(dataset) {
		return zfs.Dataset{}, nil, notFound(dataset)
	}
	versions, err := h.zfs.ListVersions(ctx, dataset)
	if errors.Is(err, zfs.ErrNotFound) {
		return zfs.Dataset{}, nil, notFound(dataset)
	}
	return ds, versions, errors.WithMessagef(err, "listing versions of %s", dataset)
}

// rootOf returns the policy root that dataset is or lies below, if any
// (roots never lie below one another).
func (h *Handlers) rootOf(dataset string) (string, bool) {
	for _, root := range h.policy.Roots() {
		if dataset == root || strings.HasPrefix(dataset, root+"/") {
			return root, true
		}
	}
	return "", false
}

// findBelow finds dataset, which is root or below it, in a listing of root
// and everything below it.
func (h *Handlers) findBelow(ctx context.Context, root, dataset string) (zfs.Dataset, bool, error) {
	list, err := h.zfs.ListDatasets(ctx, root)
	if errors.Is(err, zfs.ErrNotFound) {
		return zfs.Dataset{}, false, nil
	}
	if err != nil {
		return zfs.Dataset{}, false, h.listFailed(err, root)
	}
	for _, d := range list {
		if d.Name == dataset {
			return d, true, nil
		}
	}
	return zfs.Dataset{}, false, nil
}

// listing answers a listing call; the header names the caller's cursor
// bookmark where the handlers keep cursors.
func (h *Handlers) listing(filesystems []api.Filesystem, versions []api.Version) (*api.ListResponse, io.ReadCloser, error) {
	body, resp, err := api.EncodeListing(filesystems, versions)
	if err != nil {
		return nil, nil, err
	}
	if h.cursors != nil {
		resp.Cursor = h.cursor
	}
	return &resp, io.NopCloser(bytes.NewReader(body)), nil
}

// Send streams `zfs send` of req.To (incremental from req.From) as the
// body. Both must be versions of req.Dataset, exist, and match the GUIDs
// when the request names them; From must be older than To.
func (h *Handlers) Send(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	if req.ResumeToken != "" {
		return h.resume(ctx, req)
	}
	if err := zfs.ValidateSnapshotName(req.To); err != nil {
		return nil, nil, invalid(err)
	}
	if req.From != "" {
		if err := zfs.ValidateVersionName(req.From); err != nil {
			return nil, nil, invalid(err)
		}
	}
	for _, v := range []string{req.To, req.From} {
		if ds, _, _, _ := zfs.SplitVersion(v); v != "" && ds != req.Dataset {
			return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "%q is not a snapshot or bookmark of dataset %q", v, req.Dataset)
		}
	}
	if req.Intermediates {
		// zfs send -I needs a snapshot to start from; refuse here rather
		// than let zfs fail with an internal error.
		if req.From == "" {
			return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "intermediates needs an incremental base (from)")
		}
		if _, sep, _, _ := zfs.SplitVersion(req.From); sep != '@' {
			return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "intermediates needs a snapshot as incremental base, not bookmark %q", req.From)
		}
	}
	ds, versions, err := h.versions(ctx, req.Dataset)
	if err != nil {
		return nil, nil, err
	}
	if h.rawOnly && ds.Encrypted && !req.Raw {
		return nil, nil, h.rawRequired(ds.Name)
	}
	to, err := findVersion(versions, req.To, req.ToGUID)
	if err != nil {
		return nil, nil, err
	}
	if to.Type != zfs.Snapshot {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "%q is not a snapshot", req.To)
	}
	resp := &api.SendResponse{To: apiVersion(to)}
	if req.From != "" {
		from, err := findVersion(versions, req.From, req.FromGUID)
		if err != nil {
			return nil, nil, err
		}
		if from.CreateTXG >= to.CreateTXG {
			return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "incremental base %q is not older than %q", req.From, req.To)
		}
		v := apiVersion(from)
		resp.From = &v
	}
	opts, err := h.streamOptions(ctx, req, ds)
	if err != nil {
		return nil, nil, err
	}
	opts.Snapshot, opts.From, opts.Intermediates = req.To, req.From, req.Intermediates
	h.log.Info("sending", zap.String("dataset", req.Dataset), zap.String("to", req.To),
		zap.String("from", req.From), zap.Bool("intermediates", req.Intermediates), zap.Bool("raw", opts.Raw))
	return h.send(ctx, resp, opts)
}

// rawRequired is the refusal of a plaintext send under raw_only.
func (h *Handlers) rawRequired(dataset string) error {
	return rpc.Errorf(rpc.CodePermissionDenied, "%q is encrypted, and this key may receive encrypted datasets only raw (the policy's raw_only): ask for it raw (pull --raw)", dataset)
}

// streamOptions are the stream flags of req that this zfs applies: raw for
// an encrypted dataset (always under raw_only), and -L, -e, -c where zfs
// has them.
func (h *Handlers) streamOptions(ctx context.Context, req api.SendRequest, ds zfs.Dataset) (zfs.SendOptions, error) {
	f, err := h.zfs.Features(ctx)
	if err != nil {
		return zfs.SendOptions{}, errors.WithMessage(err, "detecting zfs's features")
	}
	return zfs.SendOptions{
		Raw:         ds.Encrypted && (req.Raw || h.rawOnly),
		LargeBlocks: req.LargeBlocks && f.SendLargeBlocks,
		Embedded:    req.Embedded && f.SendEmbedded,
		Compressed:  req.Compressed && f.SendCompressed,
	}, nil
}

// send starts zfs send for a checked request, with a size estimate.
func (h *Handlers) send(ctx context.Context, resp *api.SendResponse, opts zfs.SendOptions) (*api.SendResponse, io.ReadCloser, error) {
	if size, err := h.zfs.EstimateSend(ctx, opts); err != nil {
		h.log.Debug("no size estimate", zap.String("to", opts.Snapshot), zap.Error(err))
	} else {
		resp.EstimatedBytes = size
	}
	stream, err := h.zfs.Send(ctx, opts)
	if err != nil {
		return nil, nil, errors.WithMessagef(err, "zfs send %s", opts.Snapshot)
	}
	return resp, stream, nil
}

// resume sends the rest of a cut transfer. zfs send -t trusts the token
// entirely (it sends the snapshot whose guid is toguid wherever in the pool
// it finds it, openzfs#14153), so every field is checked first: the token
// decodes strictly (no savedok, no redaction, no unknown field); toname is
// a snapshot of the requested dataset, which the policy allows and which
// exists, and its guid is toguid; fromguid, if any, is a snapshot or
// bookmark of the same dataset, older. zfs then gets a token encoded anew
// from the checked fields, never the caller's bytes.
func (h *Handlers) resume(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	if req.To != "" || req.From != "" || req.Intermediates || req.ToGUID != 0 || req.FromGUID != 0 {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "a resume token says what to send: give only the dataset and resume_token")
	}
	tok, err := resumetoken.Decode(req.ResumeToken)
	if err != nil {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "resume token: %v", err)
	}
	dataset, _, _ := strings.Cut(tok.ToName, "@")
	// The token's own dataset goes through the policy first: a token for
	// a dataset the caller may not see is answered as for a missing one.
	ds, versions, err := h.versions(ctx, dataset)
	if err != nil {
		return nil, nil, err
	}
	if h.rawOnly && ds.Encrypted && !tok.RawOK {
		return nil, nil, h.rawRequired(dataset)
	}
	if dataset != req.Dataset {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "the resume token is for %q, not for dataset %q", tok.ToName, req.Dataset)
	}
	to, err := findVersion(versions, tok.ToName, api.GUID(tok.ToGUID))
	if err != nil {
		return nil, nil, err
	}
	if to.Type != zfs.Snapshot {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "%q is not a snapshot", tok.ToName)
	}
	resp := &api.SendResponse{To: apiVersion(to)}
	if tok.FromGUID != 0 {
		from, ok := versionByGUID(versions, tok.FromGUID)
		if !ok || from.CreateTXG >= to.CreateTXG {
			return nil, nil, rpc.Errorf(rpc.CodeNotFound, "the resume token's incremental base (guid %d) is no snapshot or bookmark of %q older than %q", tok.FromGUID, dataset, tok.ToName)
		}
		v := apiVersion(from)
		resp.From = &v
	}
	h.log.Info("resuming", zap.String("dataset", dataset), zap.String("to", to.Name), zap.Uint64("from_guid", tok.FromGUID),
		zap.Uint64("offset", tok.Offset), zap.Uint64("bytes", tok.Bytes), zap.Bool("raw", tok.RawOK))
	// What the token carries (rawok, compressok, …) applies anyway; -w
	// makes sure an encrypted dataset goes out raw under raw_only.
	opts := zfs.SendOptions{Snapshot: to.Name, ResumeToken: tok.Encode(), Raw: ds.Encrypted && h.rawOnly}
	return h.send(ctx, resp, opts)
}

// versionByGUID finds the snapshot, or else the bookmark, with guid.
func versionByGUID(versions []zfs.Version, guid uint64) (zfs.Version, bool) {
	var found zfs.Version
	ok := false
	for _, v := range versions {
		if v.GUID == guid && (!ok || v.Type == zfs.Snapshot) {
			found, ok = v, true
		}
	}
	return found, ok
}

// findVersion finds name among versions; a guid that does not match means
// the version named in the request is gone.
func findVersion(versions []zfs.Version, name string, guid api.GUID) (zfs.Version, error) {
	for _, v := range versions {
		if v.Name != name {
			continue
		}
		if guid != 0 && api.GUID(v.GUID) != guid {
			return v, rpc.Errorf(rpc.CodeNotFound, "%q has guid %d, not %d: the version the request names was destroyed and re-created", name, v.GUID, guid)
		}
		return v, nil
	}
	return zfs.Version{}, rpc.Errorf(rpc.CodeNotFound, "%q does not exist", name)
}

func apiVersion(v zfs.Version) api.Version {
	return api.Version{Name: v.Name, Type: string(v.Type), GUID: api.GUID(v.GUID), CreateTXG: v.CreateTXG, Creation: v.Creation}
}

func apiVersions(vs []zfs.Version) []api.Version {
	out := make([]api.Version, len(vs))
	for i, v := range vs {
		out[i] = apiVersion(v)
	}
	return out
}
