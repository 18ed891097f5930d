package bwlimit

import (
	"bytes"
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when slept on: the limiter's arithmetic is
// checked without depending on the machine's speed.
type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.now = c.now.Add(d)
	c.slept += d
	return nil
}

func TestReaderKeepsTheRate(t *testing.T) {
	tests := []struct {
		name  string
		rate  uint64
		total int
		chunk int // the size of the reads asked for
	}{
		{"20 MiB/s, 1 MiB reads", 20 << 20, 600 << 20, 1 << 20},
		{"1 MiB/s, 16 KiB reads", 1 << 20, 30 << 20, 16 << 10},
		{"10 KiB/s, reads larger than the bucket", 10 << 10, 300 << 10, 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1e9, 0)}
			l := New(tt.rate, clock)
			r := l.Reader(context.Background(), io.LimitReader(zeros{}, int64(tt.total)))
			buf := make([]byte, tt.chunk)
			var n int
			for {
				m, err := r.Read(buf)
				if m > l.burst {
					t.Fatalf("a read of %d bytes passed a bucket of %d", m, l.burst)
				}
				n += m
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if n != tt.total {
				t.Fatalf("read %d bytes, want %d", n, tt.total)
			}
			// The bucket starts full: the first burst is free.
			want := time.Duration(float64(tt.total-l.burst) / float64(tt.rate) * float64(time.Second))
			if got := clock.slept; math.Abs(float64(got-want)) > float64(time.Millisecond) {
				t.Fatalf("slept %s for %d bytes at %d B/s, want %s", got, tt.total, tt.rate, want)
			}
		})
	}
}

func TestReaderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := New(1<<10, &fakeClock{})
	r := l.Reader(ctx, bytes.NewReader(make([]byte, 64<<10)))
	var err error
	for err == nil {
		_, err = r.Read(make([]byte, 4<<10))
	}
	if !strings.Contains(err.Error(), "bandwidth limit") || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v, want the cancellation", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    float64 // 0: no limiter
		wantErr string
	}{
		{"", 0, ""},
		{"0", 0, ""},
		{"20MiB", 20 << 20, ""},
		{"20M", 20 << 20, ""},
		{"512k", 512 << 10, ""},
		{"1.5G", 1.5 * (1 << 30), ""},
		{"fast", 0, "bandwidth limit"},
		{"-1M", 0, "bandwidth limit"},
	}
	for _, tt := range tests {
		l, err := Parse(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tt.in, err)
		case tt.want == 0 && l != nil:
			t.Errorf("Parse(%q) = a limiter of %v, want none", tt.in, l.Rate())
		case tt.want != 0 && (l == nil || l.Rate() != tt.want):
			t.Errorf("Parse(%q) = %v, want %v B/s", tt.in, l, tt.want)
		}
	}
	var none *Limiter
	r := strings.NewReader("x")
	if none.Reader(context.Background(), r) != r {
		t.Error("a nil Limiter wraps its reader")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
