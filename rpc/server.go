package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"
)

// Server dispatches calls to handlers registered by name. Register all
// handlers before serving; ServeConn may then run for many sessions at once.
type Server struct {
	cfg      Config
	mu       sync.RWMutex
	handlers map[string]*handler
}

// handler is one registered method, described by reflection once.
type handler struct {
	name      string
	fn        reflect.Value
	reqType   reflect.Type // the request struct type (pointer stripped)
	reqPtr    bool         // the handler takes *Req
	streaming bool         // the handler returns an io.ReadCloser body
}

// NewServer returns a Server with cfg (see Config for defaults).
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg.withDefaults(), handlers: map[string]*handler{}}, nil
}

var (
	ctxType        = reflect.TypeFor[context.Context]()
	errorType      = reflect.TypeFor[error]()
	readCloserType = reflect.TypeFor[io.ReadCloser]()
	methodNameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)
)

// Register adds a handler under name. fn must have one of the shapes
//
//	func(ctx context.Context, req Req) (Resp, error)
//	func(ctx context.Context, req Req) (Resp, io.ReadCloser, error)
//
// where Req is a struct or a pointer to one (decoded from the request's JSON
// params, unknown fields refused) and Resp is any JSON-encodable type. The
// second shape streams the returned body after the response; the server
// closes the body when done, and also when the call is canceled, possibly
// while a Read is blocked, so the body's Close must unblock its Read (as
// os.File and net.Conn do). A handler that panics fails its call with
// CodeInternal; the session goes on. Register returns an error for any
// other shape, a bad name or a duplicate.
func (s *Server) Register(name string, fn any) error {
	if !methodNameRE.MatchString(name) {
		return errors.Errorf("rpc: register %q: method names are 1-64 characters [A-Za-z0-9_.] starting with a letter", name)
	}
	h, err := describeHandler(name, fn)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[name]; dup {
		return errors.Errorf("rpc: register %q: a handler with that name exists", name)
	}
	s.handlers[name] = h
	return nil
}

func describeHandler(name string, fn any) (*handler, error) {
	bad := func(why string) error {
		return errors.Errorf("rpc: register %q: %s; want func(context.Context, Req) (Resp, error) or func(context.Context, Req) (Resp, io.ReadCloser, error)", name, why)
	}
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return nil, bad(fmt.Sprintf("%T is not a function", fn))
	}
	t := v.Type()
	if t.IsVariadic() || t.NumIn() != 2 || t.In(0) != ctxType {
		return nil, bad("the parameters must be (context.Context, Req)")
	}
	req := t.In(1)
	h := &handler{name: name, fn: v, reqType: req}
	if req.Kind() == reflect.Pointer {
		h.reqPtr, h.reqType = true, req.Elem()
	}
	if h.reqType.Kind() != reflect.Struct {
		return nil, bad(fmt.Sprintf("the request type %s is not a struct or a pointer to one", req))
	}
	switch {
	case t.NumOut() == 2 && t.Out(1) == errorType:
	case t.NumOut() == 3 && t.Out(1) == readCloserType && t.Out(2) == errorType:
		h.streaming = true
	default:
		return nil, bad("the results must be (Resp, error) or (Resp, io.ReadCloser, error)")
	}
	return h, nil
}

// Methods lists the registered method names, sorted.
func (s *Server) Methods() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.handlers))
	for n := range s.handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrPushRefused is returned by ServeConn when the peer asked to serve
// calls itself (a push) to an endpoint that only serves.
var ErrPushRefused = errors.New("the peer asked to push to an endpoint that only serves")

// ServeConn runs one session over rwc, as the side connected to, until it
// ends, and closes rwc. A peer that asks to serve calls itself (a push) is
// refused (ErrPushRefused); see Accept for endpoints that take pushes.
//
// It returns nil after an orderly close by the client; an error wrapping
// ErrPeerGone when the client vanished without closing; ErrIdleTimeout
// (wrapped) when no request came for IdleTimeout; a *ProtocolError or
// ErrHandshake-wrapped error for a peer that broke the protocol; and the
// context's error when ctx was canceled (the client is sent CLOSE first).
func (s *Server) ServeConn(ctx context.Context, rwc io.ReadWriteCloser) error {
	sess, err := Accept(ctx, rwc, s.cfg)
	if err != nil {
		return err
	}
	if !sess.Serves() {
		_ = sess.Refuse("this endpoint serves calls and takes no pushes")
		return ErrPushRefused
	}
	return s.Serve(ctx, sess)
}

// Serve runs a session in which this side serves calls until it ends, and
// closes its stream; it returns what ServeConn returns. A session in which
// this side makes the calls is an error.
func (s *Server) Serve(ctx context.Context, sess *Session) error {
	if err := sess.take(); err != nil {
		return err
	}
	c := sess.c
	defer c.fail(ErrClosed)
	if !sess.Serves() {
		return errors.New("rpc session: this side makes calls, it cannot serve them")
	}
	c.start()
	// On shutdown a call may be stuck writing to a client that does not
	// read; CloseTimeout after the context ends, the session ends anyway.
	stopShutdown := context.AfterFunc(ctx, func() {
		time.AfterFunc(c.cfg.CloseTimeout, func() {
			c.fail(errors.Wrap(context.Cause(ctx), "server shutting down"))
		})
	})
	defer stopShutdown()
	buf := make([]byte, c.dataBufferSize())
	for {
		ev, err := c.next(ctx, waitRequest)
		switch {
		case err == ErrIdleTimeout:
			reason := fmt.Sprintf("idle timeout: no request for %s", c.cfg.IdleTimeout)
			_ = c.closeSession(reason)
			return errors.Wrap(ErrIdleTimeout, reason)
		case err != nil && ctx.Err() != nil && c.failed() == nil:
			_ = c.closeSession("server shutting down")
			return ctx.Err()
		case err != nil:
			return err
		}
		switch ev.kind {
		case evClose:
			c.ackClose(ev)
			return nil
		case evMessage:
			if err := s.serveCall(ctx, c, ev, buf); err != nil {
				return err
			}
		default:
			err := protocolErrorf("unexpected %s between calls", ev.kind)
			c.fail(err)
			return err
		}
	}
}

