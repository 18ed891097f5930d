package rpc

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// transport makes a connected pair of streams.
type transport struct {
	name string
	pair func(t *testing.T) (client, server io.ReadWriteCloser)
}

var transports = []transport{
	{"net.Pipe", func(t *testing.T) (io.ReadWriteCloser, io.ReadWriteCloser) {
		a, b := net.Pipe()
		return a, b
	}},
	{"os.Pipe", osPipePair},
}

// osPipePair joins two os.Pipes into a duplex stream, like a process's
// stdin/stdout under sshd.
func osPipePair(t *testing.T) (io.ReadWriteCloser, io.ReadWriteCloser) {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a, b := &duplex{r: r1, w: w2}, &duplex{r: r2, w: w1}
	// Closing both at the end also keeps them reachable: an end a test
	// ignores would otherwise be closed by the garbage collector, and the
	// other end would see its peer hang up in the middle of the test.
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

type duplex struct {
	r io.ReadCloser
	w io.WriteCloser
}

func (d *duplex) Read(p []byte) (int, error)  { return d.r.Read(p) }
func (d *duplex) Write(p []byte) (int, error) { return d.w.Write(p) }
func (d *duplex) Close() error {
	werr := d.w.Close()
	rerr := d.r.Close()
	if werr != nil {
		return werr
	}
	return rerr
}

// session is a running client/server pair.
type session struct {
	client    *Client
	serverErr chan error
	cancel    context.CancelFunc
}

// testConfig is a Config with the test's logger and short close timeouts.
func testConfig(t *testing.T) Config {
	return Config{Logger: zaptest.NewLogger(t), CloseTimeout: 2 * time.Second, SoftwareVersion: "test"}
}

// startSession serves srv over one end of tr and connects a client to the other.
func startSession(t *testing.T, tr transport, srv *Server, ccfg Config) *session {
	t.Helper()
	cs, ss := tr.pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{serverErr: make(chan error, 1), cancel: cancel}
	go func() { s.serverErr <- srv.ServeConn(ctx, ss) }()
	cl, err := NewClient(context.Background(), cs, ccfg)
	if err != nil {
		cancel()
		t.Fatalf("NewClient: %v", err)
	}
	s.client = cl
	t.Cleanup(func() {
		_ = cl.Close()
		cancel()
		select {
		case <-s.serverErr:
		case <-time.After(5 * time.Second):
			t.Errorf("server did not return after the test")
		}
	})
	return s
}

// waitServer returns the server's result, failing the test after d.
func (s *session) waitServer(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-s.serverErr:
		s.serverErr <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("server still running after %s", d)
		return nil
	}
}

func newTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func mustRegister(t *testing.T, srv *Server, name string, fn any) {
	t.Helper()
	if err := srv.Register(name, fn); err != nil {
		t.Fatal(err)
	}
}

// EchoReq and EchoResp are the test service's types.
type EchoReq struct {
	Text string `json:"text"`
}

type EchoResp struct {
	Text string `json:"text"`
}

func echo(ctx context.Context, req EchoReq) (*EchoResp, error) {
	return &EchoResp{Text: req.Text}, nil
}

// StreamReq asks the stream handler for Size bytes from seed Seed.
type StreamReq struct {
	Size      int64 `json:"size"`
	Seed      int64 `json:"seed"`
	FailAfter int64 `json:"fail_after"`
}

// patternReader produces a deterministic byte stream.
type patternReader struct {
	remaining int64
	state     uint64
}

func newPattern(size, seed int64) *patternReader {
	return &patternReader{remaining: size, state: uint64(seed)*2654435761 + 1}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.remaining {
		b = b[:p.remaining]
	}
	for i := range b {
		p.state ^= p.state << 13
		p.state ^= p.state >> 7
		p.state ^= p.state << 17
		b[i] = byte(p.state)
	}
	p.remaining -= int64(len(b))
	return len(b), nil
}

// trackedBody records whether the server closed it.
type trackedBody struct {
	io.Reader
	closed chan struct{}
}

func newTracked(r io.Reader) *trackedBody {
	return &trackedBody{Reader: r, closed: make(chan struct{})}
}

func (b *trackedBody) Close() error {
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
	return nil
}

// blockingReader blocks until closed, like a zfs send that has nothing to say.
type blockingReader struct{ closed chan struct{} }

func (b *blockingReader) Read([]byte) (int, error) {
	<-b.closed
	return 0, os.ErrClosed
}

func waitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s was not closed", what)
	}
}
