// Package logging builds the zap loggers of zrep's commands: human-readable
// lines on stderr (never stdout, which may carry the protocol or a command's
// output) or in a log file.
package logging

import (
	"os"

	"github.com/pkg/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/zrep/zrep/internal/printable"
)

// Options selects where and what to log.
type Options struct {
	Level string // debug, info, warn, error; default info
	File  string // append to this file instead of stderr
	JSON  bool   // one JSON object per line instead of console lines
	// Human writes plain lines that read like the command's own output
	// ("warning: ...: key=value"), for stderr on a terminal; it is ignored
	// with JSON or File. Terminal also clears the line first, where a
	// progress bar may be.
	Human, Terminal bool
}

// New builds a logger. Sampling is off: a CLI must not drop repeated lines.
func New(o Options) (*zap.Logger, error) {
	level := zapcore.InfoLevel
	if o.Level != "" {
		if err := level.UnmarshalText([]byte(o.Level)); err != nil {
			return nil, errors.Errorf("unknown log level %q (want debug, info, warn or error)", o.Level)
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if o.JSON {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	var sink zapcore.WriteSyncer = zapcore.Lock(os.Stderr)
	if o.Human && !o.JSON && o.File == "" {
		core := plainErrors{&humanCore{LevelEnabler: level, w: sink, clearLine: o.Terminal}}
		return zap.New(core, zap.ErrorOutput(sink)), nil
	}
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, errors.Wrap(err, "opening the log file")
		}
		sink = zapcore.Lock(f)
	}
	core := plainErrors{zapcore.NewCore(enc, escapedC1{sink}, level)}
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}

// escapedC1 writes zap's JSON and console lines with their C1 control
// characters escaped (printable.EscapeC1): zap escapes C0 in field values
// but writes C1 as it is, and a field may hold the other end's text. zap
// writes each entry in one Write.
type escapedC1 struct{ zapcore.WriteSyncer }

func (w escapedC1) Write(p []byte) (int, error) {
	if _, err := w.WriteSyncer.Write(printable.EscapeC1(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// plainErrors logs errors as their message only. Errors from pkg/errors
// would otherwise add an "errorVerbose" field with every stack trace.
type plainErrors struct{ zapcore.Core }

func (c plainErrors) With(fields []zapcore.Field) zapcore.Core {
	return plainErrors{c.Core.With(plain(fields))}
}

func (c plainErrors) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c plainErrors) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, plain(fields))
}

func plain(fields []zapcore.Field) []zapcore.Field {
	out := fields
	for i, f := range fields {
		if f.Type != zapcore.ErrorType {
			continue
		}
		if &out[0] == &fields[0] {
			out = append([]zapcore.Field(nil), fields...)
		}
		if err, ok := f.Interface.(error); ok && err != nil {
			out[i] = zap.String(f.Key, err.Error())
		}
	}
	return out
}