// serveCall runs one call and writes its response. The returned error is a
// failure of the session; failures of the call go to the client.
func (s *Server) serveCall(ctx context.Context, c *conn, ev event, buf []byte) error {
	var req requestHeader
	if err := decodeStrict(ev.header, &req); err != nil || req.Method == "" {
		return protocolErrorf("request header is not a valid JSON request: %q", truncateUTF8(string(ev.header), 64))
	}
	if ev.hasBody {
		return protocolErrorf("request for %q has a body; no method of protocol %d takes one", truncateUTF8(req.Method, 64), ProtocolVersion)
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	c.cancelCall.Store(&cancel)
	if c.cancelPending.Load() { // the CANCEL overtook this call's start
		cancel(errCanceledByClient)
	}
	defer func() {
		c.cancelCall.Store(nil)
		cancel(context.Canceled)
	}()
	if err := c.failed(); err != nil { // the conn failed before cancelCall was set
		return err
	}

	start := time.Now()
	log := c.log.With(zap.String("method", truncateUTF8(req.Method, 64))) // the peer chose it
	resp, body, err := s.invoke(callCtx, log, req)
	var hdr []byte
	if err == nil {
		if hdr, err = c.encodeResult(resp); err != nil && body != nil {
			_ = body.Close()
		}
	}
	if err != nil {
		e := toCallError(err)
		if context.Cause(callCtx) == errCanceledByClient {
			e = Errorf(CodeCanceled, "%s: canceled by the client", req.Method)
		}
		log.Info("call failed", zap.String("code", string(e.Code)), zap.String("error", e.Message), zap.Duration("took", time.Since(start)))
		return c.writeError(e)
	}
	if body == nil {
		err = c.writeMessage(hdr, false)
	} else {
		err = stream(callCtx, c, hdr, body, buf)
	}
	if err == nil {
		log.Debug("call done", zap.Duration("took", time.Since(start)))
	}
	return err
}

// stream writes a response header announcing a body, then the body. The
// body is closed when the call ends, and as soon as it is canceled.
func stream(ctx context.Context, c *conn, hdr []byte, body io.ReadCloser, buf []byte) error {
	stop := context.AfterFunc(ctx, func() { _ = body.Close() })
	defer stop()
	defer body.Close()
	if err := c.writeMessage(hdr, true); err != nil {
		return err
	}
	return c.sendBody(ctx, body, buf)
}

// invoke decodes the params and runs the handler, recovering a panic.
func (s *Server) invoke(ctx context.Context, log *zap.Logger, req requestHeader) (resp any, body io.ReadCloser, err error) {
	s.mu.RLock()
	h := s.handlers[req.Method]
	s.mu.RUnlock()
	if h == nil {
		return nil, nil, Errorf(CodeUnimplemented, "unknown method %q", truncateUTF8(req.Method, 64))
	}
	arg := reflect.New(h.reqType)
	if len(req.Params) > 0 {
		if err := decodeStrict(req.Params, arg.Interface()); err != nil {
			return nil, nil, Errorf(CodeInvalidArgument, "%s: bad params: %v", h.name, err)
		}
	}
	if !h.reqPtr {
		arg = arg.Elem()
	}
	defer func() {
		if v := recover(); v != nil {
			log.Error("handler panicked", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			if body != nil {
				_ = body.Close()
			}
			resp, body, err = nil, nil, Errorf(CodeInternal, "%s: internal error (handler panicked: %v)", h.name, v)
		}
	}()
	out := h.fn.Call([]reflect.Value{reflect.ValueOf(ctx), arg})
	if e := out[len(out)-1]; !e.IsNil() {
		err = e.Interface().(error)
	}
	if h.streaming && !out[1].IsNil() {
		body = out[1].Interface().(io.ReadCloser)
	}
	if err != nil {
		if body != nil {
			_ = body.Close()
		}
		return nil, nil, err
	}
	return out[0].Interface(), body, nil
}

// encodeResult renders a successful response header.
func (c *conn) encodeResult(resp any) ([]byte, error) {
	result, err := json.Marshal(resp)
	if err != nil {
		return nil, Errorf(CodeInternal, "encoding the result: %v", err)
	}
	hdr, _ := json.Marshal(responseHeader{Result: result})
	if len(hdr) > c.peerHeader {
		return nil, Errorf(CodeInternal, "response header of %d bytes exceeds the client's limit of %d", len(hdr), c.peerHeader)
	}
	return hdr, nil
}

// writeError sends an error response.
func (c *conn) writeError(e *Error) error {
	hdr := encodeFitting(e, c.peerHeader, func(e Error) any { return responseHeader{Error: &e} })
	return c.writeMessage(hdr, false)
}
