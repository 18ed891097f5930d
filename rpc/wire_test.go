package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/internal/printable/printabletest"
)

// rawFrame encodes one frame by hand, for adversarial inputs.
func rawFrame(t FrameType, f Flags, payload []byte) []byte {
	b := make([]byte, FrameHeaderLen, FrameHeaderLen+len(payload))
	putFrameHeader(b, FrameHeader{Type: t, Flags: f, Length: uint32(len(payload))})
	return append(b, payload...)
}

func rawHello(version uint16) []byte {
	return rawFrame(FrameHello, 0, hello{Version: version, MaxFramePayload: 1 << 20, MaxHeaderBytes: 1 << 20, Software: "raw"}.appendTo(nil))
}

func rawRequest(method, params string) []byte {
	return rawFrame(FrameHeaders, FlagEndHeaders, []byte(`{"method":"`+method+`","params":`+params+`}`))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// scripted is a stream whose reads come from a script and whose writes are
// kept; after the script it reports EOF.
type scripted struct {
	r   io.Reader
	out bytes.Buffer
}

func (s *scripted) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *scripted) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *scripted) Close() error                { return nil }

// TestFrameHeaderWire pins the header layout byte by byte.
func TestFrameHeaderWire(t *testing.T) {
	tests := []struct {
		h    FrameHeader
		wire string
	}{
		{FrameHeader{FrameHello, 0, 19}, "\x01\x00\x00\x00\x00\x00\x00\x13"},
		{FrameHeader{FrameHeaders, FlagEndHeaders | FlagBody, 0x0102}, "\x02\x03\x00\x00\x00\x00\x01\x02"},
		{FrameHeader{FrameData, 0, 1 << 20}, "\x03\x00\x00\x00\x00\x10\x00\x00"},
		{FrameHeader{FramePong, 0, 8}, "\x0a\x00\x00\x00\x00\x00\x00\x08"},
	}
	for _, tt := range tests {
		var b [FrameHeaderLen]byte
		putFrameHeader(b[:], tt.h)
		if string(b[:]) != tt.wire {
			t.Errorf("%v encodes as %q, want %q", tt.h, b, tt.wire)
		}
		got, err := parseFrameHeader([]byte(tt.wire), 1<<20)
		if err != nil || got != tt.h {
			t.Errorf("parse(%q) = %v, %v; want %v", tt.wire, got, err, tt.h)
		}
	}
	wantHello := "ZREP\x00\x01\x00\x00\x00\x10\x00\x00\x00\x10\x00\x00raw"
	if got := string(hello{Version: 1, MaxFramePayload: 1 << 20, MaxHeaderBytes: 1 << 20, Software: "raw"}.appendTo(nil)); got != wantHello {
		t.Errorf("HELLO payload = %q, want %q", got, wantHello)
	}
}

