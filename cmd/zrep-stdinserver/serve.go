package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/zrep/zrep/server"
	"github.com/zrep/zrep/sink"
)

func newServeCommand(g *globalFlags) *cobra.Command {
	var cfg server.ServeConfig
	cmd := &cobra.Command{
		Use:   "serve --policy FILE --identity NAME",
		Short: "Serve the source endpoint (or a sink) on stdin/stdout, as sshd's forced command",
		Long: `Serve the zrep endpoint of one identity on stdin/stdout.

This is meant to be started by sshd as the forced command of a key:

  restrict,command="/usr/local/bin/zrep-stdinserver serve --policy /etc/zrep/policy.yaml --identity backup1" ssh-ed25519 AAAA... backup@backuphost

For an identity with datasets in the policy, a puller's key can then list and
"zfs send" the datasets the policy allows, and nothing else: a dataset the
policy denies looks exactly like one that does not exist, and nothing is ever
changed on this host.

For an identity with a sink (sink: {root: DATASET, quota: SIZE}), a pushing
host's "zrep-stdinserver push" can add snapshots under the root, and nothing
else: this side plans and receives as pull does (every stream inspected, never
a rollback, a destroy, -F or a property), creating the root unmounted and
applying the quota. Two pushes into one root do not run at once (--lock-dir).

The command the client asked for (SSH_ORIGINAL_COMMAND) is logged and
otherwise ignored. stdout carries protocol bytes only; logs go to stderr
(which sshd passes back to the client's ssh) or to --log-file.

Exit status: 0 after the client closed the session in order, 1 when the session
ended otherwise (protocol error, client vanished, idle timeout), 2 when the
policy or the flags are unusable (nothing is served).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(g, cfg) },
	}
	addServeFlags(cmd.Flags(), &cfg)
	return cmd
}

// addServeFlags defines serve's own flags on fs; parseServeArgs uses the
// same definitions for forced commands in the embedded sshd.
func addServeFlags(fs *pflag.FlagSet, cfg *server.ServeConfig) {
	fs.StringVar(&cfg.PolicyFile, "policy", "", "policy file (YAML) mapping identities to the datasets they may see")
	fs.StringVar(&cfg.Identity, "identity", "", "identity in the policy file this key is served as")
	fs.StringVar(&cfg.ZFSBin, "zfs-bin", "zfs", "zfs binary to run")
	fs.StringVar(&cfg.LockDir, "lock-dir", sink.DefaultLockDir, "`DIR` of a sink's lock files (one per sink root)")
}

// parseServeArgs parses the words after "serve" in a forced command exactly
// as the serve subcommand parses its flags (global flags included).
func parseServeArgs(args []string) (server.ServeConfig, error) {
	var cfg server.ServeConfig
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addServeFlags(fs, &cfg)
	var ignored globalFlags
	fs.StringVar(&ignored.logLevel, "log-level", "", "")
	fs.StringVar(&ignored.logFile, "log-file", "", "")
	fs.BoolVar(&ignored.logJSON, "log-json", false, "")
	if err := fs.Parse(args); err != nil {
		return cfg, errors.Wrap(err, "serve flags")
	}
	if fs.NArg() > 0 {
		return cfg, errors.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	return cfg, nil
}

func runServe(g *globalFlags, cfg server.ServeConfig) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// A vanished client must show up as a failed write, not kill the
	// process with SIGPIPE before it cleans up (stderr goes to sshd).
	signal.Ignore(syscall.SIGPIPE)
	log = log.With(zap.String("identity", cfg.Identity),
		zap.String("ssh_connection", os.Getenv("SSH_CONNECTION")),
		zap.String("ssh_original_command", os.Getenv("SSH_ORIGINAL_COMMAND")))
	ep, err := newEndpoint(cfg, log)
	if err != nil {
		log.Error("refusing to serve", zap.Error(err))
		return withExit(server.ExitConfig, err)
	}
	stdio, err := server.TakeStdio()
	if err != nil {
		return withExit(server.ExitConfig, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	log.Info("session start")
	err = ep.Serve(ctx, stdio, version)
	// The session's peak memory, for operators sizing a source (and the
	// load tests, which read it from here).
	rss := zap.Int64("peak_rss_bytes", peakRSS())
	if err != nil {
		log.Error("session failed", zap.Error(err), rss)
		return withExit(server.ExitCode(err), err)
	}
	log.Info("session closed", rss)
	return nil
}
