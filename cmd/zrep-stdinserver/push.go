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
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/push"
	"github.com/zrep/zrep/sink"
	"github.com/zrep/zrep/zfs"
)

func newPushCommand(g *globalFlags) *cobra.Command {
	var (
		conn     connFlags
		datasets []string
		dryRun   bool
		raw      bool
		asJSON   bool
		zfsBin   string
		bwRate   string
	)
	cmd := &cobra.Command{
		Use:   "push (--ssh USER@HOST | --local ...) --dataset LOCAL... [--raw] [--dry-run] [--json]",
		Short: "Offer local datasets to a backup server's sink, which receives them",
		Long: `Offer local datasets to the sink of a backup server: this host connects, and
the backup server pulls them over that connection. The key's forced command on
the backup server is "zrep-stdinserver serve" with an identity that has a sink
in its policy (sink: {root: backup/laptops/laptop1}); local tank/data lands at
ROOT/tank/data there, as pull --root places it.

The backup server plans by guid and receives exactly as pull does, under its
root only, and can only add snapshots there: a full stream into a dataset that
does not exist yet, or an incremental from the target's newest snapshot. It
never rolls back, destroys or receives with -F, and inspects every stream. So a
compromised pushing host cannot destroy what it pushed before. A target that
diverged is reported, never "fixed"; a push over the sink's quota fails and
every earlier snapshot stays. Cut transfers resume where the sink's zfs can,
as with pull. --raw sends encrypted datasets raw: the sink stores ciphertext
and never gets their keys (a sink with raw_only takes nothing else).

This host can do nothing on the backup server but answer its questions: list
and zfs send the datasets offered with --dataset (repeatable; "tank/home<" offers
tank/home and every dataset below it), and nothing else.

` + connHelp + `

Output: as pull's: the sink's plan, a line (or a progress bar) per transfer,
the summary; one JSON event per line with --json.

Exit status: 0 every offered dataset is up to date on the sink, 1 one or more
failed or were refused, 2 bad flags, 3 the backup server could not be reached
or the session with it failed before anything was planned.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if len(datasets) == 0 {
				return withExit(exitUsage, errors.New("say what to offer: --dataset LOCAL (repeatable; tank/home< for a subtree)"))
			}
			offer, err := policy.Allow(datasets)
			if err != nil {
				return withExit(exitUsage, errors.WithMessage(err, "--dataset"))
			}
			limit, err := bwlimit.Parse(bwRate)
			if err != nil {
				return withExit(exitUsage, errors.WithMessage(err, "--bwlimit"))
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, wait, err := conn.dial(ctx, zfsBin, log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			mode := report.Lines
			switch {
			case asJSON:
				mode = report.JSON
			case out == os.Stdout && term.IsTerminal(int(os.Stdout.Fd())):
				mode = report.Terminal
			}
			sum, err := push.Push(ctx, c, push.Options{
				Offer:          offer,
				ZFS:            zfs.New(&zfs.CLI{Bin: zfsBin}),
				DryRun:         dryRun,
				Raw:            raw,
				BandwidthLimit: limit,
				Reporter:       report.New(out, mode),
				RPC:            client.ConfigFor(c, conn.rpcConfig(log)),
				Log:            log.Named("push"),
			})
			if werr := wait(); werr != nil {
				log.Warn("local sink", zap.Error(werr))
			}
			if err != nil {
				if sc, ok := c.(client.Conn); ok && client.IsSessionError(err) {
					return withExit(exitConnect, sc.Diagnose(err))
				}
				return withExit(exitFailure, err)
			}
			if sum.Failed > 0 {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	conn.register(cmd.Flags())
	f := cmd.Flags()
	f.StringArrayVar(&datasets, "dataset", nil, "offer this local `DATASET` (repeatable; DATASET< for it and everything below)")
	f.BoolVar(&dryRun, "dry-run", false, "ask the sink for its plan and change nothing")
	f.BoolVar(&raw, "raw", false, "send encrypted datasets raw (zfs send -w): the sink never gets their keys")
	f.BoolVar(&asJSON, "json", false, "print one JSON event per line")
	f.StringVar(&bwRate, "bwlimit", "", "limit the streams to `RATE` bytes per second, e.g. 20MiB or 20M (units of 1024)")
	f.StringVar(&zfsBin, "zfs-bin", "zfs", "zfs binary to run locally (and for the sink with --local)")
	f.StringVar(&conn.serve.LockDir, "lock-dir", sink.DefaultLockDir, "with --local: `DIR` of the sink's lock files")
	return cmd
}
