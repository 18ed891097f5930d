package main

import (
	"context"
	"io"
	"time"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/zrep/zrep/client"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/server"
)

// connFlags are how ls and pull reach the source endpoint.
type connFlags struct {
	ssh         string
	sshPort     int
	sshIdentity string
	sshOptions  []string
	sshBin      string
	local       bool
	serve       server.ServeConfig
	// rpc holds the session's timeouts set by hidden flags, for tests that
	// need them short (a stalled network, a slow listing); zero: the defaults.
	rpc rpc.Config
}

const connHelp = `Connecting: --ssh USER@HOST runs the system ssh (your ~/.ssh/config, agent and
known_hosts apply; BatchMode=yes unless you pass --ssh-option BatchMode=no); the
remote side is the forced command of the key. --local --policy FILE --identity
NAME runs the endpoint in this process instead, for same-host replication and
for trying out a policy.`

func (c *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.ssh, "ssh", "", "connect with the system ssh to `USER@HOST`")
	fs.IntVar(&c.sshPort, "ssh-port", 0, "ssh port (default: ssh's own, usually 22)")
	fs.StringVar(&c.sshIdentity, "ssh-identity", "", "ssh private key `FILE` (ssh -i)")
	fs.StringArrayVar(&c.sshOptions, "ssh-option", nil, "ssh option `K=V`, passed as -o K=V (repeatable)")
	fs.StringVar(&c.sshBin, "ssh-bin", "ssh", "ssh binary to run")
	fs.BoolVar(&c.local, "local", false, "run the endpoint in this process instead of over ssh")
	fs.StringVar(&c.serve.PolicyFile, "policy", "", "with --local: the policy `FILE`")
	fs.StringVar(&c.serve.Identity, "identity", "", "with --local: the identity in the policy file")
	for _, f := range []struct {
		v          *time.Duration
		name, help string
	}{
		{&c.rpc.HandshakeTimeout, "rpc-handshake-timeout", "HELLO timeout, from the peer's first byte"},
		{&c.rpc.PingInterval, "rpc-ping-interval", "PING a quiet peer after this long"},
		{&c.rpc.PingTimeout, "rpc-ping-timeout", "a peer that answers no PING for this long is dead"},
	} {
		fs.DurationVar(f.v, f.name, 0, f.help+" (tests)")
		_ = fs.MarkHidden(f.name)
	}
}

// connect opens a session with the source. close ends it in order.
func (c *connFlags) connect(ctx context.Context, zfsBin string, log *zap.Logger) (src *client.Source, closeFn func() error, err error) {
	conn, wait, err := c.dial(ctx, zfsBin, log)
	if err != nil {
		return nil, nil, err
	}
	src, err = client.Connect(ctx, conn, c.rpcConfig(log))
	if err != nil {
		_ = conn.Close()
		_ = wait()
		return nil, nil, withExit(exitConnect, err)
	}
	return src, func() error {
		cerr := src.Close()
		if werr := wait(); werr != nil && cerr == nil {
			cerr = errors.WithMessage(werr, "local endpoint")
		}
		return cerr
	}, nil
}

// rpcConfig is the session's configuration: the defaults, but for what the
// hidden --rpc-* flags set.
func (c *connFlags) rpcConfig(log *zap.Logger) rpc.Config {
	cfg := c.rpc
	cfg.SoftwareVersion, cfg.Logger = version, log.Named("rpc")
	return cfg
}

// dial opens the connection to the remote endpoint: the system ssh, or an
// endpoint in this process with --local. wait returns the local endpoint's
// result once the connection is closed (nil over ssh).
func (c *connFlags) dial(ctx context.Context, zfsBin string, log *zap.Logger) (conn io.ReadWriteCloser, wait func() error, err error) {
	switch {
	case c.local && c.ssh != "":
		return nil, nil, withExit(exitUsage, errors.New("--ssh and --local exclude each other"))
	case c.local:
		c.serve.ZFSBin = zfsBin
		ep, err := newEndpoint(c.serve, log.Named("endpoint"))
		if err != nil {
			return nil, nil, withExit(exitUsage, err)
		}
		conn, wait, err := server.Local(ctx, ep, version)
		if err != nil {
			return nil, nil, withExit(exitFailure, err)
		}
		return conn, wait, nil
	case c.ssh != "":
		if c.serve.PolicyFile != "" || c.serve.Identity != "" {
			return nil, nil, withExit(exitUsage, errors.New("--policy and --identity go with --local; over ssh, the key's forced command chooses them"))
		}
		d := &client.SSH{
			Destination: c.ssh,
			Port:        c.sshPort,
			Identity:    c.sshIdentity,
			Options:     c.sshOptions,
			Bin:         c.sshBin,
			Log:         log.Named("ssh"),
		}
		if _, err := d.Args(); err != nil {
			return nil, nil, withExit(exitUsage, err)
		}
		conn, err := d.Dial(ctx)
		if err != nil {
			return nil, nil, withExit(exitConnect, err)
		}
		return conn, func() error { return nil }, nil
	}
	return nil, nil, withExit(exitUsage, errors.New("say where the other end is: --ssh USER@HOST, or --local --policy FILE --identity NAME"))
}
