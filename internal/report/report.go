// Package report renders a replication run's events for people and
// scripts: a live progress bar per transfer on a terminal, a line per step
// otherwise, or one JSON object per line with --json.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/replication"
)

// Mode selects a renderer.
type Mode int

// Renderers.
const (
	Lines    Mode = iota // one line per step: logs, cron mail, pipes
	Terminal             // Lines plus a live bar per transfer
	JSON                 // one JSON event per line
)

// New returns a Reporter writing to w in mode.
func New(w io.Writer, mode Mode) replication.Reporter {
	switch mode {
	case JSON:
		return &jsonReporter{enc: json.NewEncoder(printable.JSON(w))}
	case Terminal:
		return &lineReporter{w: w, bars: true}
	}
	return &lineReporter{w: w}
}

// jsonReporter prints every event as a JSON line; progress at most once a
// second per transfer.
type jsonReporter struct {
	enc          *json.Encoder
	lastProgress time.Time
}

func (j *jsonReporter) Report(ev replication.Event) {
	if j.due(ev) {
		_ = j.enc.Encode(ev)
	}
}

// due reports whether ev is to be printed: progress at most once a second.
func (j *jsonReporter) due(ev replication.Event) bool {
	if ev.Type == replication.EventProgress {
		if ev.Time.Sub(j.lastProgress) < time.Second {
			return false
		}
		j.lastProgress = ev.Time
	}
	if ev.Type == replication.EventStepStart {
		j.lastProgress = ev.Time
	}
	return true
}

// lineReporter prints the plan, each step and the summary as lines, with
// a progress bar during transfers when bars is set.
type lineReporter struct {
	w    io.Writer
	bars bool
	bar  *progressbar.ProgressBar
}

func (l *lineReporter) Report(ev replication.Event) {
	switch ev.Type {
	case replication.EventPlan:
		l.plan(ev.Plan)
	case replication.EventStepStart:
		l.printf("%s: step %d/%d: %s\n", ev.Dataset, ev.StepIndex, ev.StepCount, ev.Step)
	case replication.EventProgress:
		if !l.bars {
			return
		}
		if l.bar == nil {
			// The size is known once the source answered: then the bar has
			// an end and an ETA; otherwise it shows bytes and rate.
			max := int64(-1)
			if ev.EstimatedBytes > 0 {
				max = ev.EstimatedBytes
			}
			l.bar = progressbar.NewOptions64(max,
				progressbar.OptionSetWriter(l.w),
				progressbar.OptionShowBytes(true),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionSetDescription("  receiving"),
				progressbar.OptionSetElapsedTime(true),
				progressbar.OptionSetPredictTime(max > 0),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(),
			)
		}
		_ = l.bar.Set64(ev.Bytes)
	case replication.EventStepDone:
		l.endBar()
		l.printf("%s: step %d/%d done: %s in %s (%s/s)\n", ev.Dataset, ev.StepIndex, ev.StepCount,
			replication.HumanBytes(ev.Bytes), ev.Duration.Round(time.Millisecond), replication.HumanBytes(int64(ev.BytesPerSecond)))
	case replication.EventError:
		l.endBar()
		l.printf("%s: ERROR: %s\n", ev.Dataset, ev.Error)
	case replication.EventSummary:
		l.summary(ev.Summary)
	}
}

// printf prints one line, without control characters: its names and
// errors may be the other end's (package printable).
func (l *lineReporter) printf(format string, args ...any) {
	line := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n")
	_, _ = io.WriteString(l.w, printable.String(line)+"\n")
}

func (l *lineReporter) endBar() {
	if l.bar != nil {
		_ = l.bar.Finish()
		l.bar = nil
	}
}

func (l *lineReporter) plan(plans []replication.DatasetPlan) {
	for _, p := range plans {
		switch p.Action {
		case replication.ActionReplicate:
			var steps []string
			if p.ClearResume != "" {
				steps = append(steps, "discard a resume token that cannot be used ("+p.ClearResume+")")
			}
			if p.RollbackTo != "" {
				steps = append(steps, "roll back to "+p.RollbackTo)
			}
			if len(p.DestroySnapshots) > 0 {
				steps = append(steps, fmt.Sprintf("destroy %d target snapshot(s)", len(p.DestroySnapshots)))
			}
			for _, s := range p.Steps {
				steps = append(steps, s.String())
			}
			l.printf("plan %s -> %s: %s\n", p.Dataset, p.Target, strings.Join(steps, ", then "))
		case replication.ActionDiverged:
			l.printf("plan %s -> %s: refused, diverged\n", p.Dataset, p.Target)
		default:
			l.printf("plan %s -> %s: %s\n", p.Dataset, p.Target, p.Action)
		}
	}
}

func (l *lineReporter) summary(s *replication.Summary) {
	counts := map[replication.Outcome]int{}
	for _, r := range s.Results {
		counts[r.Outcome]++
		switch r.Outcome {
		case replication.OutcomeReplicated:
			l.printf("%-10s %s -> %s: %d snapshot(s), %s in %s\n", "OK", r.Dataset, r.Target, r.Snapshots, replication.HumanBytes(r.Bytes), r.Duration.Round(time.Millisecond))
		case replication.OutcomePlanned:
			l.printf("%-10s %s -> %s: %d snapshot(s) to receive\n", "PLANNED", r.Dataset, r.Target, r.Snapshots)
		case replication.OutcomeUpToDate, replication.OutcomeNoSnapshots:
			l.printf("%-10s %s -> %s: %s\n", "OK", r.Dataset, r.Target, r.Outcome)
		default:
			l.printf("%-10s %s -> %s: %s\n", strings.ToUpper(string(r.Outcome)), r.Dataset, r.Target, r.Error)
		}
	}
	var parts []string
	for _, o := range []replication.Outcome{replication.OutcomeReplicated, replication.OutcomePlanned, replication.OutcomeUpToDate,
		replication.OutcomeNoSnapshots, replication.OutcomeDiverged, replication.OutcomeFailed} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "no datasets")
	}
	l.printf("summary: %s\n", strings.Join(parts, ", "))
}
