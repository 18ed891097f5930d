// Package logging builds the zap loggers of zrep's commands: human-readable
// lines on stderr (never stdout, which may carry the protocol or a command's
// output) or in a log file.
package logging

import (
	"os"

	"github.com/pkg/errors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options selects where and what to log.
type Options struct {
	Level string // debug, info, warn, error; default info
	File  string // append to this file instead of stderr
	JSON  bool   // one JSON object per line instead of console lines
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
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, errors.Wrap(err, "opening the log file")
		}
		sink = zapcore.Lock(f)
	}
	return zap.New(zapcore.NewCore(enc, sink, level), zap.ErrorOutput(zapcore.Lock(os.Stderr))), nil
}
