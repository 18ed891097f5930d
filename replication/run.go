package replication

import (
	"context"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/bwlimit"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/sendstream"
	"github.com/zrep/zrep/zfs"
)

// Source is the endpoint replicated from; *client.Source implements it.
type Source interface {
	ListFilesystems(ctx context.Context, withVersions bool) ([]api.Filesystem, error)
	Send(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error)
	// Confirm tells the source which snapshot the target holds, for its
	// cursor bookmark; sources without cursors answer unimplemented.
	Confirm(ctx context.Context, req api.ConfirmRequest) error
}

// Target is the local zfs received into; *zfs.ZFS implements it. It can
// only add: list, create unmounted parents and receive.
type Target interface {
	Features(ctx context.Context) (zfs.Features, error)
	ListTree(ctx context.Context, root string) ([]zfs.DatasetVersions, error)
	ListVersions(ctx context.Context, dataset string) ([]zfs.Version, error)
	Exists(ctx context.Context, name string) (bool, error)
	CreatePlaceholder(ctx context.Context, dataset string) error
	Recv(ctx context.Context, o zfs.RecvOptions) (zfs.InputStream, error)
	// AbortResume discards what a cut resumable receive left, and its token.
	AbortResume(ctx context.Context, dataset string) error
}

// Rollbacker is what a Target needs besides for Options.ForceRollback: a
// puller's target has it, a sink's does not.
type Rollbacker interface {
	Rollback(ctx context.Context, snapshot string, destroyNewer bool) error
	DestroySnapshot(ctx context.Context, snapshot string) error
}

var (
	_ Target     = (*zfs.ZFS)(nil)
	_ Rollbacker = (*zfs.ZFS)(nil)
)

// Options configure a run.
type Options struct {
	// Root is the local dataset under which source datasets are received:
	// tank/data under backup/host1 becomes backup/host1/tank/data.
	Root string
	// Datasets limits the run to these source datasets; empty means every
	// dataset the key may see.
	Datasets []string
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// ForceRollback allows destroying target snapshots the source lacks and
	// receiving with -F. Without it, nothing is ever rolled back or destroyed.
	ForceRollback bool
	// Raw asks for encrypted datasets raw (zfs send -w): the target stores
	// ciphertext and never needs their keys. A dataset whose target is
	// already encrypted is asked for raw anyway: it was received raw.
	Raw bool
	// RequireRaw accepts only encrypted datasets, raw (a raw_only sink).
	RequireRaw bool
	// BandwidthLimit, when not nil, limits the streams of the run (together)
	// to its rate.
	BandwidthLimit *bwlimit.Limiter
	// TargetListing, when not nil, is the listing of the run's target
	// started ahead with ListTarget (of Root; for another root the run
	// lists anew).
	TargetListing *TargetListing
	// Reporter receives the run's events; nil discards them.
	Reporter Reporter
	Log      *zap.Logger
}

// Outcome is how a dataset's replication ended.
type Outcome string

// Outcomes.
const (
	OutcomeReplicated  Outcome = "replicated"
	OutcomeUpToDate    Outcome = "up-to-date"
	OutcomeNoSnapshots Outcome = "no-snapshots"
	OutcomePlanned     Outcome = "planned" // dry run
	OutcomeDiverged    Outcome = "diverged"
	OutcomeFailed      Outcome = "failed"
)

// Failed reports whether the outcome makes the run fail.
func (o Outcome) Failed() bool { return o == OutcomeDiverged || o == OutcomeFailed }

// Result is one dataset's outcome.
type Result struct {
	Dataset   string        `json:"dataset"`
	Target    string        `json:"target"`
	Outcome   Outcome       `json:"outcome"`
	Snapshots int           `json:"snapshots"` // received (planned, in a dry run)
	Bytes     int64         `json:"bytes"`
	Duration  time.Duration `json:"duration_ns"`
	Error     string        `json:"error,omitempty"`
}

// Summary is the outcome of a run.
type Summary struct {
	Results []Result `json:"results"`
	Failed  int      `json:"failed"`
}

