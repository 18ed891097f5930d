package cparse

import (
	"math"
	"net/netip"
	"strings"
	"testing"
)

func TestStrtonum(t *testing.T) {
	tests := []struct {
		s        string
		min, max int64
		want     int64
		ok       bool
	}{
		{"22", 0, 65535, 22, true},
		{"0", 0, 65535, 0, true},
		{"65535", 0, 65535, 65535, true},
		{"65536", 0, 65535, 0, false},
		{"-1", 0, 65535, 0, false},
		{"-0", 0, 65535, 0, true}, // strtoll reads -0 as 0
		{"+22", 0, 65535, 22, true},
		{" \t\n\v\f\r22", 0, 65535, 22, true}, // C's isspace
		{"022", 0, 65535, 22, true},           // base 10 always
		{"0x16", 0, 65535, 0, false},
		{"22 ", 0, 65535, 0, false}, // nothing may follow
		{"2 2", 0, 65535, 0, false},
		{"", 0, 65535, 0, false},
		{" ", 0, 65535, 0, false},
		{"+", 0, 65535, 0, false},
		{"-", 0, 65535, 0, false},
		{"+-1", 0, 65535, 0, false},
		{"ssh", 0, 65535, 0, false},
		{"9223372036854775807", math.MinInt64, math.MaxInt64, math.MaxInt64, true},
		{"9223372036854775808", math.MinInt64, math.MaxInt64, 0, false},
		{"-9223372036854775808", math.MinInt64, math.MaxInt64, math.MinInt64, true},
		{"-9223372036854775809", math.MinInt64, math.MaxInt64, 0, false},
		{"99999999999999999999999999", 0, math.MaxInt64, 0, false},
		{"00000000000000000000000000000000000000007", 0, 10, 7, true},
	}
	for _, tt := range tests {
		got, ok := Strtonum(tt.s, tt.min, tt.max)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Strtonum(%q, %d, %d) = %d, %v; want %d, %v", tt.s, tt.min, tt.max, got, ok, tt.want, tt.ok)
		}
	}
}

// TestInetAton: every row was checked against glibc 2.36's getaddrinfo
// with AI_NUMERICHOST (Debian 12, as OpenSSH 9.2's sshd uses it).
func TestInetAton(t *testing.T) {
	good := map[string]string{
		"127.0.0.1":                         "127.0.0.1",
		"127.1":                             "127.0.0.1",
		"127.0.1":                           "127.0.0.1",
		"127.0.0.01":                        "127.0.0.1",
		"0177.0.0.1":                        "127.0.0.1",
		"2130706433":                        "127.0.0.1",
		"0x7f.1":                            "127.0.0.1",
		"0X7F.0.0.1":                        "127.0.0.1",
		"0x7f.0x1":                          "127.0.0.1",
		"0x7f000001":                        "127.0.0.1",
		"017700000001":                      "127.0.0.1",
		"127":                               "0.0.0.127",
		"0":                                 "0.0.0.0",
		"00":                                "0.0.0.0",
		"0x0":                               "0.0.0.0",
		"4294967295":                        "255.255.255.255",
		"037777777777":                      "255.255.255.255",
		"0xffffffff":                        "255.255.255.255",
		"017777777777":                      "127.255.255.255",
		"1.16777215":                        "1.255.255.255",
		"1.2.65535":                         "1.2.255.255",
		"255.255.255.255":                   "255.255.255.255",
		"0377.0xff.255.0":                   "255.255.255.0",
		"192.168.0x100":                     "192.168.1.0",
		"127.00000000000000000000000000001": "127.0.0.1",
		strings.Repeat("0", 60) + "177.1":   "127.0.0.1",
		"0x" + strings.Repeat("0", 40) + "7f000001": "127.0.0.1",
	}
	for s, want := range good {
		got, ok := InetAton(s)
		if !ok {
			t.Errorf("InetAton(%q) refused; glibc reads %s", s, want)
			continue
		}
		if text := dotted(got); text != want {
			t.Errorf("InetAton(%q) = %s; glibc reads %s", s, text, want)
		}
	}
	for _, s := range []string{
		"", ".", "1.", ".1", "1..1", "1.2.3.4.", "1.2.3.4.5",
		"08", "09.1", "0x", "0xg", "00x1", "0x.1", "x1", "-1", "+1", " 1", "1 ", "1\t", "1.2.3.4 x",
		"256.1.1.1", "1.256.1.1", "1.1.256.1", "1.1.1.256",
		"127.0.65536", "127.16777216", "4294967296", "040000000000", "0x100000000",
		"99999999999999999999999", "1e3", "1.2.3.a", "a.b.c.d", "::1", "1.2.3.4/8",
	} {
		if got, ok := InetAton(s); ok {
			t.Errorf("InetAton(%q) = %s; glibc refuses it", s, dotted(got))
		}
	}
}

func dotted(a [4]byte) string { return netip.AddrFrom4(a).String() }

// FuzzInetAton checks that InetAton never panics and that what it accepts
// is made only of the bytes an inet_aton address can hold.
func FuzzInetAton(f *testing.F) {
	for _, s := range []string{"127.1", "0x7f.1", "0177.0.0.1", "2130706433", "1.2.3.4.5", "0x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, ok := InetAton(s); ok && strings.Trim(s, "0123456789abcdefABCDEFxX.") != "" {
			t.Fatalf("InetAton(%q) accepted a byte no address has", s)
		}
	})
}
