// Package status says how current the backups of each configured source
// are: per dataset, the newest snapshot on the backup and its age (from the
// target's own snapshots, so the lag is true even when no pull has run for
// days), and what the last pull did (from its state file).
package status

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/zfs"
)

// Target lists the backup's datasets; *zfs.ZFS implements it.
type Target interface {
	ListTree(ctx context.Context, root string) ([]zfs.DatasetVersions, error)
}

// Report is the status of some sources at one time.
type Report struct {
	Time time.Time `json:"time"`
	// WarnLag is the lag beyond which a dataset is lagging; 0: none is.
	WarnLag time.Duration `json:"warn_lag_ns,omitempty"`
	Sources []Source      `json:"sources"`
}

// Source is one source's status.
type Source struct {
	Name string `json:"name"`
	Root string `json:"root"`
	// LastRun is what its last pull did; nil if none has.
	LastRun *Run `json:"last_run"`
	// Error says why the status is incomplete (the target or the state
	// could not be read).
	Error    string    `json:"error,omitempty"`
	Datasets []Dataset `json:"datasets"`
	// Lagging: a dataset lags, none was received, or the status is incomplete.
	Lagging bool `json:"lagging"`
}

// Run is a source's last pull, from its state file.
type Run struct {
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
	Duration    time.Duration     `json:"duration_ns"`
	Outcome     pullstate.Outcome `json:"outcome"`
	Error       string            `json:"error,omitempty"`
	Bytes       int64             `json:"bytes"`
	LastSuccess time.Time         `json:"last_success,omitzero"`
	Failures    int64             `json:"failures"`
}

// Dataset is one dataset's status.
type Dataset struct {
	Dataset string `json:"dataset"` // the source's name for it
	Target  string `json:"target"`
	// NewestSnapshot is the newest snapshot on the target ("" if none) and
	// NewestCreated its creation time.
	NewestSnapshot string    `json:"newest_snapshot,omitempty"`
	NewestCreated  time.Time `json:"newest_created,omitzero"`
	// Lag is the report's time minus NewestCreated; 0 without a snapshot.
	Lag time.Duration `json:"lag_ns"`
	// LastRun is this dataset's record in the state; nil if none.
	LastRun *pullstate.Dataset `json:"last_run,omitempty"`
	// Lagging: older than WarnLag, or no snapshot at all (with a WarnLag).
	Lagging bool `json:"lagging"`
}

// Options configure Collect.
type Options struct {
	StatePath func(source string) string
	Target    Target
	Now       time.Time
	WarnLag   time.Duration
}

// Collect builds the status of sources.
func Collect(ctx context.Context, sources []pullconfig.Source, o Options) *Report {
	r := &Report{Time: o.Now.UTC(), WarnLag: o.WarnLag, Sources: []Source{}}
	for _, s := range sources {
		r.Sources = append(r.Sources, collect(ctx, s, o))
	}
	return r
}

func collect(ctx context.Context, s pullconfig.Source, o Options) Source {
	out := Source{Name: s.Name, Root: s.Root, Datasets: []Dataset{}}
	var problems []string
	st, err := pullstate.Load(o.StatePath(s.Name))
	if err != nil {
		problems = append(problems, err.Error())
	}
	if st != nil && st.Root != s.Root {
		st = nil // the state of another root: not this tree's history
	}
	if st != nil {
		out.LastRun = &Run{Started: st.Started, Finished: st.Finished, Duration: st.Duration, Outcome: st.Outcome, Error: st.Error,
			Bytes: st.Bytes, LastSuccess: st.LastSuccess, Failures: st.Failures}
	}
	byTarget := map[string]*Dataset{}
	add := func(target string) *Dataset {
		if d := byTarget[target]; d != nil {
			return d
		}
		d := &Dataset{Dataset: strings.TrimPrefix(target, s.Root+"/"), Target: target}
		byTarget[target] = d
		return d
	}
	tree, err := o.Target.ListTree(ctx, s.Root)
	switch {
	case errors.Is(err, zfs.ErrNotFound):
		// Nothing received yet: every dataset of the state lags.
	case err != nil:
		problems = append(problems, errors.WithMessagef(err, "listing %s", s.Root).Error())
	}
	for _, ds := range tree {
		var newest *zfs.Version
		for i := range ds.Versions {
			if v := &ds.Versions[i]; v.Type == zfs.Snapshot {
				newest = v // sorted by createtxg: the last is the newest
			}
		}
		if newest == nil || ds.Name == s.Root {
			continue // a placeholder parent
		}
		d := add(ds.Name)
		d.NewestSnapshot, d.NewestCreated = newest.Name, newest.Creation.UTC()
		d.Lag = max(o.Now.Sub(newest.Creation), 0)
	}
	if st != nil {
		for i := range st.Datasets {
			rec := &st.Datasets[i]
			d := add(rec.Target)
			d.Dataset, d.LastRun = rec.Dataset, rec
		}
	}
	for _, d := range byTarget {
		d.Lagging = o.WarnLag > 0 && (d.NewestSnapshot == "" || d.Lag > o.WarnLag)
		out.Lagging = out.Lagging || d.Lagging
		out.Datasets = append(out.Datasets, *d)
	}
	sort.Slice(out.Datasets, func(i, j int) bool { return out.Datasets[i].Dataset < out.Datasets[j].Dataset })
	out.Error = strings.Join(problems, "; ")
	if o.WarnLag > 0 && (len(out.Datasets) == 0 || out.Error != "") {
		out.Lagging = true
	}
	return out
}

// Lagging reports whether a source lags (only with a WarnLag).
func (r *Report) Lagging() bool {
	for _, s := range r.Sources {
		if s.Lagging {
			return true
		}
	}
	return false
}

// Incomplete reports whether the status of a source could not be read.
func (r *Report) Incomplete() bool {
	for _, s := range r.Sources {
		if s.Error != "" {
			return true
		}
	}
	return false
}
