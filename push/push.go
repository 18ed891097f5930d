// Package push offers local datasets to a sink. The pushing host connects
// to the backup server and asks for the session's roles to be inverted
// (PROTOCOL.md §2.1): it then serves the source endpoint — listing and zfs
// send of the datasets it offers, and nothing else — while the sink plans
// and receives exactly as pull does, and reports its run back with Report
// calls. The pusher never names a target and can do nothing on the sink
// but answer its questions.
package push

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/pkg/errors"
	"go.uber.org/zap"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/handlers"
	"github.com/zrep/zrep/internal/bwlimit"
	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/rpc"
)

// Options configure a push.
type Options struct {
	// Offer decides which local datasets the sink may see and receive.
	Offer handlers.Policy
	// ZFS is the local zfs the offered datasets are listed and sent from.
	ZFS handlers.ZFS
	// DryRun asks the sink to plan and report, and change nothing.
	DryRun bool
	// Raw asks the sink to receive encrypted datasets raw (zfs send -w):
	// it then never holds their keys.
	Raw bool
	// BandwidthLimit, when not nil, limits every stream sent to its rate.
	BandwidthLimit *bwlimit.Limiter
	// Reporter receives the sink's events, and progress counted here.
	Reporter replication.Reporter
	// RPC configures the session; its header limit is raised to the
	// largest allowed, for the sink's plan of many snapshots.
	RPC rpc.Config
	Log *zap.Logger
}

// ErrNoResult says the sink ended the session without reporting a summary.
var ErrNoResult = errors.New("the sink ended the session without a result")

// Push runs one push over conn, the connection to the sink's endpoint,
// until the sink ends the session, and returns the sink's summary. The
// error says why there is none (the session failed, the sink refused the
// push or failed as a whole).
func Push(ctx context.Context, conn io.ReadWriteCloser, o Options) (*replication.Summary, error) {
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	cfg := o.RPC
	cfg.MaxHeaderBytes = 64 << 20
	srv, err := rpc.NewServer(cfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	p := &pusher{o: o, rep: o.Reporter}
	if p.rep == nil {
		p.rep = discard{}
	}
	h := handlers.New(o.ZFS, o.Offer, log.Named("handlers"))
	methods := h.Methods()
	methods[api.MethodSend] = p.wrapSend(h.Send)
	methods[api.MethodPushOptions] = p.options
	methods[api.MethodReport] = p.report
	for name, fn := range methods {
		if err := srv.Register(name, fn); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	sess, err := rpc.Initiate(ctx, conn, cfg, true)
	if err != nil {
		return nil, errors.WithMessage(err, "connecting to the sink")
	}
	serveErr := srv.Serve(ctx, sess)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.summary != nil:
		return p.summary, nil
	case p.failure != "":
		return nil, errors.Errorf("the sink failed: %s", p.failure)
	case serveErr != nil:
		return nil, serveErr
	case sess.CloseReason() != "" && sess.CloseReason() != "client done":
		return nil, errors.Wrapf(ErrNoResult, "it said: %s", sess.CloseReason())
	}
	return nil, ErrNoResult
}

// pusher serves the sink's calls besides the endpoint's.
type pusher struct {
	o   Options
	rep replication.Reporter

	mu      sync.Mutex
	step    *replication.Event // the sink's last step_start: what is being sent
	summary *replication.Summary
	failure string // the sink's failure of the whole push
}

func (p *pusher) options(ctx context.Context, _ api.PushOptionsRequest) (*api.PushOptions, error) {
	return &api.PushOptions{DryRun: p.o.DryRun, Raw: p.o.Raw}, nil
}

// maxEventString bounds each string of a sink's event as the pusher shows
// it: a snapshot name is at most 255 bytes; an error quoting zfs, a few lines.
const maxEventString = 4096

// report takes one event of the sink's run. The sink is not trusted with
// the pusher's terminal: every string of the event (names in its plan and
// steps, errors, the summary) loses its control characters, and is bounded.
func (p *pusher) report(ctx context.Context, req api.ReportRequest) (*api.ReportResponse, error) {
	var ev replication.Event
	if err := json.Unmarshal(req.Event, &ev); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidArgument, "event: %v", err)
	}
	printable.Strings(&ev, maxEventString)
	p.mu.Lock()
	switch {
	case ev.Type == replication.EventStepStart:
		p.step = &ev
	case ev.Type == replication.EventSummary && ev.Summary != nil:
		p.summary = ev.Summary
	case ev.Type == replication.EventError && ev.Dataset == "":
		p.failure = ev.Error
	}
	p.mu.Unlock()
	p.rep.Report(ev)
	return &api.ReportResponse{}, nil
}

type sendFunc func(context.Context, api.SendRequest) (*api.SendResponse, io.ReadCloser, error)

// wrapSend counts the bytes each stream sends, for progress: the sink does
// not report progress while a stream holds the session.
func (p *pusher) wrapSend(send sendFunc) sendFunc {
	return func(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
		resp, body, err := send(ctx, req)
		if err != nil {
			return resp, body, err
		}
		body = p.o.BandwidthLimit.ReadCloser(ctx, body)
		p.mu.Lock()
		step := p.step
		p.mu.Unlock()
		if step == nil || step.Dataset != req.Dataset {
			return resp, body, nil
		}
		return resp, &counter{ReadCloser: body, p: p, step: *step, estimated: resp.EstimatedBytes, start: time.Now()}, nil
	}
}

// progressInterval is how often progress is reported.
const progressInterval = 200 * time.Millisecond

// counter reports the bytes read through it as progress of step.
type counter struct {
	io.ReadCloser
	p         *pusher
	step      replication.Event
	estimated int64
	start     time.Time
	last      time.Time
	n         int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) >= progressInterval || err == io.EOF {
		c.last = now
		ev := c.step
		ev.Type, ev.Time, ev.Bytes, ev.EstimatedBytes = replication.EventProgress, now.UTC(), c.n, c.estimated
		if d := now.Sub(c.start).Seconds(); d > 0 {
			ev.BytesPerSecond = float64(c.n) / d
		}
		c.p.rep.Report(ev)
	}
	return n, err
}

type discard struct{}

func (discard) Report(replication.Event) {}
