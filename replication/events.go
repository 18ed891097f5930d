package replication

import (
	"io"
	"sync"
	"time"

	"github.com/zrep/zrep/internal/units"
)

// EventType names an Event.
type EventType string

// Event types, in the order a run emits them.
const (
	EventPlan        EventType = "plan"         // Plan: every dataset's plan
	EventStepStart   EventType = "step_start"   // a transfer begins
	EventProgress    EventType = "progress"     // bytes so far of the transfer
	EventStepDone    EventType = "step_done"    // the transfer was received
	EventError       EventType = "error"        // a dataset failed or was refused
	EventDatasetDone EventType = "dataset_done" // Result: a dataset's outcome
	EventSummary     EventType = "summary"      // Summary: the run's outcome
)

// Event is what a run reports as it goes; --json prints one per line.
type Event struct {
	Type           EventType     `json:"type"`
	Time           time.Time     `json:"time"`
	Dataset        string        `json:"dataset,omitempty"`
	Target         string        `json:"target,omitempty"`
	Plan           []DatasetPlan `json:"plan,omitempty"`
	Step           *Step         `json:"step,omitempty"`
	StepIndex      int           `json:"step_index,omitempty"` // 1-based
	StepCount      int           `json:"step_count,omitempty"`
	Bytes          int64         `json:"bytes,omitempty"`
	EstimatedBytes int64         `json:"estimated_bytes,omitempty"` // the stream's expected size; 0 if unknown
	BytesPerSecond float64       `json:"bytes_per_second,omitempty"`
	Duration       time.Duration `json:"duration_ns,omitempty"`
	Error          string        `json:"error,omitempty"`
	Result         *Result       `json:"result,omitempty"`
	Summary        *Summary      `json:"summary,omitempty"`
}

// Reporter receives a run's events, from one goroutine at a time.
type Reporter interface {
	Report(Event)
}

type discard struct{}

func (discard) Report(Event) {}

// progressInterval is how often a transfer reports its progress.
const progressInterval = 200 * time.Millisecond

// progressWriter counts the bytes written through it and reports them at
// most every progressInterval.
type progressWriter struct {
	w      io.Writer
	report func(n int64, final bool)
	mu     sync.Mutex
	n      int64
	last   time.Time
}

func newProgressWriter(w io.Writer, report func(n int64, final bool)) *progressWriter {
	return &progressWriter{w: w, report: report, last: time.Now()}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.mu.Lock()
	p.n += int64(n)
	due := time.Since(p.last) >= progressInterval
	if due {
		p.last = time.Now()
	}
	total := p.n
	p.mu.Unlock()
	if due {
		p.report(total, false)
	}
	return n, err
}

// flush reports the final count.
func (p *progressWriter) flush() {
	p.mu.Lock()
	total := p.n
	p.mu.Unlock()
	p.report(total, true)
}

// HumanBytes formats a byte count with a binary unit, e.g. "1.5 GiB".
func HumanBytes(n int64) string { return units.FormatSize(uint64(max(n, 0))) }
