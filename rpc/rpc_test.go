package rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func forEachTransport(t *testing.T, f func(t *testing.T, tr transport)) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { f(t, tr) })
	}
}

func TestCallRoundTrip(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Echo", echo)
		s := startSession(t, tr, srv, testConfig(t))
		for _, text := range []string{"", "hello", strings.Repeat("x", 100_000), "ünïcode"} {
			var resp EchoResp
			if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: text}, &resp); err != nil {
				t.Fatalf("Call: %v", err)
			}
			if resp.Text != text {
				t.Fatalf("echo returned %d bytes, want %d", len(resp.Text), len(text))
			}
		}
		if got := s.client.PeerSoftware(); got != "test" {
			t.Errorf("PeerSoftware = %q, want %q", got, "test")
		}
	})
}

// A header larger than one frame travels as several HEADERS frames.
func TestHeaderSpansFrames(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxFramePayload = MinFramePayload
	srv := newTestServer(t, cfg)
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, cfg)
	text := strings.Repeat("abc", 200_000) // 600 KB: about 37 frames of 16 KiB
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: text}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Text != text {
		t.Fatal("multi-frame header came back different")
	}
}

func streamHandler(ctx context.Context, req StreamReq) (*EchoResp, io.ReadCloser, error) {
	var r io.Reader = newPattern(req.Size, req.Seed)
	if req.FailAfter > 0 {
		r = io.MultiReader(io.LimitReader(r, req.FailAfter), &failingReader{err: Errorf(CodeInternal, "zfs send tank/a@s1: exit status 1: I/O error")})
	}
	return &EchoResp{Text: "streaming"}, io.NopCloser(r), nil
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

func patternSum(size, seed int64) [32]byte {
	h := sha256.New()
	_, _ = io.Copy(h, newPattern(size, seed))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestLargeBodyChecksummed(t *testing.T) {
	size := int64(256 << 20)
	if testing.Short() {
		size = 16 << 20
	}
	want := patternSum(size, 7)
	forEachTransport(t, func(t *testing.T, tr transport) {
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Stream", streamHandler)
		s := startSession(t, tr, srv, testConfig(t))
		for _, how := range []string{"WriteTo", "Read"} {
			var resp EchoResp
			body, err := s.client.CallStream(context.Background(), "Stream", StreamReq{Size: size, Seed: 7}, &resp)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != "streaming" {
				t.Fatalf("response = %+v", resp)
			}
			h := sha256.New()
			var n int64
			if how == "WriteTo" {
				n, err = io.Copy(h, body)
			} else { // odd-sized reads exercise partial frames
				n, err = io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{body}, make([]byte, 3001))
			}
			if err != nil {
				t.Fatalf("%s: copy: %v", how, err)
			}
			if n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("%s: got %d bytes with a different checksum, want %d", how, n, size)
			}
			if err := body.Close(); err != nil {
				t.Fatalf("Close after EOF: %v", err)
			}
		}
	})
}

func TestEmptyBody(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Stream", streamHandler)
	s := startSession(t, transports[0], srv, testConfig(t))
	body, err := s.client.CallStream(context.Background(), "Stream", StreamReq{Size: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		t.Fatal("an empty body must still be a body")
	}
	b, err := io.ReadAll(body)
	if err != nil || len(b) != 0 {
		t.Fatalf("ReadAll = %d bytes, %v; want 0, nil", len(b), err)
	}
}

// A body that fails in the middle must not look complete: Read returns the
// producer's error, never io.EOF, and the session goes on.
func TestBodyFailsMidway(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Stream", streamHandler)
		mustRegister(t, srv, "Echo", echo)
		s := startSession(t, tr, srv, testConfig(t))
		body, err := s.client.CallStream(context.Background(), "Stream", StreamReq{Size: 10 << 20, Seed: 1, FailAfter: 3<<20 + 17}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, body)
		if err == nil {
			t.Fatalf("copy of a failed body succeeded after %d bytes", n)
		}
		if n != 3<<20+17 {
			t.Errorf("got %d bytes before the error, want %d", n, 3<<20+17)
		}
		if CodeOf(err) != CodeInternal || !strings.Contains(err.Error(), "I/O error") {
			t.Errorf("error = %v (code %q), want the producer's internal error", err, CodeOf(err))
		}
		if _, err := body.Read(make([]byte, 10)); err == nil || err == io.EOF {
			t.Errorf("Read after the failure = %v, want the same error again", err)
		}
		var resp EchoResp
		if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "after"}, &resp); err != nil || resp.Text != "after" {
			t.Fatalf("call after a failed body: %v %+v", err, resp)
		}
	})
}

