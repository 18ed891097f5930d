package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/server"
	"github.com/zrep/zrep/sink"
	"github.com/zrep/zrep/zfs"
)

// newEndpoint builds the endpoint of a serve configuration, with the sink
// wired in for an identity that may push.
func newEndpoint(cfg server.ServeConfig, log *zap.Logger) (*server.Endpoint, error) {
	ep, err := server.NewEndpoint(cfg, log)
	if err != nil || ep.SinkPolicy == nil {
		return ep, err
	}
	s := *ep.SinkPolicy
	ep.Sink = func(ctx context.Context, sess *rpc.Session) error {
		return sink.Receive(ctx, sess, sink.Config{
			Identity: cfg.Identity,
			Root:     s.Root,
			Quota:    s.Quota,
			RawOnly:  s.RawOnly,
			ZFS:      zfs.New(&zfs.CLI{Bin: cfg.ZFSBin}),
			LockDir:  cfg.LockDir,
			Log:      log.Named("sink"),
		})
	}
	return ep, nil
}
