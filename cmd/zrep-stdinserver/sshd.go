package main

import (
	"context"
	"net"
	"os/signal"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/zrep/zrep/server"
)

func newSSHDCommand(g *globalFlags) *cobra.Command {
	var (
		listen string
		cfg    = server.SSHDConfig{Limits: server.DefaultLimits()}
	)
	cmd := &cobra.Command{
		Use:   "sshd --listen ADDR --host-key FILE --authorized-keys FILE",
		Short: "Serve the endpoint behind an embedded SSH server",
		Long: `Serve the zrep source endpoint behind an embedded SSH server, without OpenSSH.

It reads the same authorized_keys file OpenSSH would: a key may log in only if
its line has a command="... serve --policy FILE --identity NAME" option, and
the session then runs that serve configuration for the key, whatever command
the client asked for (as sshd does with forced commands). from="..." patterns
are enforced on the client's address. The file is read again at every login.

Passwords, keyboard-interactive logins, port and agent forwarding, PTYs,
shells and subsystems are refused. Every session is logged with the key's
fingerprint and identity. Stop it with SIGINT or SIGTERM.

Like sshd, it limits connections that have not logged in yet: each gets
--login-grace-time to log in, and from the first number of --max-startups on
new ones are refused at random, with the probability rising from rate% to
100% at the last number. A logged-in connection may hold --max-sessions
sessions at once. The defaults are sshd's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.ParseServe = parseServeArgs
			cfg.NewEndpoint = newEndpoint
			cfg.Version = version
			cfg.Log = log
			d, err := server.NewSSHD(cfg)
			if err != nil {
				return withExit(exitUsage, err)
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return withExit(exitUsage, errors.Wrap(err, "listen"))
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go func() {
				<-ctx.Done()
				log.Info("shutting down")
				_ = d.Close()
			}()
			return withExit(exitFailure, d.Serve(l))
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:2222", "address to listen on")
	f.StringVar(&cfg.HostKeyFile, "host-key", "", "host private key file (OpenSSH format)")
	f.BoolVar(&cfg.GenerateHostKey, "generate-host-key", false, "create an ed25519 host key in --host-key if the file does not exist")
	f.StringVar(&cfg.AuthorizedKeysFile, "authorized-keys", "", "authorized_keys file with command=\"... serve ...\" lines")
	f.DurationVar(&cfg.Limits.LoginGraceTime, "login-grace-time", cfg.Limits.LoginGraceTime, "close a connection that has not logged in after this long; 0 for no limit")
	f.Var(&cfg.Limits.MaxStartups, "max-startups", "limit connections not logged in yet: refuse new ones with probability rate% from start on, all from full on (N means N:100:N)")
	f.IntVar(&cfg.Limits.MaxSessions, "max-sessions", cfg.Limits.MaxSessions, "sessions open at once on one connection")
	_ = cmd.MarkFlagRequired("host-key")
	_ = cmd.MarkFlagRequired("authorized-keys")
	return cmd
}