// TestMalformedInput feeds hand-built bad byte sequences to a server and
// checks that each ends the session with the error that names the problem.
func TestMalformedInput(t *testing.T) {
	hello := rawHello(ProtocolVersion)
	big := bytes.Repeat([]byte("x"), 600<<10)
	tests := []struct {
		name  string
		input []byte
		want  string // substring of the error
		is    error  // optional sentinel
	}{
		{"EOF before HELLO", nil, "waiting for the peer's HELLO", ErrPeerGone},
		{"shell banner instead of HELLO", []byte("Welcome to Debian GNU/Linux\n"), `sent "Welcome to Debian GNU/Linux\n"`, ErrHandshake},
		{"HELLO with a bad magic", rawFrame(FrameHello, 0, append([]byte("ZRAP"), make([]byte, 12)...)), "magic", ErrHandshake},
		{"HELLO of another version", rawHello(1), "speaks version 1", ErrHandshake},
		{"HELLO with unknown flags", helloFlags(2), "unknown flags 0x0002", ErrHandshake},
		{"HELLO with an absurd frame limit", rawFrame(FrameHello, 0, helloWithLimits(1, 1<<20)), "frame payload limit of 1", nil},
		{"unknown frame type", cat(hello, rawFrame(0x7f, 0, nil)), "unknown frame type 0x7f", nil},
		{"length over the bound", cat(hello, []byte{byte(FrameData), 0, 0, 0, 0x00, 0x20, 0x00, 0x00}), "DATA frame payload of 2097152 bytes exceeds the limit of 1048576", nil},
		{"length near 4 GiB", cat(hello, []byte{byte(FrameHeaders), 1, 0, 0, 0xff, 0xff, 0xff, 0xff}), "exceeds the limit", nil},
		{"header JSON too large", cat(hello, rawFrame(FrameHeaders, 0, big), rawFrame(FrameHeaders, 0, big)), "message header exceeds the limit of 1048576 bytes", nil},
		{"header that is not JSON", cat(hello, rawFrame(FrameHeaders, FlagEndHeaders, []byte("not json at all"))), "request header is not a valid JSON request", nil},
		{"header with unknown fields", cat(hello, rawFrame(FrameHeaders, FlagEndHeaders, []byte(`{"method":"Echo","sneaky":1}`))), "not a valid JSON request", nil},
		{"data frame before any header", cat(hello, rawFrame(FrameData, 0, []byte("hello"))), "DATA frame outside a message body", nil},
		{"END outside a body", cat(hello, rawFrame(FrameEnd, 0, nil)), "END frame outside a message body", nil},
		{"RESET outside a body", cat(hello, rawFrame(FrameReset, 0, []byte(`{"code":"internal","message":"x"}`))), "RESET frame outside a message body", nil},
		{"DATA inside a header block", cat(hello, rawFrame(FrameHeaders, 0, []byte(`{"meth`)), rawFrame(FrameData, 0, []byte("x"))), "DATA frame inside a header block", nil},
		{"request with a body", cat(hello, rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"method":"Echo"}`))), "has a body", nil},
		{"EOF inside a frame header", cat(hello, []byte{byte(FrameHeaders), 1, 0}), "truncated frame: connection ended after 3 of 8 header bytes", io.ErrUnexpectedEOF},
		{"EOF inside a payload", cat(hello, []byte{byte(FrameHeaders), 1, 0, 0, 0, 0, 0, 100}, []byte(`{"method"`)), "truncated HEADERS frame: connection ended after 9 of 100 payload bytes", io.ErrUnexpectedEOF},
		{"non-zero reserved bytes", cat(hello, []byte{byte(FrameCancel), 0, 0, 1, 0, 0, 0, 0}), "non-zero reserved bytes", nil},
		{"undefined flag", cat(hello, []byte{byte(FrameData), 0x80, 0, 0, 0, 0, 0, 1, 'x'}), "undefined flags 0x80", nil},
		{"BODY without END_HEADERS", cat(hello, rawFrame(FrameHeaders, FlagBody, []byte("{}"))), "BODY flag without END_HEADERS", nil},
		{"PING of the wrong size", cat(hello, rawFrame(FramePing, 0, []byte("1234"))), "shorter than the minimum", nil},
		{"second HELLO", cat(hello, hello), "HELLO frame after the handshake", nil},
		{"empty DATA frame", cat(hello, rawFrame(FrameData, 0, nil)), "DATA frame payload of 0 bytes is shorter", nil},
		{"CLOSE reason too long", cat(hello, rawFrame(FrameClose, 0, make([]byte, 2000))), "CLOSE frame payload of 2000 bytes exceeds", nil},
		{"a second request while one is running", cat(hello, rawRequest("Block", "{}"), rawRequest("Echo", "{}")), "while no message is expected", nil},
		{"EOF between calls", cat(hello, rawRequest("Echo", `{"text":"hi"}`)), "peer closed the connection", ErrPeerGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, testConfig(t))
			mustRegister(t, srv, "Echo", echo)
			mustRegister(t, srv, "Block", func(ctx context.Context, req EchoReq) (*EchoResp, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			})
			done := make(chan error, 1)
			go func() { done <- srv.ServeConn(context.Background(), &scripted{r: bytes.NewReader(tt.input)}) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("server did not return")
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func helloWithLimits(frame, header uint32) []byte {
	return hello{Version: ProtocolVersion, MaxFramePayload: frame, MaxHeaderBytes: header, Software: "raw"}.appendTo(nil)
}

// fakeServer runs script against the server end of an os.Pipe pair after
// reading the client's HELLO.
func fakeServer(t *testing.T, script func(srv io.ReadWriteCloser)) io.ReadWriteCloser {
	t.Helper()
	cs, ss := osPipePair(t)
	go func() {
		var h [FrameHeaderLen]byte
		if _, err := io.ReadFull(ss, h[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, ss, int64(h[7])); err != nil {
			return
		}
		script(ss)
	}()
	t.Cleanup(func() { _ = ss.Close() })
	return cs
}

func TestClientHandshakeErrors(t *testing.T) {
	t.Run("version mismatch", func(t *testing.T) {
		cs := fakeServer(t, func(srv io.ReadWriteCloser) { _, _ = srv.Write(rawHello(7)) })
		_, err := NewClient(context.Background(), cs, testConfig(t))
		var vm *VersionMismatchError
		if !errors.As(err, &vm) || vm.Remote != 7 || vm.Local != ProtocolVersion || !errors.Is(err, ErrHandshake) {
			t.Fatalf("NewClient = %v, want a version mismatch naming version 7", err)
		}
	})
	t.Run("not zrep", func(t *testing.T) {
		cs := fakeServer(t, func(srv io.ReadWriteCloser) { _, _ = srv.Write([]byte("bash: zrep-stdinserver: command not found\n")) })
		_, err := NewClient(context.Background(), cs, testConfig(t))
		if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "command not found") {
			t.Fatalf("NewClient = %v, want the peer's words in a handshake error", err)
		}
	})
	t.Run("silent peer", func(t *testing.T) {
		cs := fakeServer(t, func(srv io.ReadWriteCloser) { time.Sleep(time.Second) })
		cfg := testConfig(t)
		cfg.HandshakeTimeout = 50 * time.Millisecond
		_, err := NewClient(context.Background(), cs, cfg)
		if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "no HELLO") {
			t.Fatalf("NewClient = %v, want a handshake timeout", err)
		}
	})
}

// With FirstByteTimeout, the handshake clock starts at the peer's first
// byte: a transport slow to come up is not held against the HELLO, a peer
// that sends nothing fails after FirstByteTimeout, and one that stalls
// within its HELLO fails HandshakeTimeout after its first byte.
func TestHandshakeFirstByte(t *testing.T) {
	hello := rawHello(ProtocolVersion)
	tests := []struct {
		name        string
		first, hand time.Duration
		peer        func(srv io.ReadWriteCloser)
		want        string // "" for success
	}{
		{"slow transport, then a HELLO", time.Minute, 20 * time.Millisecond, func(srv io.ReadWriteCloser) {
			time.Sleep(200 * time.Millisecond) // ten handshake timeouts
			_, _ = srv.Write(hello)
			_, _ = io.Copy(io.Discard, srv)
		}, ""},
		{"nothing at all", 50 * time.Millisecond, time.Minute, func(srv io.ReadWriteCloser) {
			_, _ = io.Copy(io.Discard, srv)
		}, "nothing from the peer within 50ms"},
		{"a HELLO cut short", time.Minute, 50 * time.Millisecond, func(srv io.ReadWriteCloser) {
			_, _ = srv.Write(hello[:3])
			_, _ = io.Copy(io.Discard, srv)
		}, "no HELLO from the peer within 50ms of its first byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fakeServer(t, tt.peer)
			cfg := testConfig(t)
			cfg.FirstByteTimeout, cfg.HandshakeTimeout = tt.first, tt.hand
			cl, err := NewClient(context.Background(), cs, cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("NewClient = %v, want success", err)
				}
				cl.c.fail(ErrClosed)
				return
			}
			if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewClient = %v, want a handshake error saying %q", err, tt.want)
			}
		})
	}
}

func TestServerHandshakeTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.HandshakeTimeout = 50 * time.Millisecond
	srv := newTestServer(t, cfg)
	_, ss := osPipePair(t)
	err := srv.ServeConn(context.Background(), ss)
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "within 50ms") {
		t.Fatalf("ServeConn = %v, want a handshake timeout", err)
	}
}

// A server that answers nothing, not even PINGs, is declared dead after
// PingTimeout: the call fails instead of hanging.
func TestUnresponsiveServer(t *testing.T) {
	cs := fakeServer(t, func(srv io.ReadWriteCloser) {
		_, _ = srv.Write(rawHello(ProtocolVersion))
		time.Sleep(10 * time.Second) // reads nothing, writes nothing
	})
	cfg := testConfig(t)
	cfg.PingInterval = 20 * time.Millisecond
	cfg.PingTimeout = 100 * time.Millisecond
	cl, err := NewClient(context.Background(), cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = cl.Call(context.Background(), "Echo", EchoReq{}, nil)
	if !errors.Is(err, ErrPeerUnresponsive) {
		t.Fatalf("Call = %v, want ErrPeerUnresponsive", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to notice", d)
	}
	if !errors.Is(cl.Err(), ErrPeerUnresponsive) {
		t.Errorf("session error = %v", cl.Err())
	}
}

// A server that answers with garbage after the handshake is a protocol error
// on the client, not a hang or a panic.
func TestClientRejectsBadResponses(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
		want  string
	}{
		{"response that is not JSON", rawFrame(FrameHeaders, FlagEndHeaders, []byte("nope")), "not a valid JSON response"},
		{"response with neither result nor error", rawFrame(FrameHeaders, FlagEndHeaders, []byte("{}")), "not a valid JSON response"},
		{"DATA without a header", rawFrame(FrameData, 0, []byte("x")), "DATA frame outside a message body"},
		{"bad RESET payload", cat(rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"result":{}}`)), rawFrame(FrameReset, 0, []byte("zz"))), "RESET payload is not a JSON error object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := callAnsweredWith(t, tt.reply)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// callAnsweredWith calls Echo on a server that speaks by hand: it sends
// HELLO, reads the request and answers with reply. It returns the call's
// error, reading the body if there is one.
func callAnsweredWith(t *testing.T, reply []byte) error {
	t.Helper()
	cs := fakeServer(t, func(srv io.ReadWriteCloser) {
		_, _ = srv.Write(rawHello(ProtocolVersion))
		buf := make([]byte, 4096)
		_, _ = srv.Read(buf) // the request
		_, _ = srv.Write(reply)
		time.Sleep(2 * time.Second)
	})
	cl, err := NewClient(context.Background(), cs, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	body, err := cl.CallStream(context.Background(), "Echo", EchoReq{}, nil)
	if err == nil && body != nil {
		_, err = io.ReadAll(body)
	}
	return err
}

// helloFlags is a HELLO frame of this version with the given flags.
func helloFlags(flags uint16) []byte {
	return rawFrame(FrameHello, 0, hello{Version: ProtocolVersion, Flags: flags, MaxFramePayload: 1 << 20, MaxHeaderBytes: 1 << 20, Software: "raw"}.appendTo(nil))
}

// TestClientCleansPeerErrors: a hostile server chooses the text of its
// errors, and the client prints them. Whether the error comes in a
// response or in a RESET that aborts a body, or is a CLOSE's reason, it
// reaches the caller without control characters (terminal escape
// sequences, a carriage return that rewrites a line, C1 controls), and
// bounded.
func TestClientCleansPeerErrors(t *testing.T) {
	hostile := `\u001b]52;c;b3duZWQ=\u0007\u001b[2J\rOK\ndone\u009b1A\u007f` + strings.Repeat("x", 3*maxPeerMessage)
	errJSON := `{"code":"internal\u001b[31m","message":"` + hostile + `"}`
	tests := []struct {
		name  string
		reply []byte
	}{
		{"error response", rawFrame(FrameHeaders, FlagEndHeaders, []byte(`{"error":`+errJSON+`}`))},
		{"RESET of a body", cat(rawFrame(FrameHeaders, FlagEndHeaders|FlagBody, []byte(`{"result":{}}`)), rawFrame(FrameReset, 0, []byte(errJSON)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := callAnsweredWith(t, tt.reply)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want the peer's *Error", err)
			}
			assertPrintable(t, err.Error(), maxPeerMessage+100)
			if !strings.Contains(re.Message, "OK done") {
				t.Errorf("the message lost its text: %.80q", re.Message)
			}
		})
	}
	t.Run("CLOSE reason", func(t *testing.T) {
		cs := fakeServer(t, func(srv io.ReadWriteCloser) {
			_, _ = srv.Write(rawHello(ProtocolVersion))
			_, _ = srv.Write(rawFrame(FrameClose, 0, []byte("bye\x1b[2J\r\u009b"+strings.Repeat("y\x9b", 500))))
			time.Sleep(2 * time.Second)
		})
		cl, err := NewClient(context.Background(), cs, testConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, err = cl.CallStream(context.Background(), "Echo", EchoReq{}, nil)
		var pc *PeerClosedError
		if !errors.As(err, &pc) {
			t.Fatalf("got %v, want a PeerClosedError", err)
		}
		// 500 bytes that are not UTF-8, each after a letter, become 1,500 of
		// U+FFFD: the reason is cut again after cleaning.
		assertPrintable(t, pc.Reason, maxCloseLen+3)
		assertPrintable(t, err.Error(), maxCloseLen+200)
	})
}

// assertPrintable fails unless s is printable as it is (printabletest.String)
// and at most limit bytes.
func assertPrintable(t *testing.T, s string, limit int) {
	t.Helper()
	printabletest.String(t, s)
	if len(s) > limit {
		t.Errorf("%d bytes, want at most %d", len(s), limit)
	}
}
