// Package server runs the zrep source endpoint over its transports: the
// process's stdin/stdout under sshd's forced command (`serve`), the embedded
// SSH server (`sshd`), and an in-process pipe (`--local`).
package server

import (
	"context"
	"fmt"
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
	LockDir    string // --lock-dir: where a sink's lock files go; "" means the default
}

// Endpoint is everything needed to serve one identity: what it may pull
// (its dataset policy and the zfs to serve from) and where it may push.
type Endpoint struct {
	Identity string
	// Policy decides which datasets the identity may pull; nil when it may
	// only push.
	Policy handlers.Policy
	// RawOnly: encrypted datasets go out only raw (the policy's raw_only).
	RawOnly bool
	// CursorBookmarks: the puller may confirm what it received, and the
	// endpoint keeps a cursor bookmark of it (the policy's cursor_bookmarks).
	CursorBookmarks bool
	ZFS             handlers.ZFS
	// SinkPolicy is the identity's sink from the policy file; nil when it
	// may not push.
	SinkPolicy *policy.Sink
	// Sink receives a push: a session in which the peer serves and this
	// side makes the calls. The caller wires it (package sink) for an
	// identity with a SinkPolicy; nil refuses pushes.
	Sink func(ctx context.Context, sess *rpc.Session) error
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
	id, err := file.Identity(cfg.Identity)
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		Identity:   cfg.Identity,
		ZFS:        zfs.New(&zfs.CLI{Bin: cfg.ZFSBin}),
		SinkPolicy: id.Sink,
		Log:        log,
	}
	if id.Source != nil { // a nil *Filter in the interface would not be nil
		e.Policy, e.RawOnly, e.CursorBookmarks = id.Source, id.RawOnly, id.CursorBookmarks
	}
	return e, nil
}

// ErrRefused is returned by Serve when the peer wanted what the identity
// may not do: pull from a push-only identity, or push without a sink.
var ErrRefused = errors.New("session refused")

// Serve runs one session over rwc until it ends, and closes rwc: the
// source endpoint for a puller, or the sink for a pusher. It returns nil
// after the client closed the session in order (see rpc.Server.Serve).
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
	if z, ok := e.ZFS.(*zfs.ZFS); ok && e.Policy != nil {
		// Every call needs zfs's features (zfs run without arguments):
		// detect them while the handshake runs. The result is cached.
		go func() { _, _ = z.Features(ctx) }()
	}
	sess, err := rpc.Accept(ctx, rwc, cfg)
	if err != nil {
		return err
	}
	if !sess.Serves() {
		if e.Sink == nil {
			return refuse(sess, fmt.Sprintf("identity %q has no sink in the policy: it cannot push", e.Identity))
		}
		log.Info("push: receiving", zap.String("root", e.SinkPolicy.Root))
		return e.Sink(ctx, sess)
	}
	if e.Policy == nil {
		return refuse(sess, fmt.Sprintf("identity %q may only push (it has a sink and no datasets): use zrep-stdinserver push", e.Identity))
	}
	srv, err := rpc.NewServer(cfg)
	if err != nil {
		_ = sess.Refuse("server error")
		return err
	}
	var opts []handlers.Option
	if e.RawOnly {
		opts = append(opts, handlers.RawOnly())
	}
	if c, ok := e.ZFS.(handlers.CursorZFS); ok && e.CursorBookmarks {
		opts = append(opts, handlers.Cursors(c, e.Identity))
	}
	if err := handlers.New(e.ZFS, e.Policy, log.Named("handlers"), opts...).Register(srv); err != nil {
		_ = sess.Refuse("server error")
		return err
	}
	return srv.Serve(ctx, sess)
}

// refuse ends sess telling the peer why, and returns the same words.
func refuse(sess *rpc.Session, reason string) error {
	_ = sess.Refuse(reason)
	return errors.Wrap(ErrRefused, reason)
}
