package main

import (
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/doctor"
	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/pullconfig"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// Where doctor looks when told nothing.
const (
	defaultPolicyFile = "/etc/zrep/policy.yaml"
	defaultConfigFile = "/etc/zrep/pull.yaml"
)

func newDoctorCommand(g *globalFlags) *cobra.Command {
	var (
		policyFile string
		authKeys   []string
		configFile string
		sources    []string
		asJSON     bool
		zfsBin     string
		sshBin     string
		userName   string
	)
	cmd := &cobra.Command{
		Use:   "doctor [--policy FILE [--authorized-keys FILE]...] [--config FILE [--source NAME]...] [--user NAME] [--json]",
		Short: "Check a source's or a backup host's setup and say what is wrong",
		Long: `Check this host's zrep setup and say, for each problem, what to do about it.

On a source (--policy FILE): the policy parses and every dataset it allows as
a root exists; each authorized_keys line that runs zrep-stdinserver is one
sshd accepts, has restrict (and, advised, from=), and forces serve with flags,
a policy and an identity that work.

On a backup host (--config FILE, the pull configuration): it parses; each
source is reachable, its host key known, the key accepted and forced into
serve (doctor asks ssh for a command that does not exist: only a forced serve
completes the protocol handshake), and the datasets the configuration names
are visible to the key; each root's pool exists, and the root, if it exists,
has mountpoint=none (canmount=off alone is a warning: what is received below
it still inherits a mountpoint).

On both, what the installed zfs supports (a warning on zfs-fuse), and, for
a user other than root, the zfs allow permissions it needs: on a source,
send,hold on each dataset the policy allows as a root (and bookmark,destroy
with cursor_bookmarks), receive:append,create,mount on each sink root (plain
receive is a warning: it can receive -F); on a backup host,
create,mount,receive on each root (destroy missing is a warning: zfs receive
-A needs it). The user is --user NAME; without it, on a source the owner of
each authorized_keys file (serve runs as that user), on a backup host the
user doctor runs as. Root needs no permissions.

Without --policy and --config, doctor checks /etc/zrep/policy.yaml and
/etc/zrep/pull.yaml, those that exist. --authorized-keys defaults to the
current user's ~/.ssh/authorized_keys. --json prints one document:
{"findings":[{"check","subject","severity","message","fix"}],"errors":N,"warnings":N}.

Exit status: 0 no errors (warnings are printed), 1 one or more errors,
2 bad flags or nothing to check.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if policyFile == "" && configFile == "" {
				for _, f := range []struct {
					path string
					to   *string
				}{{defaultPolicyFile, &policyFile}, {defaultConfigFile, &configFile}} {
					if _, err := os.Stat(f.path); err == nil {
						*f.to = f.path
					}
				}
				if policyFile == "" && configFile == "" {
					return withExit(exitUsage, errors.Errorf("nothing to check: neither %s nor %s exists; give --policy FILE (a source) or --config FILE (a backup host)", defaultPolicyFile, defaultConfigFile))
				}
			}
			if len(sources) > 0 && configFile == "" {
				return withExit(exitUsage, errors.New("--source goes with --config"))
			}
			if len(authKeys) > 0 && policyFile == "" {
				return withExit(exitUsage, errors.New("--authorized-keys goes with --policy"))
			}
			z := zfs.New(&zfs.CLI{Bin: zfsBin})
			var flagUser *doctor.Who
			if userName != "" {
				p, err := doctor.LookupUser(userName)
				if err != nil {
					return withExit(exitUsage, errors.Wrap(err, "--user"))
				}
				flagUser = &doctor.Who{Principal: p, Why: "--user"}
			}
			checks := []doctor.Check{doctor.FeaturesCheck(z)}
			if policyFile != "" {
				checks = append(checks, doctor.PolicyCheck(policyFile, z))
				if len(authKeys) == 0 {
					home, err := os.UserHomeDir()
					if err != nil {
						return withExit(exitUsage, errors.Wrap(err, "--authorized-keys: no home directory"))
					}
					authKeys = []string{filepath.Join(home, ".ssh", "authorized_keys")}
				}
				for _, f := range authKeys {
					checks = append(checks, doctor.AuthorizedKeysCheck(f, policyFile, parseServeArgs))
				}
				users, err := doctor.ServeUsers(flagUser, authKeys)
				if err != nil {
					return withExit(exitFailure, err)
				}
				for _, who := range users {
					checks = append(checks, doctor.SourceDelegationCheck(policyFile, who, z))
				}
			}
			if configFile != "" {
				cfg, err := pullconfig.Load(configFile)
				var selected []pullconfig.Source
				if err == nil {
					if selected, err = cfg.Select(sources); err != nil {
						return withExit(exitUsage, err)
					}
				}
				checks = append(checks, doctor.ConfigCheck(configFile, err, len(selected)))
				dial := func(ctx context.Context, s pullconfig.Source) (doctor.Session, error) {
					l := log.With(zap.String("source", s.Name))
					d := &client.SSH{Destination: s.SSH, Port: s.Port, Identity: s.Identity, Options: s.SSHOptions, Bin: sshBin,
						RemoteCommand: doctor.ProbeCommand, Log: l.Named("ssh")}
					return client.Dial(ctx, d, rpc.Config{SoftwareVersion: version, Logger: l.Named("rpc")})
				}
				who := flagUser
				if who == nil {
					if who, err = doctor.CurrentUser(); err != nil {
						return withExit(exitFailure, err)
					}
				}
				for _, s := range selected {
					checks = append(checks, doctor.SessionCheck(s, dial), doctor.TargetCheck(s, z), doctor.PullDelegationCheck(s, *who, z))
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r := doctor.Run(ctx, checks)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(printable.JSON(out))
				enc.SetIndent("", "  ")
				err = enc.Encode(r)
			} else {
				err = doctor.Render(out, r)
			}
			if err != nil {
				return withExit(exitFailure, err)
			}
			if r.Errors > 0 {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "check this host as a source with this policy `FILE`")
	f.StringArrayVar(&authKeys, "authorized-keys", nil, "with --policy: the authorized_keys `FILE` to check (repeatable; default ~/.ssh/authorized_keys)")
	f.StringVar(&configFile, "config", "", "check this host as a backup host with this pull configuration `FILE`")
	f.StringArrayVar(&sources, "source", nil, "with --config: check only this source `NAME` (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print one JSON document")
	f.StringVar(&zfsBin, "zfs-bin", "zfs", "zfs binary to run")
	f.StringVar(&sshBin, "ssh-bin", "ssh", "ssh binary to run")
	f.StringVar(&userName, "user", "", "check the zfs allow permissions of this user `NAME` (default: the owner of each authorized_keys file; with --config, the user doctor runs as)")
	return cmd
}