// Run replicates the selected source datasets under o.Root. A failure on
// one dataset does not stop the others; it is in the summary. The error is
// for failures of the whole run (the listing failed, a bad root).
func Run(ctx context.Context, src Source, dst Target, o Options) (*Summary, error) {
	r := &runner{src: src, dst: dst, o: o, log: o.Log, rep: o.Reporter, created: map[string]bool{}}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.rep == nil {
		r.rep = discard{}
	}
	if err := zfs.ValidateDatasetName(o.Root); err != nil {
		return nil, errors.WithMessage(err, "--root")
	}
	if _, ok := dst.(Rollbacker); o.ForceRollback && !ok {
		return nil, errors.New("this target cannot roll back or destroy: --force-rollback is not available")
	}
	plans, early, err := r.plan(ctx)
	if err != nil {
		return nil, err
	}
	r.emit(Event{Type: EventPlan, Plan: plans})
	for i := range early {
		r.emit(Event{Type: EventError, Dataset: early[i].Dataset, Target: early[i].Target, Error: early[i].Error})
		r.emit(Event{Type: EventDatasetDone, Dataset: early[i].Dataset, Target: early[i].Target, Result: &early[i]})
	}
	sum := &Summary{Results: early}
	for _, p := range plans {
		res := r.execute(ctx, p)
		sum.Results = append(sum.Results, res)
	}
	sort.SliceStable(sum.Results, func(i, j int) bool { return sum.Results[i].Dataset < sum.Results[j].Dataset })
	for _, res := range sum.Results {
		if res.Outcome.Failed() {
			sum.Failed++
		}
	}
	r.emit(Event{Type: EventSummary, Summary: sum})
	return sum, nil
}

type runner struct {
	src      Source
	dst      Target
	o        Options
	log      *zap.Logger
	rep      Reporter
	features zfs.Features
	local    map[string]*zfs.DatasetVersions // the target tree under Root
	created  map[string]bool                 // placeholders made by this run
	incoming map[string]bool                 // targets this run receives from scratch
	// noCursors: the source said it keeps no cursor bookmarks.
	noCursors bool
}

// plan lists both sides (one call each, at the same time) and plans every
// selected dataset. Datasets asked for that the source does not show come
// back as results.
func (r *runner) plan(ctx context.Context) ([]DatasetPlan, []Result, error) {
	local := r.o.TargetListing
	if local == nil || local.root != r.o.Root {
		local = ListTarget(ctx, r.dst, r.o.Root)
	}
	remote, err := r.src.ListFilesystems(ctx, true)
	<-local.done
	r.features = local.features
	tree, tokens, lerr := local.tree, local.tokens, local.err
	// The errors in the order the listings used to run in: the local zfs,
	// the source, the target.
	var fe *featuresError
	switch {
	case errors.As(lerr, &fe):
		return nil, nil, fe.err
	case err != nil:
		return nil, nil, errors.WithMessage(err, "listing the source's datasets")
	case lerr != nil:
		return nil, nil, lerr
	}
	r.local = make(map[string]*zfs.DatasetVersions, len(tree))
	for i := range tree {
		r.local[tree[i].Name] = &tree[i]
	}
	remote, early := checkListing(remote)
	selected, missing := selectDatasets(remote, r.o.Datasets)
	for _, name := range missing {
		early = append(early, Result{Dataset: name, Target: r.targetName(name), Outcome: OutcomeFailed,
			Error: "not on the source: it does not exist, or this key may not see it"})
	}
	plans := make([]DatasetPlan, 0, len(selected))
	r.incoming = map[string]bool{}
	for _, fs := range selected {
		target := r.targetName(fs.Name)
		if r.o.RequireRaw && !fs.Encrypted {
			early = append(early, Result{Dataset: fs.Name, Target: target, Outcome: OutcomeFailed,
				Error: "not encrypted: this sink takes encrypted datasets only, raw (raw_only)"})
			continue
		}
		p := PlanDataset(fs, target, r.local[target], PlanOptions{ForceRollback: r.o.ForceRollback, ResumeToken: tokens[target]})
		p.Raw = fs.Encrypted && (r.o.Raw || r.o.RequireRaw || r.receivedRaw(r.local[target]))
		p.Confirm = toConfirm(fs, p)
		if p.Action == ActionReplicate && !p.TargetExists {
			r.incoming[target] = true
		}
		plans = append(plans, p)
	}
	return plans, early, nil
}