func TestHandlerErrorCodes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode Code
		wantMsg  string
	}{
		{"not found", Errorf(CodeNotFound, "dataset %q does not exist", "tank/x"), CodeNotFound, `dataset "tank/x" does not exist`},
		{"denied", Errorf(CodePermissionDenied, "no"), CodePermissionDenied, "no"},
		{"invalid", Errorf(CodeInvalidArgument, "bad name"), CodeInvalidArgument, "bad name"},
		{"internal", Errorf(CodeInternal, "boom"), CodeInternal, "boom"},
		{"plain error is internal", errors.New("disk on fire"), CodeInternal, "disk on fire"},
		{"wrapped rpc error keeps its code", wrapErr(Errorf(CodeNotFound, "gone")), CodeNotFound, "gone"},
	}
	srv := newTestServer(t, testConfig(t))
	var current atomic.Pointer[error]
	mustRegister(t, srv, "Fail", func(ctx context.Context, req EchoReq) (*EchoResp, error) { return nil, *current.Load() })
	s := startSession(t, transports[0], srv, testConfig(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			current.Store(&tt.err)
			err := s.client.Call(context.Background(), "Fail", EchoReq{}, nil)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Code != tt.wantCode || e.Message != tt.wantMsg {
				t.Fatalf("got %q %q, want %q %q", e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func wrapErr(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestUnknownMethodAndBadParams(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[0], srv, testConfig(t))
	err := s.client.Call(context.Background(), "NoSuchMethod", EchoReq{}, nil)
	if CodeOf(err) != CodeUnimplemented || !strings.Contains(err.Error(), "NoSuchMethod") {
		t.Errorf("unknown method: %v", err)
	}
	err = s.client.Call(context.Background(), "Echo", map[string]any{"text": "a", "extra": 1}, nil)
	if CodeOf(err) != CodeInvalidArgument || !strings.Contains(err.Error(), "extra") {
		t.Errorf("unknown field: %v", err)
	}
	err = s.client.Call(context.Background(), "Echo", map[string]any{"text": 5}, nil)
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("wrong type: %v", err)
	}
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "still fine"}, &resp); err != nil || resp.Text != "still fine" {
		t.Fatalf("session broken after call errors: %v", err)
	}
}

type panickyReader struct{ n int }

func (p *panickyReader) Read(b []byte) (int, error) {
	if p.n > 0 {
		p.n--
		return copy(b, "some data"), nil
	}
	var m map[string]int
	m["boom"]++ // nil map write: a real runtime panic
	return 0, nil
}

func TestHandlerPanic(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Panic", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
		var p *EchoResp
		return &EchoResp{Text: p.Text}, nil // nil dereference
	})
	mustRegister(t, srv, "PanicInBody", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, io.NopCloser(&panickyReader{n: 3}), nil
	})
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))

	err := s.client.Call(context.Background(), "Panic", EchoReq{}, nil)
	if CodeOf(err) != CodeInternal || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking handler: %v", err)
	}
	body, err := s.client.CallStream(context.Background(), "PanicInBody", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(body)
	if CodeOf(err) != CodeInternal || string(data) != strings.Repeat("some data", 3) {
		t.Fatalf("panicking body: %q, %v", data, err)
	}
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "alive"}, &resp); err != nil || resp.Text != "alive" {
		t.Fatalf("server not sane after panics: %v", err)
	}
}

func TestRegisterRejectsBadShapes(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	bad := map[string]any{
		"not a func":           42,
		"nil func":             (func(context.Context, EchoReq) (*EchoResp, error))(nil),
		"no context":           func(req EchoReq) (*EchoResp, error) { return nil, nil },
		"request not a struct": func(ctx context.Context, s string) (*EchoResp, error) { return nil, nil },
		"no error result":      func(ctx context.Context, req EchoReq) *EchoResp { return nil },
		"body not ReadCloser":  func(ctx context.Context, req EchoReq) (*EchoResp, io.Reader, error) { return nil, nil, nil },
		"variadic":             func(ctx context.Context, req ...EchoReq) (*EchoResp, error) { return nil, nil },
	}
	for name, fn := range bad {
		if err := srv.Register("M", fn); err == nil {
			t.Errorf("%s: Register accepted it", name)
		}
	}
	mustRegister(t, srv, "Echo", echo)
	if err := srv.Register("Echo", echo); err == nil {
		t.Error("duplicate Register accepted")
	}
	for _, name := range []string{"", "1abc", "has space", strings.Repeat("a", 65), "-x"} {
		if err := srv.Register(name, echo); err == nil {
			t.Errorf("bad name %q accepted", name)
		}
	}
	if got := srv.Methods(); len(got) != 1 || got[0] != "Echo" {
		t.Errorf("Methods = %v", got)
	}
}

