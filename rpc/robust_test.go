package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// readFrame reads one frame from r (test helper, no limits).
func readFrame(t *testing.T, r io.Reader) (FrameHeader, []byte) {
	t.Helper()
	var hb [FrameHeaderLen]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		t.Fatalf("reading a frame header: %v", err)
	}
	h, err := parseFrameHeader(hb[:], MaxFramePayloadLimit)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("reading a %s payload: %v", h.Type, err)
	}
	return h, p
}

// A CANCEL sent right behind its request, before the server's call has
// started, still cancels that call.
func TestCancelRightBehindTheRequest(t *testing.T) {
	for i := 0; i < 20; i++ {
		srv := newTestServer(t, testConfig(t))
		mustRegister(t, srv, "Block", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		cs, ss := osPipePair(t)
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), ss) }()
		if _, err := cs.Write(cat(rawHello(ProtocolVersion), rawRequest("Block", "{}"), rawFrame(FrameCancel, 0, nil))); err != nil {
			t.Fatal(err)
		}
		if h, _ := readFrame(t, cs); h.Type != FrameHello {
			t.Fatalf("first frame %s", h.Type)
		}
		got := make(chan []byte, 1)
		go func() {
			_, p := readFrame(t, cs)
			got <- p
		}()
		select {
		case p := <-got:
			var rh responseHeader
			if err := json.Unmarshal(p, &rh); err != nil || rh.Error == nil || rh.Error.Code != CodeCanceled {
				t.Fatalf("response %s, want a canceled error", p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("trial %d: the CANCEL that overtook the call's start was lost", i)
		}
		_ = cs.Close()
		<-done
	}
}

// A client that stops reading cannot keep a server from shutting down: it
// ends CloseTimeout after its context, even while a write is blocked.
func TestShutdownWithAClientThatDoesNotRead(t *testing.T) {
	cfg := testConfig(t)
	cfg.CloseTimeout = 200 * time.Millisecond
	srv := newTestServer(t, cfg)
	mustRegister(t, srv, "Endless", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, newTracked(newPattern(1<<62, 1)), nil
	})
	cs, ss := osPipePair(t)
	defer cs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(ctx, ss) }()
	if _, err := cs.Write(cat(rawHello(ProtocolVersion), rawRequest("Endless", "{}"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server fills the pipe and blocks writing
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("ServeConn returned nil after a forced shutdown")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn still blocked on a client that does not read")
	}
}

// The idle timeout's CLOSE cannot hang on a client that does not read.
func TestIdleCloseWithAClientThatDoesNotRead(t *testing.T) {
	cfg := testConfig(t)
	cfg.IdleTimeout = 100 * time.Millisecond
	cfg.CloseTimeout = 200 * time.Millisecond
	srv := newTestServer(t, cfg)
	cs, ss := osPipePair(t)
	defer cs.Close()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), ss) }()
	// Enough PINGs to fill the pipe with PONGs nobody reads.
	pings := bytes.Repeat(rawFrame(FramePing, 0, []byte("12345678")), 20000)
	go func() { _, _ = cs.Write(cat(rawHello(ProtocolVersion), pings)) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrIdleTimeout) {
			t.Logf("ServeConn: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn hung closing an idle session whose client does not read")
	}
}

// Bytes arriving slowly inside one large frame prove the peer alive: a slow
// link is not a dead peer, even when the PONG is stuck behind the frame.
func TestSlowFrameIsNotADeadPeer(t *testing.T) {
	cs := fakeServer(t, func(srv io.ReadWriteCloser) {
		_, _ = srv.Write(rawHello(ProtocolVersion))
		buf := make([]byte, 4096)
		_, _ = srv.Read(buf) // the request
		_, _ = srv.Write(rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"result":{}}`)))
		payload := bytes.Repeat([]byte("x"), 64<<10)
		frame := rawFrame(FrameData, 0, payload)
		for i := 0; i < len(frame); i += 2048 { // 64 KiB over about 3.2 s
			end := min(i+2048, len(frame))
			if _, err := srv.Write(frame[i:end]); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = srv.Write(rawFrame(FrameEnd, 0, nil))
		time.Sleep(time.Second)
	})
	cfg := testConfig(t)
	cfg.PingInterval = 50 * time.Millisecond
	// The frame takes twice the timeout; its gaps of 100 ms stay far below
	// it, even on a loaded machine (300 ms was missed under -race and load).
	cfg.PingTimeout = 1500 * time.Millisecond
	cl, err := NewClient(context.Background(), cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	body, err := cl.CallStream(context.Background(), "Slow", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, body)
	if err != nil || n != 64<<10 {
		t.Fatalf("slow frame: %d bytes, %v", n, err)
	}
}

// An error whose text grows when JSON-escaped still fits its frame: the
// call fails, the session does not.
func TestHugeErrorMessagesFit(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	huge := strings.Repeat("\n\"\x01", 40<<10) // 120 KiB that escapes to about 400 KiB
	mustRegister(t, srv, "FailBody", func(ctx context.Context, req EchoReq) (*EchoResp, io.ReadCloser, error) {
		return &EchoResp{}, io.NopCloser(io.MultiReader(strings.NewReader("data"), &failingReader{err: errors.New(huge)})), nil
	})
	mustRegister(t, srv, "Fail", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
		return nil, errors.New(huge + huge + huge + huge + huge + huge + huge + huge + huge + huge)
	})
	mustRegister(t, srv, "Echo", echo)
	s := startSession(t, transports[1], srv, testConfig(t))
	body, err := s.client.CallStream(context.Background(), "FailBody", EchoReq{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); CodeOf(err) != CodeInternal {
		t.Fatalf("body error %v, want the producer's internal error", err)
	}
	if err := s.client.Call(context.Background(), "Fail", EchoReq{}, nil); CodeOf(err) != CodeInternal {
		t.Fatalf("call error %.200v, want an internal error", err)
	}
	var resp EchoResp
	if err := s.client.Call(context.Background(), "Echo", EchoReq{Text: "alive"}, &resp); err != nil || resp.Text != "alive" {
		t.Fatalf("session after huge errors: %v", err)
	}
}

// A call whose context is already canceled is not sent at all.
func TestCanceledCallIsNotSent(t *testing.T) {
	srv := newTestServer(t, testConfig(t))
	var calls atomic.Int32
	mustRegister(t, srv, "Count", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
		calls.Add(1)
		return &EchoResp{}, nil
	})
	s := startSession(t, transports[0], srv, testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 50; i++ {
		if err := s.client.Call(ctx, "Count", EchoReq{}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Call with a canceled context: %v", err)
		}
	}
	if err := s.client.Call(context.Background(), "Count", EchoReq{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the handler ran %d times, want 1", n)
	}
}
