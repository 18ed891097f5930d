package rpc

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"go.uber.org/zap"
)

func fuzzConfig() Config {
	return Config{
		Logger:           zap.NewNop(),
		MaxFramePayload:  MinFramePayload,
		MaxHeaderBytes:   64 << 10,
		HandshakeTimeout: time.Second,
		IdleTimeout:      time.Second,
		PingInterval:     100 * time.Millisecond,
		PingTimeout:      500 * time.Millisecond,
		CloseTimeout:     500 * time.Millisecond,
	}
}

// FuzzServeConn feeds arbitrary bytes to a server as the client's stream.
// The server must return (no hang) and never panic, whatever it reads.
func FuzzServeConn(f *testing.F) {
	h := rawHello(ProtocolVersion)
	f.Add([]byte{})
	f.Add(h)
	f.Add(cat(h, rawRequest("Echo", `{"text":"hi"}`)))
	f.Add(cat(h, rawRequest("Echo", `{"text":"hi"}`), rawFrame(FrameClose, 0, []byte("bye"))))
	f.Add(cat(h, rawRequest("Stream", `{"size":100000,"seed":3}`), rawFrame(FrameCancel, 0, nil)))
	f.Add(cat(h, rawFrame(FramePing, 0, []byte("12345678")), rawRequest("Nope", `{}`)))
	f.Add(cat(h, rawFrame(FrameHeaders, 0, []byte(`{"method":`)), rawFrame(FrameHeaders, FlagEndHeaders, []byte(`"Echo"}`))))
	f.Add(cat(h, rawFrame(FrameData, 0, []byte("x"))))
	f.Add(cat(h, []byte{byte(FrameHeaders), 1, 0, 0, 0xff, 0xff, 0xff, 0xff}))
	f.Add([]byte("Welcome to Debian\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		srv, err := NewServer(fuzzConfig())
		if err != nil {
			t.Fatal(err)
		}
		_ = srv.Register("Echo", echo)
		_ = srv.Register("Stream", func(ctx context.Context, req StreamReq) (*EchoResp, io.ReadCloser, error) {
			return &EchoResp{}, io.NopCloser(newPattern(min(req.Size, 1<<16), req.Seed)), nil
		})
		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), &scripted{r: bytes.NewReader(data)}) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ServeConn hung on input %q", data)
		}
	})
}

// FuzzClient feeds arbitrary bytes to a client as the server's stream.
func FuzzClient(f *testing.F) {
	h := rawHello(ProtocolVersion)
	f.Add(h)
	f.Add(cat(h, rawFrame(FrameHeaders, FlagEndHeaders, []byte(`{"result":{"text":"x"}}`))))
	f.Add(cat(h, rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"result":{}}`)), rawFrame(FrameData, 0, []byte("abc")), rawFrame(FrameEnd, 0, nil)))
	f.Add(cat(h, rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"result":{}}`)), rawFrame(FrameReset, 0, []byte(`{"code":"internal","message":"x"}`))))
	f.Add(cat(h, rawFrame(FrameHeaders, FlagEndHeaders, []byte(`{"error":{"code":"not_found","message":"x"}}`))))
	f.Add(cat(h, rawFrame(FrameClose, 0, []byte("idle"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			cl, err := NewClient(context.Background(), &scripted{r: bytes.NewReader(data)}, fuzzConfig())
			if err != nil {
				return
			}
			defer cl.Close()
			body, err := cl.CallStream(context.Background(), "Echo", EchoReq{}, &EchoResp{})
			if err == nil && body != nil {
				_, _ = io.Copy(io.Discard, body)
				_ = body.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("client hung on input %q", data)
		}
	})
}

// FuzzParseFrameHeader checks that an accepted header is within every bound.
func FuzzParseFrameHeader(f *testing.F) {
	f.Add([]byte("\x03\x00\x00\x00\x00\x10\x00\x00"))
	f.Add([]byte("\x02\x03\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < FrameHeaderLen {
			return
		}
		const limit = 1 << 20
		h, err := parseFrameHeader(b[:FrameHeaderLen], limit)
		if err != nil {
			return
		}
		if h.Length > limit || int(h.Type) >= len(frameRules) || h.Length > frameRules[h.Type].maxLen && frameRules[h.Type].maxLen != limitFromConfig {
			t.Fatalf("accepted %v beyond its bounds", h)
		}
	})
}
