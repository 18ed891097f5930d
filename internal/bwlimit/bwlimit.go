// Package bwlimit limits the rate of a byte stream with a token bucket
// (golang.org/x/time/rate), for pull --bwlimit and push --bwlimit.
package bwlimit

import (
	"context"
	"io"
	"time"

	"github.com/pkg/errors"
	"golang.org/x/time/rate"

	"github.com/zrep/zrep/internal/units"
)

// maxBurst bounds the bucket: the most a stream may run ahead of the rate
// after a pause, and the largest read passed through at once.
const maxBurst = 256 << 10

// minBurst keeps reads from getting too small at low rates.
const minBurst = 4 << 10

// Clock is the time a Limiter runs on; tests give it a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends, whichever comes first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Limiter is a token bucket of bytes per second, shared by every stream it
// wraps: the streams of one run together keep to the rate.
type Limiter struct {
	lim   *rate.Limiter
	burst int
	clock Clock
}

// Parse reads a rate such as "20MiB", "20M" or "1.5G" (bytes per second,
// units of 1024 as in zfs; see units.ParseSize). "" and "0" mean no limit:
// the Limiter is then nil, and a nil Limiter limits nothing.
func Parse(s string) (*Limiter, error) {
	if s == "" {
		return nil, nil
	}
	n, err := units.ParseSize(s)
	if err != nil {
		return nil, errors.WithMessage(err, "bandwidth limit")
	}
	if n == 0 {
		return nil, nil
	}
	return New(n, nil), nil
}

// New returns a Limiter of bytesPerSecond on clock (nil: the real one).
// The bucket holds a tenth of a second's worth, between 4 KiB and 256 KiB,
// and starts full.
func New(bytesPerSecond uint64, clock Clock) *Limiter {
	if clock == nil {
		clock = realClock{}
	}
	burst := int(min(max(bytesPerSecond/10, minBurst), maxBurst))
	l := &Limiter{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), burst: burst, clock: clock}
	return l
}

// Rate is the limit in bytes per second.
func (l *Limiter) Rate() float64 { return float64(l.lim.Limit()) }

// Reader returns r limited to l's rate; with a nil l, r itself. Each read
// takes at most a bucket's worth and then waits until the bucket has paid
// for it; ctx ends the wait.
func (l *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if l == nil {
		return r
	}
	return &reader{ctx: ctx, r: r, l: l}
}

// ReadCloser is Reader for an io.ReadCloser.
func (l *Limiter) ReadCloser(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	if l == nil {
		return rc
	}
	return struct {
		io.Reader
		io.Closer
	}{l.Reader(ctx, rc), rc}
}

type reader struct {
	ctx context.Context
	r   io.Reader
	l   *Limiter
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > r.l.burst {
		p = p[:r.l.burst]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.wait(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// wait takes n tokens and sleeps until the bucket has them (n ≤ burst).
func (l *Limiter) wait(ctx context.Context, n int) error {
	now := l.clock.Now()
	res := l.lim.ReserveN(now, n)
	if !res.OK() {
		return errors.Errorf("bandwidth limit: %d bytes exceed the bucket of %d", n, l.burst)
	}
	if d := res.DelayFrom(now); d > 0 {
		if err := l.clock.Sleep(ctx, d); err != nil {
			res.CancelAt(l.clock.Now())
			return errors.Wrap(err, "bandwidth limit")
		}
	}
	return nil
}
