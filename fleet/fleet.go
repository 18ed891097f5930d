// Package fleet pulls many sources, each in its own session, at most a
// given number at a time: `pull --config`. Each source is bounded by its
// own timeout, so that one that hangs never stalls the others, and its
// outcome is recorded in its state file as soon as it is known.
package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/bwlimit"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
)

// Connect opens the session with a source; close ends it in order.
type Connect func(ctx context.Context, s pullconfig.Source) (src replication.Source, closeFn func() error, err error)

// Options configure Run.
type Options struct {
	Jobs    int                // sources pulled at once; at least 1
	Connect Connect            // required
	Target  replication.Target // the local zfs, shared by every source
	// Reporter returns the reporter of a source's events; nil discards them.
	Reporter func(source string) replication.Reporter
	// Done is called once per source, as soon as its run ended (from the
	// source's goroutine).
	Done          func(Result)
	DryRun        bool
	ForceRollback bool
	Raw           bool // every source raw, as if each said raw: true
	// BandwidthLimit, when not nil, limits the streams of every source
	// together.
	BandwidthLimit *bwlimit.Limiter
	// StatePath returns the state file of a source; "" (or a nil func, or
	// a dry run) writes no state.
	StatePath func(source string) string
	Log       *zap.Logger
	Now       func() time.Time // default time.Now
}

// Result is the outcome of one source's run.
type Result struct {
	Source   pullconfig.Source
	Started  time.Time
	Finished time.Time
	Outcome  pullstate.Outcome
	Err      error                // why it did not end OK
	Summary  *replication.Summary // nil when nothing was planned
	State    *pullstate.State     // the state written; nil if none
	StateErr error                // writing the state failed
}

// Run pulls sources, at most o.Jobs at a time, and returns their results
// in the order of sources. Canceling ctx ends every run.
func Run(ctx context.Context, sources []pullconfig.Source, o Options) []Result {
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	results := make([]Result, len(sources))
	slots := make(chan struct{}, o.Jobs)
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				results[i] = o.finish(Result{Source: s, Started: o.Now(), Outcome: pullstate.Failed,
					Err: errors.WithMessage(ctx.Err(), "not started")})
				return
			}
			defer func() { <-slots }()
			results[i] = o.finish(o.pull(ctx, s))
		}()
	}
	wg.Wait()
	return results
}

// pull runs one source under its timeout.
func (o *Options) pull(parent context.Context, s pullconfig.Source) Result {
	res := Result{Source: s, Started: o.Now()}
	log := o.Log.With(zap.String("source", s.Name))
	ctx, cancel := context.WithTimeout(parent, s.Timeout)
	defer cancel()
	timedOut := func() bool { return ctx.Err() != nil && parent.Err() == nil }
	timeoutErr := func(err error) error {
		return errors.Errorf("timed out after %s (the source's timeout): %v", s.Timeout, err)
	}

	log.Debug("connecting")
	src, closeSrc, err := o.Connect(ctx, s)
	if err != nil {
		res.Outcome, res.Err = pullstate.Unreachable, err
		if timedOut() {
			res.Outcome, res.Err = pullstate.TimedOut, timeoutErr(err)
		}
		return res
	}
	var rep replication.Reporter
	if o.Reporter != nil {
		rep = o.Reporter(s.Name)
	}
	sum, err := replication.Run(ctx, src, o.Target, replication.Options{
		Root: s.Root, Datasets: s.Datasets, DryRun: o.DryRun, ForceRollback: o.ForceRollback, Raw: s.Raw || o.Raw,
		BandwidthLimit: o.BandwidthLimit, Reporter: rep, Log: log.Named("replication"),
	})
	cerr := closeSrc()
	res.Summary = sum
	switch {
	case timedOut():
		res.Outcome = pullstate.TimedOut
		if err == nil {
			err = ctx.Err()
			if sum != nil && sum.Failed > 0 {
				err = errors.Errorf("%s", failedDatasets(sum))
			}
		}
		res.Err = timeoutErr(err)
	case err != nil && client.IsSessionError(err):
		res.Outcome, res.Err = pullstate.Unreachable, err
	case err != nil:
		res.Outcome, res.Err = pullstate.Failed, err
	case sum.Failed > 0:
		res.Outcome, res.Err = pullstate.Failed, errors.New(failedDatasets(sum))
	default:
		res.Outcome = pullstate.OK
		if cerr != nil {
			log.Warn("closing the session", zap.Error(cerr))
		}
	}
	return res
}

// failedDatasets says which datasets failed, e.g. "2 of 5 datasets
// failed: tank/a, tank/b".
func failedDatasets(sum *replication.Summary) string {
	var names []string
	for _, r := range sum.Results {
		if r.Outcome.Failed() {
			names = append(names, r.Dataset)
		}
	}
	msg := fmt.Sprintf("%d of %d datasets failed", len(names), len(sum.Results))
	for i, n := range names {
		if i == 0 {
			msg += ": " + n
		} else {
			msg += ", " + n
		}
	}
	return msg
}

// finish records the result in the state file and calls Done.
func (o *Options) finish(res Result) Result {
	res.Finished = o.Now()
	if !o.DryRun && o.StatePath != nil {
		if path := o.StatePath(res.Source.Name); path != "" {
			prev, err := pullstate.Load(path)
			if err != nil {
				o.Log.Warn("the previous state is unreadable; starting a new one", zap.String("source", res.Source.Name), zap.Error(err))
				prev = nil
			}
			run := pullstate.Run{Source: res.Source.Name, Root: res.Source.Root, Started: res.Started, Finished: res.Finished,
				Outcome: res.Outcome, Summary: res.Summary}
			if res.Err != nil {
				run.Error = res.Err.Error()
			}
			st := pullstate.Next(prev, run)
			if res.StateErr = pullstate.Save(path, st); res.StateErr == nil {
				res.State = st
			}
		}
	}
	if o.Done != nil {
		o.Done(res)
	}
	return res
}
