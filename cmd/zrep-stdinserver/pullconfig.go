package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/fleet"
	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/internal/report"
	"github.com/zrep/zrep/metrics"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/status"
	"github.com/zrep/zrep/zfs"
)

// configFlags are pull's flags for many sources from one file.
type configFlags struct {
	file            string
	jobs            int
	sources         []string
	stateDir        string
	metricsTextfile string
}

func (c *configFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.file, "config", "", "pull every source of this YAML `FILE` (see above) instead of one given by flags")
	fs.IntVar(&c.jobs, "jobs", 0, "with --config: pull at most `N` sources at once (default: the file's jobs, else 2 to 4 by the number of cores)")
	fs.StringArrayVar(&c.sources, "source", nil, "with --config: pull only this source `NAME` (repeatable)")
	fs.StringVar(&c.stateDir, "state-dir", "", "with --config: keep the state files in `DIR` (default: the file's state_dir, else "+pullconfig.DefaultStateDir+")")
	fs.StringVar(&c.metricsTextfile, "metrics-textfile", "", "with --config: write Prometheus metrics to `PATH` for node_exporter's textfile collector (default: the file's metrics_textfile)")
}

// singleSourceOnly are the flags that say where one source is; with
// --config the file says that per source.
var singleSourceOnly = []string{"ssh", "ssh-port", "ssh-identity", "ssh-option", "local", "policy", "identity", "root", "dataset"}

// configOnly are the flags that make sense with --config only.
var configOnly = []string{"jobs", "source", "state-dir", "metrics-textfile"}

// checkFlagMix refuses flags of the other mode.
func checkFlagMix(fs *pflag.FlagSet, withConfig bool) error {
	bad, why := configOnly, "go with --config"
	if withConfig {
		bad, why = singleSourceOnly, "cannot be used with --config: the file says it per source"
	}
	for _, name := range bad {
		if fs.Changed(name) {
			return withExit(exitUsage, errors.Errorf("--%s %s", name, why))
		}
	}
	return nil
}

// loadConfig reads the file and applies the flags that override it.
func (c *configFlags) load() (*pullconfig.Config, []pullconfig.Source, error) {
	cfg, err := pullconfig.Load(c.file)
	if err != nil {
		return nil, nil, withExit(exitUsage, err)
	}
	if c.stateDir != "" {
		cfg.StateDir = c.stateDir
	}
	if c.metricsTextfile != "" {
		cfg.MetricsTextfile = c.metricsTextfile
	}
	switch {
	case c.jobs > 0:
		cfg.Jobs = c.jobs
	case c.jobs < 0:
		return nil, nil, withExit(exitUsage, errors.Errorf("--jobs %d: want 1 or more", c.jobs))
	case cfg.Jobs == 0:
		cfg.Jobs = pullconfig.DefaultJobs()
	}
	selected, err := cfg.Select(c.sources)
	if err != nil {
		return nil, nil, withExit(exitUsage, err)
	}
	return cfg, selected, nil
}

// outcomeExit is the exit status of a source's outcome: the one pull
// would exit with for that source alone.
func outcomeExit(o pullstate.Outcome) int {
	switch o {
	case pullstate.OK:
		return exitOK
	case pullstate.Unreachable:
		return exitConnect
	}
	return exitFailure
}

// sourceDone is the event --json prints when a source's run ended.
type sourceDone struct {
	Type     string            `json:"type"` // "source_done"
	Time     time.Time         `json:"time"`
	Source   string            `json:"source"`
	Outcome  pullstate.Outcome `json:"outcome"`
	ExitCode int               `json:"exit_code"`
	Error    string            `json:"error,omitempty"`
	Duration time.Duration     `json:"duration_ns"`
}

// pullSources is pull --config.
type pullSources struct {
	flags  configFlags
	opts   replication.Options // DryRun and ForceRollback apply to every source
	sshBin string
	zfsBin string
	out    io.Writer
	mode   report.Mode
	log    *zap.Logger
}