// Closing a body early cancels the call on the server: its body is closed,
// and the session stays usable.
func TestCloseBodyEarly(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		srv := newTestServer(t, testConfig(t))
		tracked := make(chan *trackedBody, 1)
		mustRegister(t, srv, "Endless", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
			b := newTracked(newPattern(1<<62, 3))
			tracked <- b
			return &EchoResp{}, b, nil
		})
		mustRegister(t, srv, "Echo", echo)
		s := startSession(t, tr, srv, testConfig(t))
		body, err := s.client.CallStream(context.Background(), "Endless", EchoReq{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, body, 5<<20+3); err != nil {
			t.Fatal(err)
		}
		if err := body.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		waitClosed(t, (<-tracked).closed, "the server's body")
		if _, err := body.Read(make([]byte, 1)); !errors.Is(err, ErrBodyClosed) {
			t.Errorf("Read after Close = %v, want ErrBodyClosed", err)
		}
		var resp EchoResp
		if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "next"}, &resp); err != nil || resp.Text != "next" {
			t.Fatalf("call after an early close: %v", err)
		}
	})
}

// Canceling the context while the server has nothing to send (zfs busy)
// unblocks the server's body and leaves the session usable.
func TestCancelWhileBodyStalls(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	stalled := &blockingReader{closed: make(chan struct{})}
	mustRegister(t, srv, "Stall", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, &stallBody{stalled}, nil
	})
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	body, err := s.client.CallStream(ctx, "Stall", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(body)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadAll = %v, want the context's deadline", err)
	}
	waitClosed(t, stalled.closed, "the stalled body")
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "ok"}, &resp); err != nil {
		t.Fatalf("call after cancel: %v", err)
	}
}

type stallBody struct{ *blockingReader }

func (s *stallBody) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// Canceling before the response arrived cancels the handler's context.
func TestCancelBeforeResponse(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	handlerSaw := make(chan error, 1)
	mustRegister(t, srv, "Slow", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
		<-ctx.Done()
		handlerSaw <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[0], srv, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.client.Call(ctx, "Slow", EchoReq{}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want deadline exceeded", err)
	}
	select {
	case cause := <-handlerSaw:
		if !strings.Contains(cause.Error(), "canceled by the client") {
			t.Errorf("handler's cancel cause = %v", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler's context was not canceled")
	}
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "ok"}, &resp); err != nil || resp.Text != "ok" {
		t.Fatalf("call after cancel: %v", err)
	}
}

// A body that stalls longer than the ping timeout is fine as long as the
// server answers pings. The timeout is a second, not less: on a loaded
// two-core machine (the race detector, a fuzzer next to it) an answer
// once took more than 100 ms, and the test failed though the peer lived.
func TestSlowBodyWithLivePeer(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Slow", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, io.NopCloser(&slowReader{chunks: 2, pause: 1500 * time.Millisecond}), nil
	})
	ccfg := testConfig(t)
	ccfg.PingInterval = 50 * time.Millisecond
	ccfg.PingTimeout = time.Second
	s := startSession(t, transports[1], srv, ccfg)
	body, err := s.client.CallStream(context.Background(), "Slow", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(body)
	if err != nil || string(data) != "chunkchunk" {
		t.Fatalf("slow body: %q, %v", data, err)
	}
}

type slowReader struct {
	chunks int
	pause  time.Duration
}

func (s *slowReader) Read(b []byte) (int, error) {
	if s.chunks == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	s.chunks--
	return copy(b, "chunk"), nil
}

func TestOrderlyCloseByClient(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Echo", echo)
		s := startSession(t, tr, srv, testConfig(t))
		if err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.client.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.client.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := s.waitServer(t, 5*time.Second); err != nil {
			t.Fatalf("server after an orderly close returned %v, want nil", err)
		}
		if err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Call after Close = %v, want ErrClosed", err)
		}
	})
}

func TestOrderlyCloseByServer(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))
	if err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	s.cancel() // the server shuts down
	if err := s.waitServer(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("server returned %v, want context.Canceled", err)
	}
	err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil)
	var pc *PeerClosedError
	if !errors.As(err, &pc) || !strings.Contains(pc.Reason, "shutting down") {
		t.Fatalf("Call after the server closed = %v, want a PeerClosedError naming the reason", err)
	}
	if err := s.client.Close(); err != nil {
		t.Fatalf("Close after the server closed: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	scfg := testConfig(t)
	scfg.IdleTimeout = 100 * time.Millisecond
	srv := newTestServer(t, scfg)
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))
	if err := s.waitServer(t, 5*time.Second); !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("server returned %v, want ErrIdleTimeout", err)
	}
	err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil)
	if err == nil || !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("Call after the idle timeout = %v, want an error naming it", err)
	}
}

