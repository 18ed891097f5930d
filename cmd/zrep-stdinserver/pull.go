package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/internal/bwlimit"
	"github.com/zrep/zrep/internal/report"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/zfs"
)

func newPullCommand(g *globalFlags) *cobra.Command {
	var (
		conn   connFlags
		opts   replication.Options
		asJSON bool
		zfsBin string
		many   configFlags
		bwRate string
	)
	cmd := &cobra.Command{
		Use:   "pull (--ssh USER@HOST | --local ...) --root LOCAL_DATASET [--dataset REMOTE]... [--raw] | --config FILE [--jobs N] [--source NAME]...",
		Short: "Replicate the source's datasets under a local dataset",
		Long: `Replicate every dataset the key may see on the source (or only those named
with --dataset) to LOCAL_DATASET/<source name>: tank/data under --root
backup/host1 becomes backup/host1/tank/data. Missing parents are created
unmounted (mountpoint=none). One ssh connection serves the whole run.

Plans go by snapshot guid: a new target gets a full stream of the oldest
snapshot, then one incremental stream (zfs send -I) up to the newest; an
existing target gets an incremental stream from the newest snapshot both sides
share. A target that has diverged (snapshots the source lacks after the common
one, or no common snapshot) is refused and left as it is, unless
--force-rollback is given: then it is rolled back to the common snapshot (or
its snapshots destroyed) and received with zfs recv -F. Every received
snapshot's guid is checked against the source's.

The backup host does not trust the source. Every stream is inspected before
zfs receive sees a byte of it: it must be exactly the plain (full or -i) or
-I stream asked for, its snapshots' names and guids those of the plan, in
order. Package streams (zfs send -R, -p, -h, -b) that carry properties, holds
or other file systems, and any other stream, are refused, the target left as
it was, with an error saying the source is broken or compromised. Where the
local zfs supports it (OpenZFS), receives are also unmounted (-u) and force
mountpoint, canmount, overlay, sharenfs, sharesmb, exec, setuid, devices and
keylocation to inherit (-x). -F is used only with --force-rollback. zfs receives every snapshot
whole or not at all: a transfer cut in the middle leaves no partial snapshot
(a stream carrying several keeps those completed before the cut), and the
next run continues from what arrived. Where the local zfs can (OpenZFS),
receives are resumable: the next run asks the source for the rest of the cut
snapshot (zfs send -t, with a token the source checks field by field); a
token that can no longer be used is discarded (zfs receive -A) and the
transfer starts afresh.

--raw receives encrypted datasets raw (zfs send -w): this host stores
ciphertext and never needs their keys. A dataset received raw once is asked
for raw again. Sources whose policy says raw_only send encrypted datasets only
raw. Streams use zfs send -L -e -c where both sides have them.

` + connHelp + `

Many sources: --config FILE pulls every source of a YAML file (or only those
named with --source), each in its own ssh session, at most --jobs at a time,
each bounded by its timeout so that one that hangs never stalls the others:

  state_dir: /var/lib/zrep          # optional: state files, read by status
  metrics_textfile: /var/lib/prometheus/node-exporter/zrep.prom  # optional
  jobs: 2                           # optional: sources pulled at once
  timeout: 12h                      # optional: per source (default 12h)
  sources:
    web1:                           # its name in output, status and metrics
      ssh: backup@web1.example.com
      port: 22                      # optional
      identity: /root/.ssh/zrep_web1            # optional, as --ssh-identity
      ssh_options: ["StrictHostKeyChecking=yes"] # optional, as --ssh-option
      root: backup/web1
      datasets: ["tank/data"]       # optional, as --dataset
      raw: true                     # optional, as --raw
      timeout: 2h                   # optional

Unknown keys and bad values are refused with their line. --dry-run,
--force-rollback and --raw apply to every source. Each line of output
starts with "[SOURCE] "; --json events carry "source", and a source_done event
ends each source. After each source, its state file STATE_DIR/SOURCE.json
records the run (not with --dry-run); with metrics_textfile (or
--metrics-textfile) the metrics of every source are then rewritten.

A source that stops answering is given up on: a session that receives nothing
for 15 s sends a PING, and one that then receives nothing for 60 s more ends
(ssh's ServerAliveInterval=15 and ServerAliveCountMax=4 end a dead connection
after about a minute too); the dataset in transit fails saying so, and ssh is
ended 3 s later. A slow login is no failure: the protocol's 30 s handshake
clock starts at the source's first byte, and ssh's ConnectTimeout=30 and the
source's LoginGraceTime bound the connection and the login.
--bwlimit RATE limits the streams (together, of every source with --config)
to RATE bytes per second.

Output: a progress bar per transfer on a terminal, a line per step otherwise,
one JSON event per line with --json (types: plan, step_start, progress,
step_done, error, dataset_done, summary). Logs go to stderr.

Exit status: 0 every dataset is up to date, 1 one or more failed or were
refused (see the summary), 2 bad flags, 3 the source could not be reached or
the session with it failed before anything was planned. With --config: the
highest status of the sources (a source that timed out counts as 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if err := checkFlagMix(cmd.Flags(), many.file != ""); err != nil {
				return err
			}
			if opts.BandwidthLimit, err = bwlimit.Parse(bwRate); err != nil {
				return withExit(exitUsage, errors.WithMessage(err, "--bwlimit"))
			}
			out := cmd.OutOrStdout()
			mode := report.Lines
			switch {
			case asJSON:
				mode = report.JSON
			case out == os.Stdout && term.IsTerminal(int(os.Stdout.Fd())):
				mode = report.Terminal
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if many.file != "" {
				p := &pullSources{flags: many, opts: opts, sshBin: conn.sshBin, zfsBin: zfsBin, out: out, mode: mode, log: log}
				return p.run(ctx)
			}
			if opts.Root == "" {
				return withExit(exitUsage, errors.New("--root LOCAL_DATASET is required"))
			}
			if err := zfs.ValidateDatasetName(opts.Root); err != nil {
				return withExit(exitUsage, errors.WithMessage(err, "--root"))
			}
			// The local listing runs while ssh connects and logs in.
			dst := zfs.New(&zfs.CLI{Bin: zfsBin})
			opts.TargetListing = replication.ListTarget(ctx, dst, opts.Root)
			src, closeSrc, err := conn.connect(ctx, zfsBin, log)
			if err != nil {
				return err
			}
			opts.Reporter = report.New(out, mode)
			opts.Log = log.Named("replication")
			sum, err := replication.Run(ctx, src, dst, opts)
			cerr := closeSrc()
			if err != nil {
				if client.IsSessionError(err) {
					return withExit(exitConnect, err)
				}
				return withExit(exitFailure, err)
			}
			if sum.Failed > 0 {
				return silentExit(exitFailure)
			}
			if cerr != nil {
				log.Warn("closing the session", zap.Error(cerr))
			}
			return nil
		},
	}
	conn.register(cmd.Flags())
	many.register(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&opts.Root, "root", "", "local `DATASET` to receive under")
	f.StringArrayVar(&opts.Datasets, "dataset", nil, "replicate only this source `DATASET` (repeatable)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	f.BoolVar(&opts.Raw, "raw", false, "receive encrypted datasets raw (zfs send -w): this host stores ciphertext and never needs their keys")
	f.BoolVar(&opts.ForceRollback, "force-rollback", false, "roll back or overwrite targets that diverged from the source (destroys their newer snapshots)")
	f.BoolVar(&asJSON, "json", false, "print one JSON event per line")
	f.StringVar(&bwRate, "bwlimit", "", "limit the streams to `RATE` bytes per second, e.g. 20MiB or 20M (units of 1024)")
	f.StringVar(&zfsBin, "zfs-bin", "zfs", "zfs binary to run locally (and for the endpoint with --local)")
	return cmd
}
