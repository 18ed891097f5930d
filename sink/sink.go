// Package sink receives pushes. A pushing host connects and, with the
// session's roles inverted, serves the source endpoint (listing and zfs
// send); the sink then pulls from it exactly as pull does — the same
// planner, executor, stream inspection and guid checks — into the
// identity's root, and can only add snapshots there. It never rolls back,
// destroys, renames, promotes or receives with -F, sets no property but the
// root's quota, and the pusher never names a target: every name is its own
// dataset's, placed under the root.
package sink

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/units"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// ZFS is everything a sink may do to the local zfs: list, create unmounted
// parents, receive (resumably, where zfs can), and set its root's quota.
type ZFS interface {
	replication.Target
	SetQuota(ctx context.Context, dataset string, bytes uint64) error
}

var _ ZFS = (*zfs.ZFS)(nil)

// DefaultLockDir holds the sinks' lock files.
const DefaultLockDir = "/run/zrep"

// Config is one identity's sink.
type Config struct {
	Identity string
	Root     string // pushes land at Root/<the pusher's dataset name>
	Quota    uint64 // applied to Root before each push; 0 leaves it alone
	// RawOnly accepts encrypted datasets only, raw: the sink never holds
	// plaintext of what it is given.
	RawOnly bool
	ZFS     ZFS
	// LockDir holds one lock file per root, so that two pushes into the
	// same root do not run at once; "" means DefaultLockDir.
	LockDir string
	Log     *zap.Logger
}

// ErrBusy is returned (wrapped) when another push into the same root runs.
var ErrBusy = errors.New("another push into this root is running")

// Receive runs a push over sess, in which this side makes the calls: it
// brings the pusher's datasets up to date under the root, reporting each
// event of the run to the pusher. The error is the failure of the whole
// push (the session, the lock, the root); datasets that fail are in the
// summary the pusher receives.
func Receive(ctx context.Context, sess *rpc.Session, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	cl, err := sess.Client()
	if err != nil {
		return err
	}
	src := client.NewSource(cl)
	defer func() { _ = src.Close() }()
	rep := &reporter{ctx: ctx, src: src, log: log}

	opts, err := src.PushOptions(ctx)
	if err != nil {
		return errors.WithMessage(err, "asking the pusher for its options")
	}
	unlock, err := lock(cfg.LockDir, cfg.Root)
	if err != nil {
		return rep.fail(err)
	}
	defer unlock()
	if !opts.DryRun {
		if err := prepareRoot(ctx, cfg); err != nil {
			return rep.fail(err)
		}
	}
	sum, err := replication.Run(ctx, src, target{cfg.ZFS}, replication.Options{
		Root:       cfg.Root,
		DryRun:     opts.DryRun,
		Raw:        opts.Raw,
		RequireRaw: cfg.RawOnly,
		Reporter:   rep,
		Log:        log.Named("replication"),
	})
	if err != nil {
		return rep.fail(err)
	}
	log.Info("push done", zap.Int("datasets", len(sum.Results)), zap.Int("failed", sum.Failed))
	return nil
}

// target hides everything of the local zfs but replication.Target: the
// run can only list, create unmounted parents and receive.
type target struct{ replication.Target }

// prepareRoot creates the root and its missing parents unmounted, and
// applies the quota.
func prepareRoot(ctx context.Context, cfg Config) error {
	parts := strings.Split(cfg.Root, "/")
	for i := 1; i < len(parts); i++ {
		ds := strings.Join(parts[:i+1], "/")
		exists, err := cfg.ZFS.Exists(ctx, ds)
		if err != nil {
			return errors.WithMessagef(err, "checking the sink's root %s", cfg.Root)
		}
		if !exists {
			if err := cfg.ZFS.CreatePlaceholder(ctx, ds); err != nil {
				return errors.WithMessagef(err, "creating the sink's root %s", cfg.Root)
			}
		}
	}
	if cfg.Quota > 0 {
		err := cfg.ZFS.SetQuota(ctx, cfg.Root, cfg.Quota)
		if errors.Is(err, zfs.ErrPermission) {
			err = errors.WithMessagef(err, "a user other than root cannot set quotas: as root, zfs set quota=%d %s", cfg.Quota, cfg.Root)
		}
		if err != nil {
			return errors.WithMessagef(err, "applying the quota of %s to %s", units.FormatSize(cfg.Quota), cfg.Root)
		}
	}
	return nil
}

// lock takes the root's lock file without waiting: a second push into the
// same root fails at once with ErrBusy.
func lock(dir, root string) (unlock func(), err error) {
	if dir == "" {
		dir = DefaultLockDir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errors.Wrap(err, "the sink's lock directory")
	}
	// ZFS names have no '%', so this maps each root to its own file.
	path := filepath.Join(dir, "sink-"+strings.ReplaceAll(root, "/", "%")+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errors.Wrap(err, "the sink's lock file")
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errors.Wrapf(ErrBusy, "%s is busy", root)
		}
		return nil, errors.Wrapf(err, "locking %s", path)
	}
	return func() { _ = f.Close() }, nil
}

// reporter sends the run's events to the pusher. Progress stays here: it
// would have to travel while a stream holds the session, and the pusher
// counts the bytes it sends itself.
type reporter struct {
	ctx context.Context
	src *client.Source
	log *zap.Logger
}

func (r *reporter) Report(ev replication.Event) {
	if ev.Type == replication.EventProgress {
		return
	}
	b, err := json.Marshal(ev)
	if err == nil {
		err = r.src.Report(r.ctx, b)
	}
	if err != nil {
		r.log.Warn("reporting to the pusher failed", zap.String("event", string(ev.Type)), zap.Error(err))
	}
}

// fail reports a failure of the whole push to the pusher and returns it.
func (r *reporter) fail(err error) error {
	r.Report(replication.Event{Type: replication.EventError, Time: time.Now().UTC(), Error: err.Error()})
	return err
}
