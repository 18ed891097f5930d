package server

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/pkg/errors"
)

// Limits bound what the embedded server accepts before login and per
// connection. They mean what sshd_config's options of the same names mean.
type Limits struct {
	// LoginGraceTime closes a connection that has not logged in after this
	// long; 0 means no limit.
	LoginGraceTime time.Duration
	// MaxStartups limits the connections that have not logged in yet.
	MaxStartups MaxStartups
	// MaxSessions limits the sessions open at once on one connection; at
	// least 1 (sshd's 0, forwarding only, would leave nothing to do here).
	MaxSessions int
}

// DefaultLimits are sshd's defaults: LoginGraceTime 120 s, MaxStartups
// 10:30:100, MaxSessions 10.
func DefaultLimits() Limits {
	return Limits{
		LoginGraceTime: 120 * time.Second,
		MaxStartups:    MaxStartups{Start: 10, Rate: 30, Full: 100},
		MaxSessions:    10,
	}
}

func (l Limits) validate() error {
	if l.LoginGraceTime < 0 {
		return errors.Errorf("sshd: LoginGraceTime %v is negative", l.LoginGraceTime)
	}
	if l.MaxSessions < 1 {
		return errors.Errorf("sshd: MaxSessions %d: at least one session per connection is needed", l.MaxSessions)
	}
	return errors.Wrap(l.MaxStartups.validate(), "sshd: MaxStartups")
}

// MaxStartups is sshd's start:rate:full. Below start connections that
// have not logged in yet, a new one is accepted; from start on it is
// refused with probability rate/100, rising linearly to 1 at full ("random
// early drop"). A single number N means N:100:N: refuse from N on.
// It is a pflag.Value, for --max-startups.
type MaxStartups struct {
	Start, Rate, Full int
}

// String formats m as start:rate:full.
func (m MaxStartups) String() string {
	return fmt.Sprintf("%d:%d:%d", m.Start, m.Rate, m.Full)
}

// Set parses "start:rate:full" or "N", as sshd_config does.
func (m *MaxStartups) Set(s string) error {
	parts := strings.Split(s, ":")
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || len(parts) != 1 && len(parts) != 3 {
			return errors.Errorf("%q is not start:rate:full or a number", s)
		}
		n[i] = v
	}
	v := MaxStartups{Start: n[0], Rate: n[1], Full: n[2]}
	if len(parts) == 1 {
		v = MaxStartups{Start: n[0], Rate: 100, Full: n[0]}
	}
	if err := v.validate(); err != nil {
		return err
	}
	*m = v
	return nil
}

// Type names the value's form in --help.
func (m *MaxStartups) Type() string { return "start:rate:full" }

func (m MaxStartups) validate() error {
	if m.Start < 1 || m.Full < m.Start || m.Rate < 1 || m.Rate > 100 {
		return errors.Errorf("%s: want 1 <= start <= full and 1 <= rate <= 100", m)
	}
	return nil
}

// shouldDrop is sshd's should_drop_connection: whether to refuse a new
// connection while startups others have not logged in yet. random(n)
// returns an integer in [0, n).
func (m MaxStartups) shouldDrop(startups int, random func(n int) int) bool {
	switch {
	case startups < m.Start:
		return false
	case startups >= m.Full, m.Rate == 100:
		return true
	}
	p := 100 - m.Rate
	p *= startups - m.Start
	p /= m.Full - m.Start
	p += m.Rate
	return random(100) < p
}

// dropMessage is what a refused connection reads before it is closed.
const dropMessage = "Exceeded MaxStartups\r\n"

// startups tracks the connections that have not logged in yet.
type startups struct {
	limit  MaxStartups
	grace  time.Duration
	random func(n int) int

	mu      sync.Mutex
	pending map[*preauthConn]struct{}
	closed  bool
}

func newStartups(l Limits) *startups {
	return &startups{limit: l.MaxStartups, grace: l.LoginGraceTime, random: rand.IntN, pending: map[*preauthConn]struct{}{}}
}

// admit counts conn as not logged in yet, or returns nil when MaxStartups
// refuses it (or the server is closed). onGrace runs if conn is still not
// logged in after the grace time; it is closed then.
func (s *startups) admit(conn net.Conn, onGrace func()) *preauthConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.limit.shouldDrop(len(s.pending), s.random) {
		return nil
	}
	pc := &preauthConn{Conn: conn, s: s}
	s.pending[pc] = struct{}{}
	if s.grace > 0 {
		pc.timer = time.AfterFunc(s.grace, func() {
			if pc.done() {
				onGrace()
				_ = pc.Close()
			}
		})
	}
	return pc
}

// closeAll closes every connection that has not logged in, and refuses
// new ones.
func (s *startups) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*preauthConn, 0, len(s.pending))
	for pc := range s.pending {
		conns = append(conns, pc)
	}
	s.mu.Unlock()
	for _, pc := range conns {
		_ = pc.Close()
	}
}

// preauthConn is a connection counted by startups until it logs in or
// closes.
type preauthConn struct {
	net.Conn
	s     *startups
	timer *time.Timer
}

// done stops counting c; it reports whether c was still counted.
func (c *preauthConn) done() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if _, ok := c.s.pending[c]; !ok {
		return false
	}
	delete(c.s.pending, c)
	if c.timer != nil {
		c.timer.Stop()
	}
	return true
}

// loggedIn stops counting c and its grace time.
func (c *preauthConn) loggedIn() { c.done() }

func (c *preauthConn) Close() error {
	c.done()
	return c.Conn.Close()
}

// sessionSlots counts the open sessions of one connection.
type sessionSlots struct {
	mu sync.Mutex
	n  int
}

func (s *sessionSlots) acquire(max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= max {
		return false
	}
	s.n++
	return true
}

func (s *sessionSlots) release() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
}

// connState is what the server keeps per connection, in its ssh.Context.
type connState struct {
	conn     *preauthConn
	sessions sessionSlots
}

const ctxConnState ctxKey = "zrep-conn-state"

func stateOf(ctx ssh.Context) *connState {
	st, _ := ctx.Value(ctxConnState).(*connState)
	return st
}
