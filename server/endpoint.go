// Package server runs the zrep source endpoint over its transports: the
// process's stdin/stdout under sshd's forced command (`serve`), the embedded
// SSH server (`sshd`), and an in-process pipe (`--local`).
package server

import (
	"context"
	"io"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/policy"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/zfs"
)

// ServeConfig is one serve configuration, as the flags of
// `zrep-stdinserver serve` (or a forced command in authorized_keys) give it.
type ServeConfig struct {
	PolicyFile string // --policy
	Identity   string // --identity
	ZFSBin     string // --zfs-bin; "" means "zfs"
}

// Endpoint is everything needed to serve one identity: its policy and the
// zfs to serve from.
type Endpoint struct {
	Identity string
	Policy   handlers.Policy
	ZFS      handlers.ZFS
	// RPC configures sessions; its Logger and SoftwareVersion are filled in
	// by Serve when empty.
	RPC rpc.Config
	Log *zap.Logger
}

// NewEndpoint loads the policy file and checks the identity is in it. Any
// problem with the policy is an error: the endpoint then refuses to serve.
func NewEndpoint(cfg ServeConfig, log *zap.Logger) (*Endpoint, error) {
	if cfg.PolicyFile == "" || cfg.Identity == "" {
		return nil, errors.New("serve needs --policy FILE and --identity NAME")
	}
	file, err := policy.Load(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	filter, err := file.Filter(cfg.Identity)
	if err != nil {
		return nil, err
	}
	return &Endpoint{
		Identity: cfg.Identity,
		Policy:   filter,
		ZFS:      zfs.New(&zfs.CLI{Bin: cfg.ZFSBin}),
		Log:      log,
	}, nil
}

// Serve runs one session over rwc until it ends, and closes rwc. It returns
// nil after the client closed the session in order (see rpc.Server.ServeConn).
func (e *Endpoint) Serve(ctx context.Context, rwc io.ReadWriteCloser, version string) error {
	log := e.Log
	if log == nil {
		log = zap.NewNop()
	}
	cfg := e.RPC
	if cfg.Logger == nil {
		cfg.Logger = log.Named("rpc")
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = version
	}
	srv, err := rpc.NewServer(cfg)
	if err != nil {
		_ = rwc.Close()
		return err
	}
	if err := handlers.New(e.ZFS, e.Policy, log.Named("handlers")).Register(srv); err != nil {
		_ = rwc.Close()
		return err
	}
	return srv.ServeConn(ctx, rwc)
}
