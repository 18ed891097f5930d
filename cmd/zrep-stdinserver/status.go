package main

import (
	"context"
	"encoding/json"
	"os/signal"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/status"
	"github.com/zrep/zrep/zfs"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	var (
		file     string
		sources  []string
		stateDir string
		asJSON   bool
		warnLag  string
		zfsBin   string
	)
	cmd := &cobra.Command{
		Use:   "status --config FILE [--source NAME]... [--json] [--warn-lag DURATION]",
		Short: "Show how current the backups of each source are",
		Long: `Show, for each source of the pull configuration (see pull --help) and each of
its datasets on this host: the newest snapshot received and its age (the lag:
now minus its creation time), and what the last pull did: its outcome, time
and bytes, and, where it failed, why.

The lag comes from the backup's own snapshots (zfs list under the source's
root), so it is true even when no pull has run for days; the last run comes
from the state file pull writes (STATE_DIR/SOURCE.json). A dataset appears
when it has a snapshot on the backup or the last pull tried it.

--warn-lag DURATION (e.g. 26h, 2d) marks as LAGGING every dataset whose newest
snapshot is older, or that has none, and every source with no dataset at all:
a check for monitoring. --json prints one document with the same facts
(durations in nanoseconds, times in RFC 3339).

Exit status: 0 all is well, 1 something lags (with --warn-lag) or a source's
status could not be read, 2 bad flags or configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.logger(); err != nil {
				return err
			}
			if file == "" {
				return withExit(exitUsage, errors.New("--config FILE is required"))
			}
			var lag time.Duration
			if warnLag != "" {
				var err error
				if lag, err = pullconfig.ParseDuration(warnLag); err != nil {
					return withExit(exitUsage, errors.WithMessage(err, "--warn-lag"))
				}
			}
			cfg, err := pullconfig.Load(file)
			if err != nil {
				return withExit(exitUsage, err)
			}
			if stateDir != "" {
				cfg.StateDir = stateDir
			}
			selected, err := cfg.Select(sources)
			if err != nil {
				return withExit(exitUsage, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r := status.Collect(ctx, selected, status.Options{StatePath: cfg.StatePath, Target: zfs.New(&zfs.CLI{Bin: zfsBin}),
				Now: time.Now(), WarnLag: lag})
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(printable.JSON(out))
				enc.SetIndent("", "  ")
				err = enc.Encode(r)
			} else {
				err = status.Render(out, r)
			}
			if err != nil {
				return withExit(exitFailure, err)
			}
			if r.Lagging() || r.Incomplete() {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "the pull configuration `FILE`")
	f.StringArrayVar(&sources, "source", nil, "show only this source `NAME` (repeatable)")
	f.StringVar(&stateDir, "state-dir", "", "read the state files from `DIR` (default: the file's state_dir, else "+pullconfig.DefaultStateDir+")")
	f.BoolVar(&asJSON, "json", false, "print one JSON document")
	f.StringVar(&warnLag, "warn-lag", "", "exit 1 when a dataset's newest snapshot is older than `DURATION` (e.g. 26h, 2d)")
	f.StringVar(&zfsBin, "zfs-bin", "zfs", "zfs binary to run")
	return cmd
}
