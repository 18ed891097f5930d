package rpc

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestInvertedSession: the side that connects serves (a push) and the side
// connected to makes the calls, over both transports.
func TestInvertedSession(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			pusher, sink := tr.pair(t)
			srv := newTestServer(t, testConfig(t))
			mustRegister(t, srv, "Echo", echo)
			served := make(chan error, 1)
			var pushSession *Session
			ready := make(chan struct{})
			go func() {
				sess, err := Initiate(context.Background(), pusher, testConfig(t), true)
				if err != nil {
					served <- err
					close(ready)
					return
				}
				pushSession = sess
				close(ready)
				if !sess.Serves() {
					served <- errors.New("the initiator of a push does not serve")
					return
				}
				served <- srv.Serve(context.Background(), sess)
			}()
			sess, err := Accept(context.Background(), sink, testConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			if sess.Serves() {
				t.Fatal("the acceptor of a push serves")
			}
			cl, err := sess.Client()
			if err != nil {
				t.Fatal(err)
			}
			var resp EchoResp
			if err := cl.Call(context.Background(), "Echo", EchoReq{Text: "pushed"}, &resp); err != nil || resp.Text != "pushed" {
				t.Fatalf("Echo from the acceptor: %+v, %v", resp, err)
			}
			if err := cl.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-served; err != nil {
				t.Fatalf("the pusher's Serve: %v", err)
			}
			<-ready
			if r := pushSession.CloseReason(); r != "client done" {
				t.Errorf("CloseReason = %q", r)
			}
		})
	}
}

// TestServeConnRefusesPush: an endpoint that only serves tells a pusher so,
// and the pusher learns why.
func TestServeConnRefusesPush(t *testing.T) {
	pusher, endpoint := osPipePair(t)
	srv := newTestServer(t, testConfig(t))
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), endpoint) }()
	sess, err := Initiate(context.Background(), pusher, testConfig(t), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := newTestServer(t, testConfig(t)).Serve(context.Background(), sess); err != nil {
		t.Fatalf("Serve after a refusal: %v", err)
	}
	if r := sess.CloseReason(); !strings.Contains(r, "takes no pushes") {
		t.Errorf("the pusher was told %q", r)
	}
	if err := <-served; !errors.Is(err, ErrPushRefused) {
		t.Errorf("ServeConn = %v, want ErrPushRefused", err)
	}
}

// TestRefuseAClient: an acceptor that wants no calls (a sink-only key
// used to pull) refuses; the client's call reports the reason.
func TestRefuseAClient(t *testing.T) {
	cs, ss := osPipePair(t)
	refused := make(chan error, 1)
	go func() {
		sess, err := Accept(context.Background(), ss, testConfig(t))
		if err != nil {
			refused <- err
			return
		}
		refused <- sess.Refuse("this key may only push")
	}()
	cl, err := NewClient(context.Background(), cs, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	err = cl.Call(context.Background(), "Echo", EchoReq{Text: "x"}, nil)
	var pc *PeerClosedError
	if !errors.As(err, &pc) || pc.Reason != "this key may only push" {
		t.Fatalf("call = %v, want the refusal's reason", err)
	}
	select {
	case err := <-refused:
		if err != nil {
			t.Errorf("Refuse: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Refuse did not return")
	}
}

// TestSessionTakenOnce: a session runs one way only.
func TestSessionTakenOnce(t *testing.T) {
	cs, ss := osPipePair(t)
	go func() {
		sess, err := Accept(context.Background(), ss, testConfig(t))
		if err == nil {
			_ = newTestServer(t, testConfig(t)).Serve(context.Background(), sess)
		}
	}()
	sess, err := Initiate(context.Background(), cs, testConfig(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := newTestServer(t, testConfig(t)).Serve(context.Background(), sess); err == nil {
		t.Fatal("a calling side served")
	}
	if _, err := sess.Client(); err == nil {
		t.Fatal("a session was taken twice")
	}
}

// TestAcceptorMustEchoInversion: an acceptor that does not echo the
// initiator's flag breaks the protocol.
func TestAcceptorMustEchoInversion(t *testing.T) {
	cs := fakeServer(t, func(srv io.ReadWriteCloser) { _, _ = srv.Write(rawHello(ProtocolVersion)) })
	_, err := Initiate(context.Background(), cs, testConfig(t), true)
	if err == nil || !strings.Contains(err.Error(), "answered a HELLO with flags 0x0001 with flags 0x0000") {
		t.Fatalf("Initiate = %v", err)
	}
}
