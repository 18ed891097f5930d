package report

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/replication"
)

// LineWriter is a writer shared by concurrent sources: each complete line
// written through one of its Prefixed writers reaches w whole, never
// interleaved with another's.
type LineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLineWriter returns a LineWriter on w.
func NewLineWriter(w io.Writer) *LineWriter { return &LineWriter{w: w} }

// Write writes p to w at once.
func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Prefixed returns a writer that puts prefix before each line and passes
// complete lines on; a final line without newline is held until one comes.
func (l *LineWriter) Prefixed(prefix string) io.Writer {
	return &prefixWriter{l: l, prefix: []byte(prefix)}
}

type prefixWriter struct {
	l      *LineWriter
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		out = append(out, p.prefix...)
		out = append(out, p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
	}
	if len(out) > 0 {
		if _, err := p.l.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// ForSource returns a Reporter for one of several sources pulled at once:
// in Lines mode each line starts with "[SOURCE] "; in JSON mode every event
// carries "source". Terminal mode is Lines mode here: progress bars of
// sources running at once cannot share a terminal.
func ForSource(l *LineWriter, mode Mode, source string) replication.Reporter {
	if mode == JSON {
		return &sourceJSON{enc: json.NewEncoder(printable.JSON(l)), source: source}
	}
	return &lineReporter{w: l.Prefixed("[" + source + "] ")}
}

// SourceEvent is an event of one of several sources, as --json prints it.
type SourceEvent struct {
	Source string `json:"source"`
	replication.Event
}

type sourceJSON struct {
	enc    *json.Encoder
	source string
	inner  jsonReporter
}

func (s *sourceJSON) Report(ev replication.Event) {
	if !s.inner.due(ev) {
		return
	}
	_ = s.enc.Encode(SourceEvent{Source: s.source, Event: ev})
}
