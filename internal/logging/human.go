package logging

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/zrep/zrep/internal/printable"
)

// humanCore writes entries as the lines a person reads among pull's
// output: "warning: rolling back the diverged target: target=bk/a
// to=bk/a@s1". No time, no logger name, no JSON; errors say "error: ",
// warnings "warning: ", debug lines "debug: ", info nothing. On a terminal
// (clearLine) each line first clears the line it starts on, where a
// progress bar may be drawn; the bar redraws itself below.
type humanCore struct {
	zapcore.LevelEnabler
	w         zapcore.WriteSyncer
	clearLine bool
	fields    []zapcore.Field // from With, in order
}

func (c *humanCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.fields = append(append([]zapcore.Field(nil), c.fields...), fields...)
	return &clone
}

func (c *humanCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *humanCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	var b strings.Builder
	if c.clearLine {
		b.WriteString("\r\x1b[K")
	}
	switch {
	case e.Level >= zapcore.ErrorLevel:
		b.WriteString("error: ")
	case e.Level == zapcore.WarnLevel:
		b.WriteString("warning: ")
	case e.Level == zapcore.DebugLevel:
		b.WriteString("debug: ")
	}
	b.WriteString(printable.String(e.Message))
	sep := ": "
	for _, f := range append(append([]zapcore.Field(nil), c.fields...), fields...) {
		for _, kv := range render(f) {
			b.WriteString(sep)
			sep = " "
			b.WriteString(kv)
		}
	}
	b.WriteByte('\n')
	_, err := io.WriteString(c.w, b.String())
	return err
}

func (c *humanCore) Sync() error { return c.w.Sync() }

// render formats a field as key=value pairs (an object field gives one
// pair per key); values with spaces, control characters (which a terminal
// would take as commands) or bytes that are not UTF-8 are quoted, escaped.
func render(f zapcore.Field) []string {
	enc := zapcore.NewMapObjectEncoder()
	f.AddTo(enc)
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		v := fmt.Sprint(enc.Fields[k])
		if v == "" || strings.ContainsAny(v, " \"=") || printable.String(v) != v {
			v = fmt.Sprintf("%q", v)
		}
		out = append(out, k+"="+v)
	}
	return out
}