// receivedRaw reports whether target (nil: none yet) was received raw, so
// that its incrementals must be raw too: its encryption root lies below the
// root. A raw receive makes the dataset its own encryption root (zfs
// change-key -i may then make it inherit from a raw parent, still below the
// root); a dataset received decrypted into an encrypted tree has the key of
// the root or of an ancestor of it, through the placeholders.
func (r *runner) receivedRaw(target *zfs.DatasetVersions) bool {
	return target != nil && strings.HasPrefix(target.EncryptionRoot, r.o.Root+"/")
}

// TargetListing is the target's side of a run's plan: the local zfs's
// features, the tree under the root and its resume tokens.
type TargetListing struct {
	root     string
	done     chan struct{}
	features zfs.Features
	tree     []zfs.DatasetVersions
	tokens   map[string]string
	err      error
}

// ListTarget starts listing dst under root, in the background. A puller
// starts it before it connects to the source, so that its own listing runs
// while ssh logs in, and passes it to Run in Options.TargetListing.
func ListTarget(ctx context.Context, dst Target, root string) *TargetListing {
	l := &TargetListing{root: root, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.features, l.tree, l.tokens, l.err = listTarget(ctx, dst, root)
	}()
	return l
}

// listTarget detects the local zfs and lists the target tree under root
// (none if root does not exist yet) and the resume tokens in it.
func listTarget(ctx context.Context, dst Target, root string) (zfs.Features, []zfs.DatasetVersions, map[string]string, error) {
	f, err := dst.Features(ctx)
	if err != nil {
		return f, nil, nil, &featuresError{errors.WithMessage(err, "detecting the local zfs")}
	}
	tree, err := dst.ListTree(ctx, root)
	switch {
	case errors.Is(err, zfs.ErrNotFound):
		pool, _, _ := strings.Cut(root, "/")
		if exists, err := dst.Exists(ctx, pool); err == nil && !exists {
			return f, nil, nil, errors.Errorf("--root %s: the pool %s does not exist on this host", root, pool)
		}
	case err != nil:
		return f, nil, nil, errors.WithMessagef(err, "listing the target %s", root)
	}
	tokens := map[string]string{}
	for _, d := range tree {
		if d.ResumeToken != "" {
			tokens[d.Name] = d.ResumeToken
		}
	}
	return f, tree, tokens, nil
}

// featuresError is a failure to detect the local zfs, which plan reports
// before any other.
type featuresError struct{ err error }

func (e *featuresError) Error() string { return e.err.Error() }

func (r *runner) targetName(dataset string) string { return r.o.Root + "/" + dataset }