// A long call does not count as idle time.
func TestLongCallIsNotIdle(t *testing.T) {
	scfg := testConfig(t)
	scfg.IdleTimeout = 150 * time.Millisecond
	srv := newTestServer(t, scfg)
	mustRegister(t, srv, "Slow", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, io.NopCloser(&slowReader{chunks: 3, pause: 100 * time.Millisecond}), nil
	})
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))
	body, err := s.client.CallStream(context.Background(), "Slow", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); err != nil {
		t.Fatal(err)
	}
	if err := s.client.Call(context.Background(), "Echo", EchoReq{}, nil); err != nil {
		t.Fatalf("call right after a call longer than the idle timeout: %v", err)
	}
}

// The server vanishing mid-body makes Read fail with ErrPeerGone, not EOF.
func TestServerVanishesMidBody(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		cs, ss := tr.pair(t)
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Stream", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
			return &EchoResp{}, io.NopCloser(io.MultiReader(newPattern(1<<20, 1), &closeThen{rwc: ss})), nil
		})
		go func() { _ = srv.ServeConn(context.Background(), ss) }()
		cl, err := NewClient(context.Background(), cs, testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		body, err := cl.CallStream(context.Background(), "Stream", EchoReq{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, body)
		if !errors.Is(err, ErrPeerGone) {
			t.Fatalf("after %d bytes: %v, want ErrPeerGone", n, err)
		}
		if !strings.Contains(err.Error(), "interrupted after") {
			t.Errorf("error %q does not say where the body broke", err)
		}
	})
}

// closeThen closes the server's stream when read, simulating its death.
type closeThen struct{ rwc io.Closer }

func (c *closeThen) Read([]byte) (int, error) {
	_ = c.rwc.Close()
	time.Sleep(10 * time.Millisecond)
	return 0, io.ErrUnexpectedEOF
}

// The client vanishing mid-body ends the server loop with ErrPeerGone and
// closes the body (a zfs send would be killed).
func TestClientVanishesMidBody(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr transport) {
		cs, ss := tr.pair(t)
		srv := newTestServer(t, testConfig(t))
		tracked := newTracked(newPattern(1<<62, 1))
		mustRegister(t, srv, "Endless", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
			return &EchoResp{}, tracked, nil
		})
		serverErr := make(chan error, 1)
		go func() { serverErr <- srv.ServeConn(context.Background(), ss) }()
		cl, err := NewClient(context.Background(), cs, testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		body, err := cl.CallStream(context.Background(), "Endless", EchoReq{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, body, 1<<20); err != nil {
			t.Fatal(err)
		}
		_ = cs.Close() // vanish without CLOSE
		select {
		case err := <-serverErr:
			if !errors.Is(err, ErrPeerGone) {
				t.Fatalf("server returned %v, want ErrPeerGone", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server did not notice the client vanished")
		}
		waitClosed(t, tracked.closed, "the body")
	})
}

func TestClientIdleAtEOF(t *testing.T) {
	cs, ss := osPipePair(t)
	srv := newTestServer(t, testConfig(t))
	serverErr := make(chan error, 1)
	go func() { serverErr <- srv.ServeConn(context.Background(), ss) }()
	cl, err := NewClient(context.Background(), cs, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = cl
	_ = cs.Close()
	select {
	case err := <-serverErr:
		if !errors.Is(err, ErrPeerGone) {
			t.Fatalf("server returned %v, want ErrPeerGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not return at EOF")
	}
}

// One call in flight: a second call waits until the first body is done.
func TestCallsAreSerialized(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	mustRegister(t, srv, "Stream", streamHandler)
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[0], srv, testConfig(t))
	body, err := s.client.CallStream(context.Background(), "Stream", StreamReq{Size: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.client.Call(ctx, "Echo", EchoReq{}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second call while a body is open = %v, want it to wait", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.client.Call(context.Background(), "Echo", EchoReq{}, nil) }()
	if _, err := io.Copy(io.Discard, body); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting call: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{MaxFramePayload: 100},
		{MaxFramePayload: 32 << 20},
		{MaxHeaderBytes: 10},
		{IdleTimeout: -1},
		{SoftwareVersion: "a\nb"},
		{SoftwareVersion: strings.Repeat("v", 200)},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("Validate(%+v) accepted it", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if _, err := NewServer(Config{MaxFramePayload: 1}); err == nil {
		t.Error("NewServer accepted a bad config")
	}
}
