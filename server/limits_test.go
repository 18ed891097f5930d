package server

import (
	"testing"
)

func TestMaxStartupsSet(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want MaxStartups
		ok   bool
	}{
		{"10:30:100", MaxStartups{10, 30, 100}, true},
		{"1:100:1", MaxStartups{1, 100, 1}, true},
		{"5:1:5", MaxStartups{5, 1, 5}, true},
		{"3", MaxStartups{3, 100, 3}, true}, // N: refuse from N on
		{"0", MaxStartups{}, false},
		{"10:30", MaxStartups{}, false},
		{"10:30:100:1", MaxStartups{}, false},
		{"10:0:100", MaxStartups{}, false},
		{"10:101:100", MaxStartups{}, false},
		{"100:30:10", MaxStartups{}, false},
		{"-1:30:10", MaxStartups{}, false},
		{"10:30:x", MaxStartups{}, false},
		{"", MaxStartups{}, false},
	} {
		var m MaxStartups
		err := m.Set(tt.in)
		if (err == nil) != tt.ok || tt.ok && m != tt.want {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tt.in, m, err, tt.want, tt.ok)
		}
	}
	if got := DefaultLimits().MaxStartups.String(); got != "10:30:100" {
		t.Errorf("default MaxStartups %s, want sshd's 10:30:100", got)
	}
}

// shouldDrop is sshd's random early drop: from start on, a new connection
// is refused with probability rate/100, rising linearly to 100/100 at full
// (sshd.c: p = rate + (100-rate)*(startups-start)/(full-start), in integer
// arithmetic; refused when random(100) < p).
func TestShouldDrop(t *testing.T) {
	m := MaxStartups{Start: 10, Rate: 30, Full: 100}
	fixed := func(r int) func(int) int {
		return func(n int) int {
			if n != 100 {
				t.Fatalf("random(%d), want random(100)", n)
			}
			return r
		}
	}
	for _, tt := range []struct {
		startups, r int
		want        bool
	}{
		{0, 0, false},
		{9, 0, false}, // below start: always accepted
		{10, 29, true},
		{10, 30, false}, // p = 30 at start
		{55, 64, true},
		{55, 65, false}, // p = 30 + 70*45/90 = 65
		{99, 98, true},
		{99, 99, false}, // p = 30 + 70*89/90 = 99
		{100, 99, true}, // at full: always refused
		{1000, 99, true},
	} {
		if got := m.shouldDrop(tt.startups, fixed(tt.r)); got != tt.want {
			t.Errorf("10:30:100 with %d pending, random %d: drop %v, want %v", tt.startups, tt.r, got, tt.want)
		}
	}
	never := func(int) int { t.Fatal("random called"); return 0 }
	if !(MaxStartups{Start: 5, Rate: 100, Full: 50}).shouldDrop(5, never) {
		t.Error("rate 100: not refused at start")
	}
	if (MaxStartups{Start: 3, Rate: 100, Full: 3}).shouldDrop(2, never) || !(MaxStartups{Start: 3, Rate: 100, Full: 3}).shouldDrop(3, never) {
		t.Error("3:100:3: want accepted below 3, refused at 3")
	}
	// Over many draws the refusal rate at start is about rate/100.
	s := newStartups(DefaultLimits())
	dropped := 0
	for range 10000 {
		if s.limit.shouldDrop(10, s.random) {
			dropped++
		}
	}
	if dropped < 2000 || dropped > 4000 {
		t.Errorf("%d of 10000 refused at start with rate 30, want about 3000", dropped)
	}
}