// selectDatasets picks the named datasets (all when names is empty), sorted
// by name so that parents are received before their children.
func selectDatasets(remote []api.Filesystem, names []string) ([]api.Filesystem, []string) {
	byName := make(map[string]api.Filesystem, len(remote))
	for _, fs := range remote {
		byName[fs.Name] = fs
	}
	var out []api.Filesystem
	var missing []string
	if len(names) == 0 {
		out = append(out, remote...)
	} else {
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if fs, ok := byName[n]; ok {
				out = append(out, fs)
			} else {
				missing = append(missing, n)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, missing
}

// execute carries out one dataset's plan.
func (r *runner) execute(ctx context.Context, p DatasetPlan) (res Result) {
	res = Result{Dataset: p.Dataset, Target: p.Target}
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		r.emit(Event{Type: EventDatasetDone, Dataset: p.Dataset, Target: p.Target, Result: &res})
	}()
	switch p.Action {
	case ActionUpToDate:
		res.Outcome = OutcomeUpToDate
		if !r.o.DryRun {
			r.confirm(ctx, p)
		}
		return res
	case ActionNoSource:
		res.Outcome = OutcomeNoSnapshots
		return res
	case ActionDiverged:
		res.Outcome, res.Error = OutcomeDiverged, p.Diverged.Error()
		r.emit(Event{Type: EventError, Dataset: p.Dataset, Target: p.Target, Error: res.Error})
		return res
	}
	if r.o.DryRun {
		res.Outcome = OutcomePlanned
		for _, s := range p.Steps {
			res.Snapshots += len(s.Snapshots)
		}
		return res
	}
	if err := r.replicate(ctx, p, &res); err != nil {
		res.Outcome, res.Error = OutcomeFailed, err.Error()
		r.log.Error("replication failed", zap.String("dataset", p.Dataset), zap.String("target", p.Target), zap.Error(err))
		r.emit(Event{Type: EventError, Dataset: p.Dataset, Target: p.Target, Error: res.Error})
		return res
	}
	res.Outcome = OutcomeReplicated
	r.confirm(ctx, p)
	return res
}

// confirm tells the source the newest snapshot the target now holds, for
// its cursor bookmark. A source without cursors says so once; other
// failures are logged and do not fail the dataset.
func (r *runner) confirm(ctx context.Context, p DatasetPlan) {
	if p.Confirm == nil || r.noCursors {
		return
	}
	err := r.src.Confirm(ctx, api.ConfirmRequest{Dataset: p.Dataset, Snapshot: p.Confirm.Name, GUID: p.Confirm.GUID})
	switch {
	case rpc.CodeOf(err) == rpc.CodeUnimplemented:
		r.noCursors = true
	case err != nil:
		r.log.Warn("confirming the received snapshot to the source failed", zap.String("snapshot", p.Confirm.Name), zap.Error(err))
	}
}

// toConfirm is the snapshot the target holds once p ran, unless the
// source's listing shows the caller's cursor there already; nil otherwise.
// Other bookmarks of the snapshot do not count: the snapshot tool or
// another backup may prune theirs.
func toConfirm(fs api.Filesystem, p DatasetPlan) *api.Version {
	var newest *api.Version
	switch {
	case p.Action == ActionReplicate && len(p.Steps) > 0:
		newest = &p.Steps[len(p.Steps)-1].To
	case p.Action == ActionUpToDate:
		snaps := sourceSnapshots(fs.Versions)
		newest = &snaps[len(snaps)-1]
	default:
		return nil
	}
	for _, v := range fs.Versions {
		if v.Cursor && v.GUID == newest.GUID {
			return nil
		}
	}
	return newest
}

// abortResume discards target's partial receive. zfs receive -A destroys
// it, so a delegated user needs the destroy permission, which an
// append-only receiver lacks: then it says who can.
func (r *runner) abortResume(ctx context.Context, target string) error {
	err := r.dst.AbortResume(ctx, target)
	if errors.Is(err, zfs.ErrPermission) {
		return errors.WithMessagef(err, "discarding a partial receive destroys it, which needs root or the zfs allow "+
			"permission destroy; as root: zfs receive -A %s", target)
	}
	return err
}

func (r *runner) replicate(ctx context.Context, p DatasetPlan, res *Result) error {
	if p.ClearResume != "" {
		r.log.Warn("discarding a resume token that cannot be used; the transfer starts afresh",
			zap.String("target", p.Target), zap.String("why", p.ClearResume))
		if err := r.abortResume(ctx, p.Target); err != nil {
			return errors.WithMessagef(err, "discarding the resume token of %s (%s)", p.Target, p.ClearResume)
		}
	}
	if !p.TargetExists {
		if err := r.ensureParents(ctx, p.Target); err != nil {
			return err
		}
	}
	if p.RollbackTo != "" {
		r.log.Warn("rolling back the diverged target", zap.String("target", p.Target), zap.String("to", p.RollbackTo))
		if err := r.dst.(Rollbacker).Rollback(ctx, p.RollbackTo, true); err != nil {
			return errors.WithMessagef(err, "rolling %s back to %s", p.Target, short(p.RollbackTo))
		}
	}
	for _, snap := range p.DestroySnapshots {
		r.log.Warn("destroying a snapshot the source does not have", zap.String("snapshot", snap))
		if err := r.dst.(Rollbacker).DestroySnapshot(ctx, snap); err != nil {
			return errors.WithMessagef(err, "destroying %s", snap)
		}
	}
	var done []Step
	var stepErr error
	for i, step := range p.Steps {
		n, err := r.runStep(ctx, p, i, step)
		res.Bytes += n
		if err != nil {
			stepErr = errors.WithMessagef(err, "%s: %s into %s", p.Dataset, step, p.Target)
			break
		}
		done = append(done, step)
		res.Snapshots += len(step.Snapshots)
	}
	// Check what arrived even when a later step failed: every snapshot the
	// completed steps carried must be on the target with the source's guid.
	if err := r.verify(ctx, p.Target, done); err != nil {
		if stepErr != nil {
			return errors.Errorf("%v; and %v", stepErr, err)
		}
		return err
	}
	return stepErr
}

// ensureParents creates the missing ancestors of target, as unmounted
// placeholders (children received below them then need no mountpoint
// directory inside them). The pool must exist.
func (r *runner) ensureParents(ctx context.Context, target string) error {
	parts := strings.Split(target, "/")
	for i := range len(parts) - 1 {
		ds := strings.Join(parts[:i+1], "/")
		if r.local[ds] != nil || r.created[ds] {
			continue
		}
		exists, err := r.dst.Exists(ctx, ds)
		if err != nil {
			return errors.WithMessagef(err, "checking %s", ds)
		}
		switch {
		case !exists && i == 0:
			return errors.Errorf("the pool %s does not exist on this host", ds)
		case !exists && r.incoming[ds]:
			// An empty placeholder in its place would make the next run
			// refuse that dataset as diverged; better to fail the child too.
			return errors.Errorf("its parent %s was to be received first and was not", ds)
		case !exists:
			r.log.Info("creating placeholder", zap.String("dataset", ds))
			if err := r.dst.CreatePlaceholder(ctx, ds); err != nil {
				// Another pull (pull --config runs sources at once) may
				// have created it since: then it is there all the same.
				if again, eerr := r.dst.Exists(ctx, ds); eerr != nil || !again {
					return errors.WithMessagef(err, "creating the parent %s", ds)
				}
			}
		}
		r.created[ds] = true
	}
	return nil
}

// runStep streams one step from the source into zfs recv, through the
// inspection that holds the stream to the step's plan: zfs receive starts
// only once the stream's first record has passed it. On any failure the
// receive is aborted: zfs recv is atomic, so the target stays as it was
// before the step.
func (r *runner) runStep(ctx context.Context, p DatasetPlan, i int, step Step) (int64, error) {
	req := api.SendRequest{Dataset: p.Dataset, To: step.To.Name, ToGUID: step.To.GUID, Intermediates: step.Intermediates}
	if step.From != nil {
		req.From, req.FromGUID = step.From.Name, step.From.GUID
	}
	if step.Resumed {
		req = api.SendRequest{Dataset: p.Dataset, ResumeToken: step.ResumeToken}
	}
	// -L -e -c where this zfs (which receives them) has them too.
	req.Raw, req.LargeBlocks, req.Embedded, req.Compressed = p.Raw, r.features.SendLargeBlocks, r.features.SendEmbedded, r.features.SendCompressed
	r.emit(Event{Type: EventStepStart, Dataset: p.Dataset, Target: p.Target, Step: &step, StepIndex: i + 1, StepCount: len(p.Steps)})
	start := time.Now()
	resp, stream, err := r.src.Send(ctx, req)
	if err != nil && step.Resumed && isRefusedCall(err) {
		// The source will not resume it (the snapshot changed since the
		// listing): discard the token, so that the next run starts afresh
		// instead of asking again and again (zrepl #644).
		if aerr := r.abortResume(ctx, p.Target); aerr != nil {
			return 0, errors.Errorf("source: %v; and discarding the resume token: %v", err, aerr)
		}
		return 0, errors.WithMessage(err, "the source refused to resume the transfer; its resume token was discarded and the next run starts it afresh")
	}
	if err != nil {
		return 0, errors.WithMessage(err, "source")
	}
	defer stream.Close()
	limited := r.o.BandwidthLimit.Reader(ctx, stream)
	if resp.To.GUID != step.To.GUID {
		return 0, errors.Errorf("the source sends %s with guid %s, planned %s", step.To.Name, resp.To.GUID, step.To.GUID)
	}
	recv := &lazyReceive{start: func() (zfs.InputStream, error) {
		return r.dst.Recv(ctx, zfs.RecvOptions{Target: p.Target, Force: p.Force, Unmounted: r.features.RecvUnmounted,
			Resumable: r.features.ResumeTokens, Exclude: excludedProps(r.features, p.Type, p.Raw)})
	}}
	pw := newProgressWriter(recv, func(n int64, final bool) {
		r.emit(Event{Type: EventProgress, Dataset: p.Dataset, Target: p.Target, Step: &step, StepIndex: i + 1, StepCount: len(p.Steps),
			Bytes: n, EstimatedBytes: resp.EstimatedBytes, BytesPerSecond: rate(n, time.Since(start))})
	})
	expect := streamPlan(p.Dataset, p.Type, p.Raw, step).Expect()
	n, err := sendstream.NewReader(limited, expect.Check).WriteTo(pw)
	if err == nil {
		err = expect.Complete()
	}
	switch {
	case recv.startErr != nil:
		return n, recv.startErr
	case isRefusal(err):
		recv.Abort()
		return n, refused(err, recv.started())
	case received(err):
		recv.Abort()
		return n, errors.WithMessagef(receiveFailed(err), "zfs receive failed after %s; %s", HumanBytes(n), cutLeaves(step))
	case err != nil:
		recv.Abort()
		return n, errors.WithMessagef(err, "stream cut after %s; %s", HumanBytes(n), cutLeaves(step))
	}
	if err := recv.Close(); err != nil {
		return n, receiveFailed(err)
	}
	pw.flush()
	r.emit(Event{Type: EventStepDone, Dataset: p.Dataset, Target: p.Target, Step: &step, StepIndex: i + 1, StepCount: len(p.Steps),
		Bytes: n, BytesPerSecond: rate(n, time.Since(start)), Duration: time.Since(start)})
	return n, nil
}

// isRefusedCall reports whether the source answered a call with a refusal
// (the request does not fit what it has), not a failure of its own.
func isRefusedCall(err error) bool {
	switch rpc.CodeOf(err) {
	case rpc.CodeNotFound, rpc.CodeInvalidArgument, rpc.CodePermissionDenied:
		return true
	}
	return false
}

// received reports whether a failed copy failed on zfs receive's side: it
// exited while the stream was still coming.
func received(err error) bool {
	var ce *zfs.CommandError
	return errors.As(err, &ce)
}

// receiveFailed adds what an operator can do to a failed zfs receive.
func receiveFailed(err error) error {
	if errors.Is(err, zfs.ErrNoSpace) {
		return errors.WithMessage(err, "the target pool, or a quota on the target or its parents, is full")
	}
	return err
}

// cutLeaves says what a cut stream leaves on the target. zfs receives
// every snapshot whole or not at all; a -I stream carries several, and the
// ones completed before the cut stay (the next run continues from them).
func cutLeaves(step Step) string {
	if len(step.Snapshots) > 1 {
		return "snapshots of this stream received before the cut stay, the one in transit was discarded"
	}
	return "the target is unchanged by this step"
}

// verify checks that the target holds every snapshot of steps with the
// source's guid.
func (r *runner) verify(ctx context.Context, target string, steps []Step) error {
	if len(steps) == 0 {
		return nil
	}
	versions, err := r.dst.ListVersions(ctx, target)
	if err != nil {
		return errors.WithMessagef(err, "listing %s to verify it", target)
	}
	have := make(map[string]uint64, len(versions))
	for _, v := range versions {
		if v.Type == zfs.Snapshot { // a bookmark of the same name is not the snapshot
			have[v.ShortName()] = v.GUID
		}
	}
	for _, s := range steps {
		for _, snap := range s.Snapshots {
			name := strings.TrimPrefix(short(snap.Name), "@")
			guid, ok := have[name]
			switch {
			case !ok:
				return errors.Errorf("verification failed: %s@%s is missing on the target after receiving it", target, name)
			case api.GUID(guid) != snap.GUID:
				return errors.Errorf("verification failed: %s@%s has guid %d on the target, %s on the source", target, name, guid, snap.GUID)
			}
		}
	}
	return nil
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// emit stamps ev with the time and reports it.
func (r *runner) emit(ev Event) {
	ev.Time = time.Now().UTC()
	r.rep.Report(ev)
}
