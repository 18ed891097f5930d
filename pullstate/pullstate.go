// Package pullstate keeps what the last `pull` of each source did, in one
// small JSON file per source (STATE_DIR/SOURCE.json), replaced atomically
// after every run: `status` and the metrics read it.
package pullstate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/atomicfile"
	"github.com/zrep/zrep/replication"
)

// FormatVersion is the version of the file's layout.
const FormatVersion = 1

// Outcome is how a source's run ended.
type Outcome string

// Outcomes of a source's run, from best to worst.
const (
	OK          Outcome = "ok"          // every dataset is up to date
	Failed      Outcome = "failed"      // one or more datasets failed or were refused
	TimedOut    Outcome = "timed-out"   // the source's timeout ended the run
	Unreachable Outcome = "unreachable" // no session with the source: nothing was planned
)

// Outcomes lists every outcome, for metrics that show all of them.
var Outcomes = []Outcome{OK, Failed, TimedOut, Unreachable}

// State is the record of a source's last run.
type State struct {
	Version  int           `json:"version"`
	Source   string        `json:"source"`
	Root     string        `json:"root"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Duration time.Duration `json:"duration_ns"`
	Outcome  Outcome       `json:"outcome"`
	Error    string        `json:"error,omitempty"`
	Bytes    int64         `json:"bytes"`
	// LastSuccess is when a run last ended OK; zero if none has.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Failures counts the runs that did not end OK, ever.
	Failures int64 `json:"failures"`
	// Datasets are the datasets' last results, by source dataset name. A
	// run that never reached a dataset (the source was unreachable) keeps
	// its previous record.
	Datasets []Dataset `json:"datasets"`
}

// Dataset is one dataset's last result.
type Dataset struct {
	Dataset   string              `json:"dataset"`
	Target    string              `json:"target"`
	Time      time.Time           `json:"time"` // when its last run finished
	Outcome   replication.Outcome `json:"outcome"`
	Snapshots int                 `json:"snapshots"`
	Bytes     int64               `json:"bytes"`
	Duration  time.Duration       `json:"duration_ns"`
	Error     string              `json:"error,omitempty"`
	// LastSuccess is when it was last brought up to date; zero if never.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Failures counts its failed runs, ever.
	Failures int64 `json:"failures"`
}

// Run is what one run of a source did, for Next.
type Run struct {
	Source   string
	Root     string
	Started  time.Time
	Finished time.Time
	Outcome  Outcome
	Error    string
	Summary  *replication.Summary // nil when nothing was planned
}

// Next returns the state after run, given the previous state (nil if none).
func Next(prev *State, run Run) *State {
	s := &State{
		Version: FormatVersion, Source: run.Source, Root: run.Root,
		Started: run.Started.UTC(), Finished: run.Finished.UTC(), Duration: run.Finished.Sub(run.Started),
		Outcome: run.Outcome, Error: run.Error,
	}
	old := map[string]Dataset{}
	if prev != nil && prev.Root == run.Root {
		s.LastSuccess, s.Failures = prev.LastSuccess, prev.Failures
		for _, d := range prev.Datasets {
			old[d.Dataset] = d
		}
	}
	if run.Outcome == OK {
		s.LastSuccess = s.Finished
	} else {
		s.Failures++
	}
	if run.Summary != nil {
		for _, r := range run.Summary.Results {
			d := old[r.Dataset]
			d.Dataset, d.Target, d.Time = r.Dataset, r.Target, s.Finished
			d.Outcome, d.Snapshots, d.Bytes, d.Duration, d.Error = r.Outcome, r.Snapshots, r.Bytes, r.Duration, r.Error
			if r.Outcome.Failed() {
				d.Failures++
			} else {
				d.LastSuccess = s.Finished
			}
			old[r.Dataset] = d
			s.Bytes += r.Bytes
		}
	}
	for _, d := range old {
		s.Datasets = append(s.Datasets, d)
	}
	sort.Slice(s.Datasets, func(i, j int) bool { return s.Datasets[i].Dataset < s.Datasets[j].Dataset })
	return s
}

// Load reads the state file at path; (nil, nil) when there is none yet.
func Load(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "reading the state")
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errors.Wrapf(err, "reading the state %s", path)
	}
	if s.Version != FormatVersion {
		return nil, errors.Errorf("reading the state %s: version %d, this zrep reads version %d", path, s.Version, FormatVersion)
	}
	return &s, nil
}

// Save writes s to path atomically, creating its directory if needed.
func Save(path string, s *State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return errors.Wrap(err, "creating the state directory")
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return errors.Wrap(err, "encoding the state")
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}