func (p *pullSources) run(ctx context.Context) error {
	cfg, selected, err := p.flags.load()
	if err != nil {
		return err
	}
	target := zfs.New(&zfs.CLI{Bin: p.zfsBin})
	lw := report.NewLineWriter(p.out)
	if p.mode == report.Terminal {
		p.mode = report.Lines
	}
	p.log.Debug("pulling sources", zap.String("config", cfg.File), zap.Int("sources", len(selected)), zap.Int("jobs", cfg.Jobs))
	results := fleet.Run(ctx, selected, fleet.Options{
		Jobs:           cfg.Jobs,
		Connect:        p.connect,
		Target:         target,
		Reporter:       func(name string) replication.Reporter { return report.ForSource(lw, p.mode, name) },
		Done:           func(r fleet.Result) { p.done(lw, r) },
		DryRun:         p.opts.DryRun,
		ForceRollback:  p.opts.ForceRollback,
		Raw:            p.opts.Raw,
		BandwidthLimit: p.opts.BandwidthLimit,
		StatePath:      cfg.StatePath,
		Log:            p.log,
	})
	worst := exitOK
	counts := map[pullstate.Outcome]int{}
	for _, r := range results {
		worst = max(worst, outcomeExit(r.Outcome))
		counts[r.Outcome]++
		if r.StateErr != nil {
			p.log.Error("writing the state", zap.String("source", r.Source.Name), zap.Error(r.StateErr))
			worst = max(worst, exitFailure)
		}
	}
	if p.mode != report.JSON {
		var parts []string
		for _, o := range pullstate.Outcomes {
			if counts[o] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
			}
		}
		fmt.Fprintf(lw, "sources: %s\n", strings.Join(parts, ", "))
	}
	if cfg.MetricsTextfile != "" && !p.opts.DryRun {
		if err := writeMetrics(ctx, cfg, target); err != nil {
			p.log.Error("writing the metrics", zap.String("path", cfg.MetricsTextfile), zap.Error(err))
			worst = max(worst, exitFailure)
		}
	}
	if worst != exitOK {
		return silentExit(worst)
	}
	return nil
}

// writeMetrics rewrites the metrics of every source of the file (not only
// those just pulled: the file is the collector's whole view), even after
// a signal ended the pulls.
func writeMetrics(ctx context.Context, cfg *pullconfig.Config, target status.Target) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	r := status.Collect(ctx, cfg.Sources, status.Options{StatePath: cfg.StatePath, Target: target, Now: time.Now()})
	return metrics.WriteTextfile(cfg.MetricsTextfile, r)
}

// connect opens one source's session with the system ssh.
func (p *pullSources) connect(ctx context.Context, s pullconfig.Source) (replication.Source, func() error, error) {
	log := p.log.With(zap.String("source", s.Name))
	d := &client.SSH{Destination: s.SSH, Port: s.Port, Identity: s.Identity, Options: s.SSHOptions, Bin: p.sshBin, Log: log.Named("ssh")}
	src, err := client.Dial(ctx, d, rpc.Config{SoftwareVersion: version, Logger: log.Named("rpc")})
	if err != nil {
		return nil, nil, err
	}
	return src, src.Close, nil
}

// done reports a source's outcome as soon as it is known.
func (p *pullSources) done(lw *report.LineWriter, r fleet.Result) {
	d := r.Finished.Sub(r.Started).Round(time.Millisecond)
	if p.mode == report.JSON {
		ev := sourceDone{Type: "source_done", Time: r.Finished.UTC(), Source: r.Source.Name, Outcome: r.Outcome,
			ExitCode: outcomeExit(r.Outcome), Duration: d}
		if r.Err != nil {
			ev.Error = r.Err.Error()
		}
		_ = json.NewEncoder(printable.JSON(lw)).Encode(ev)
		return
	}
	w := lw.Prefixed("[" + r.Source.Name + "] ")
	if r.Err != nil {
		fmt.Fprintf(w, "source %s after %s: %s\n", strings.ToUpper(string(r.Outcome)), d, printable.String(r.Err.Error()))
		return
	}
	fmt.Fprintf(w, "source OK in %s\n", d)
}
