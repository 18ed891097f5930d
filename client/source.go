package client

import (
	"context"
	"io"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/rpc"
)

// Source is a session with a source endpoint, with one typed method per
// call. One call runs at a time; a Send stream holds the session until it
// is read to the end or closed.
type Source struct {
	rpc  *rpc.Client
	conn io.ReadWriteCloser
	diag func(error) error
}

// Connect performs the protocol handshake over conn. When conn is a Conn
// (the system ssh), failures are explained with ssh's own words.
func Connect(ctx context.Context, conn io.ReadWriteCloser, cfg rpc.Config) (*Source, error) {
	s := &Source{conn: conn, diag: func(err error) error { return err }}
	if c, ok := conn.(Conn); ok {
		s.diag = c.Diagnose
	}
	cl, err := rpc.NewClient(ctx, conn, ConfigFor(conn, cfg))
	if err != nil {
		return nil, s.diag(errors.WithMessage(err, "connecting to the source"))
	}
	s.rpc = cl
	return s, nil
}

// NewSource returns a Source making its calls with cl: the sink's side of a
// push, where the session was set up with the roles inverted.
func NewSource(cl *rpc.Client) *Source {
	return &Source{rpc: cl, diag: func(err error) error { return err }}
}

// Dial connects with d and performs the handshake.
func Dial(ctx context.Context, d Dialer, cfg rpc.Config) (*Source, error) {
	conn, err := d.Dial(ctx)
	if err != nil {
		return nil, err
	}
	return Connect(ctx, conn, cfg)
}

// ServerVersion is the software version the source announced.
func (s *Source) ServerVersion() string { return s.rpc.PeerSoftware() }

// explain adds the transport's diagnosis to failures of the session itself
// (not to call errors, which come from the server and say what they mean,
// nor to a canceled context).
func (s *Source) explain(err error) error {
	var pc *rpc.PeerClosedError
	if err == nil || !IsSessionError(err) || errors.As(err, &pc) && pc.Reason != "" {
		return err // the peer's own words say more than ssh's
	}
	return s.diag(err)
}

// IsSessionError reports whether err is the session with the source failing
// (the connection lost, a failed handshake, an unresponsive peer, ssh's own
// failure), as opposed to a call failing or a local error.
func IsSessionError(err error) bool {
	var sshErr *SSHError
	var pe *rpc.ProtocolError
	var pc *rpc.PeerClosedError
	return errors.As(err, &sshErr) || errors.As(err, &pe) || errors.As(err, &pc) ||
		errors.Is(err, rpc.ErrPeerGone) || errors.Is(err, rpc.ErrHandshake) || errors.Is(err, rpc.ErrPeerUnresponsive)
}

// ListFilesystems lists the datasets the key may see, with their versions
// when withVersions is set.
func (s *Source) ListFilesystems(ctx context.Context, withVersions bool) ([]api.Filesystem, error) {
	var resp api.ListResponse
	body, err := s.rpc.CallStream(ctx, api.MethodListFilesystems, api.ListFilesystemsRequest{WithVersions: withVersions}, &resp)
	if err != nil {
		return nil, s.explain(err)
	}
	if body == nil {
		return nil, errors.New("listing filesystems: the source sent no listing")
	}
	defer body.Close()
	fss, _, err := api.ReadListing(body, resp)
	return fss, s.explain(errors.WithMessage(err, "listing filesystems"))
}

// ListVersions lists one dataset's snapshots and bookmarks, oldest first.
func (s *Source) ListVersions(ctx context.Context, dataset string) ([]api.Version, error) {
	var resp api.ListResponse
	body, err := s.rpc.CallStream(ctx, api.MethodListVersions, api.ListVersionsRequest{Dataset: dataset}, &resp)
	if err != nil {
		return nil, s.explain(err)
	}
	if body == nil {
		return nil, errors.Errorf("listing versions of %s: the source sent no listing", dataset)
	}
	defer body.Close()
	_, vs, err := api.ReadListing(body, resp)
	return vs, s.explain(errors.WithMessagef(err, "listing versions of %s", dataset))
}

// Send starts a zfs send stream. The stream's Read returns io.EOF only
// when the whole stream arrived and zfs send succeeded on the source.
func (s *Source) Send(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	var resp api.SendResponse
	body, err := s.rpc.CallStream(ctx, api.MethodSend, req, &resp)
	if err != nil {
		return nil, nil, s.explain(err)
	}
	if body == nil {
		return nil, nil, errors.Errorf("zfs send %s: the source sent no stream", req.To)
	}
	return &resp, &explainedBody{ReadCloser: body, s: s}, nil
}

// Confirm tells the source the snapshot the target holds (cursor bookmarks).
func (s *Source) Confirm(ctx context.Context, req api.ConfirmRequest) error {
	return s.explain(s.rpc.Call(ctx, api.MethodConfirm, req, nil))
}

// PushOptions asks a pushing host how it wants the push run.
func (s *Source) PushOptions(ctx context.Context) (*api.PushOptions, error) {
	var resp api.PushOptions
	if err := s.rpc.Call(ctx, api.MethodPushOptions, api.PushOptionsRequest{}, &resp); err != nil {
		return nil, s.explain(err)
	}
	return &resp, nil
}

// Report sends one event of the sink's run (JSON) to the pushing host.
func (s *Source) Report(ctx context.Context, event []byte) error {
	return s.explain(s.rpc.Call(ctx, api.MethodReport, api.ReportRequest{Event: event}, nil))
}

// explainedBody adds the transport's diagnosis to a broken stream.
type explainedBody struct {
	io.ReadCloser
	s *Source
}

func (b *explainedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.s.explain(err)
	}
	return n, err
}

// WriteTo keeps the body's zero-copy WriteTo for io.Copy.
func (b *explainedBody) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, b.ReadCloser)
	return n, b.s.explain(err)
}

// Close ends the session in order; the rpc client closes the transport.
func (s *Source) Close() error {
	return s.explain(s.rpc.Close())
}
