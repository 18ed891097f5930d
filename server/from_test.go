package server

import (
	"net"
	"testing"
)

// strAddr is a net.Addr that is not a *net.TCPAddr: fromAllows must then
// parse the address from its String.
type strAddr string

func (a strAddr) Network() string { return "test" }
func (a strAddr) String() string  { return string(a) }

func tcpAddr(ip string) net.Addr {
	return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40022}
}

// TestFromAllows checks fromAllows against sshd's from="..." semantics.
// Every want was checked against OpenSSH 9.2p1's sshd (UseDNS no) with a
// key line from="PATTERNS" and a client on 127.0.0.1 where the address is
// 127.0.0.1; the other addresses follow from addrmatch.c and match.c.
//
// The last rows are elements sshd calls invalid: an empty element, a bare
// "!", a CIDR with host bits set or an impossible mask length refuse the
// key for the whole list, and an IPv4-mapped IPv6 network never matches an
// IPv4 client (Go's net.ParseCIDR would turn it into an IPv4 network).
func TestFromAllows(t *testing.T) {
	const v4, v6 = "127.0.0.1", "::1"
	tests := []struct {
		name     string
		patterns string
		addr     net.Addr
		want     bool
	}{
		{name: "empty list allows IPv4", patterns: "", addr: tcpAddr(v4), want: true},
		{name: "empty list allows IPv6", patterns: "", addr: tcpAddr(v6), want: true},
		{name: "empty list allows any address string", patterns: "", addr: strAddr("not an address"), want: true},

		// IPv4 literals.
		{name: "literal match", patterns: "127.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "literal other address", patterns: "127.0.0.1", addr: tcpAddr("127.0.0.2"), want: false},
		{name: "literal elsewhere", patterns: "10.9.9.9", addr: tcpAddr(v4), want: false},
		{name: "second of two", patterns: "10.9.9.9,127.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "none of two", patterns: "10.9.9.9,10.9.9.8", addr: tcpAddr(v4), want: false},
		{name: "literal is not a prefix", patterns: "127.0.0.1", addr: tcpAddr("127.0.0.10"), want: false},

		// Wildcards on the address text.
		{name: "star suffix", patterns: "127.0.0.*", addr: tcpAddr(v4), want: true},
		{name: "star suffix, more digits", patterns: "127.0.0.*", addr: tcpAddr("127.0.0.254"), want: true},
		{name: "star suffix elsewhere", patterns: "127.0.0.*", addr: tcpAddr("127.0.1.1"), want: false},
		{name: "star spans dots", patterns: "127.*", addr: tcpAddr("127.9.8.7"), want: true},
		{name: "star prefix", patterns: "*.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "star alone", patterns: "*", addr: tcpAddr(v4), want: true},
		{name: "star alone IPv6", patterns: "*", addr: tcpAddr(v6), want: true},
		{name: "question mark one char", patterns: "127.0.0.?", addr: tcpAddr(v4), want: true},
		{name: "question mark not two chars", patterns: "127.0.0.?", addr: tcpAddr("127.0.0.10"), want: false},
		{name: "question mark inside", patterns: "12?.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "wildcard elsewhere", patterns: "10.*", addr: tcpAddr(v4), want: false},

		// CIDR blocks.
		{name: "cidr /8", patterns: "127.0.0.0/8", addr: tcpAddr(v4), want: true},
		{name: "cidr /8 edge", patterns: "127.0.0.0/8", addr: tcpAddr("127.255.255.255"), want: true},
		{name: "cidr /8 outside", patterns: "127.0.0.0/8", addr: tcpAddr("128.0.0.1"), want: false},
		{name: "cidr /32", patterns: "127.0.0.1/32", addr: tcpAddr(v4), want: true},
		{name: "cidr /32 other", patterns: "127.0.0.1/32", addr: tcpAddr("127.0.0.2"), want: false},
		{name: "cidr elsewhere", patterns: "10.0.0.0/8", addr: tcpAddr(v4), want: false},
		{name: "cidr /0", patterns: "0.0.0.0/0", addr: tcpAddr(v4), want: true},
		{name: "IPv4 cidr never matches IPv6", patterns: "0.0.0.0/0", addr: tcpAddr(v6), want: false},
		{name: "cidr mask with leading zero", patterns: "127.0.0.0/08", addr: tcpAddr(v4), want: true},

		// Negation: any negated match refuses, whatever the order.
		{name: "negated then star", patterns: "!127.0.0.1,*", addr: tcpAddr(v4), want: false},
		{name: "star then negated", patterns: "*,!127.0.0.1", addr: tcpAddr(v4), want: false},
		{name: "negated other address", patterns: "!10.0.0.1,*", addr: tcpAddr(v4), want: true},
		{name: "only a negation", patterns: "!10.0.0.1", addr: tcpAddr(v4), want: false},
		{name: "negated cidr", patterns: "!127.0.0.0/8,*", addr: tcpAddr(v4), want: false},
		{name: "negated wildcard", patterns: "!127.0.0.*,*", addr: tcpAddr(v4), want: false},
		{name: "negated wildcard elsewhere", patterns: "!10.*,127.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "negated IPv6", patterns: "!::1,*", addr: tcpAddr(v6), want: false},

		// IPv6.
		{name: "IPv6 literal", patterns: "::1", addr: tcpAddr(v6), want: true},
		{name: "IPv6 literal vs IPv4 client", patterns: "::1", addr: tcpAddr(v4), want: false},
		{name: "IPv6 /128", patterns: "::1/128", addr: tcpAddr(v6), want: true},
		{name: "IPv6 /32", patterns: "2001:db8::/32", addr: tcpAddr("2001:db8::5"), want: true},
		{name: "IPv6 /32 outside", patterns: "2001:db8::/32", addr: tcpAddr("2001:db9::5"), want: false},
		{name: "IPv6 upper case", patterns: "2001:DB8::5", addr: tcpAddr("2001:db8::5"), want: true},
		{name: "IPv6 wildcard", patterns: "2001:db8::*", addr: tcpAddr("2001:db8::5"), want: true},
		{name: "IPv6 wildcard elsewhere", patterns: "fe80::*", addr: tcpAddr("2001:db8::5"), want: false},
		{name: "IPv6 negated cidr", patterns: "!2001:db8::/32,*", addr: tcpAddr("2001:db8::5"), want: false},
		{name: "IPv6 long form is not the text", patterns: "0:0:0:0:0:ffff:127.0.0.1", addr: tcpAddr(v4), want: false},

		// IPv4-mapped clients count as IPv4, as sshd normalises them.
		{name: "mapped client, IPv4 literal", patterns: "127.0.0.1", addr: tcpAddr("::ffff:127.0.0.1"), want: true},
		{name: "mapped client, IPv4 cidr", patterns: "127.0.0.0/8", addr: tcpAddr("::ffff:127.0.0.1"), want: true},
		{name: "mapped literal pattern", patterns: "::ffff:127.0.0.1", addr: tcpAddr(v4), want: false},

		// Garbage: an unparsable element is a wildcard pattern that matches nothing.
		{name: "garbage alone", patterns: "garbage", addr: tcpAddr(v4), want: false},
		{name: "garbage then match", patterns: "garbage,127.0.0.1", addr: tcpAddr(v4), want: true},
		{name: "unparsable mask, then star", patterns: "127.0.0.0/8x,*", addr: tcpAddr(v4), want: true},
		{name: "negated unparsable mask, then star", patterns: "!127.0.0.0/8x,*", addr: tcpAddr(v4), want: true},
		{name: "missing mask, then star", patterns: "127.0.0.0/,*", addr: tcpAddr(v4), want: true},
		{name: "IPv6 mask over 128, then star", patterns: "::1/129,*", addr: tcpAddr(v6), want: true},
		{name: "impossible mask alone", patterns: "127.0.0.0/33", addr: tcpAddr(v4), want: false},
		{name: "brackets are literal", patterns: "127.0.0.[1]", addr: tcpAddr(v4), want: false},
		{name: "bracket class is literal", patterns: "127.0.0.[0-9]", addr: tcpAddr(v4), want: false},
		{name: "backslash is literal", patterns: `127.0.0.\1`, addr: tcpAddr(v4), want: false},
		{name: "leading space", patterns: " 127.0.0.1", addr: tcpAddr(v4), want: false},
		{name: "trailing space", patterns: "127.0.0.1 ", addr: tcpAddr(v4), want: false},
		{name: "host name never matches", patterns: "localhost", addr: tcpAddr(v4), want: false},
		{name: "upper-case host name then match", patterns: "LOCALHOST,127.0.0.1", addr: tcpAddr(v4), want: true},

		// Addresses that are not *net.TCPAddr, or not addresses at all.
		{name: "string address", patterns: "127.0.0.*", addr: strAddr("127.0.0.1:22"), want: true},
		{name: "string IPv6 address", patterns: "::1/128", addr: strAddr("[::1]:22"), want: true},
		{name: "string address elsewhere", patterns: "10.*", addr: strAddr("127.0.0.1:22"), want: false},
		{name: "string without port", patterns: "*", addr: strAddr("127.0.0.1"), want: false},
		{name: "string host name", patterns: "*", addr: strAddr("host.example:22"), want: false},
		{name: "TCPAddr without IP", patterns: "*", addr: &net.TCPAddr{Port: 22}, want: false},

		// sshd refuses the key for these (addrmatch.c returns -2: "invalid
		// from criteria"), and so must the embedded server.
		{name: "host bits set", patterns: "127.0.0.1/8", addr: tcpAddr(v4), want: false},
		{name: "host bits set, mask /0", patterns: "127.0.0.1/0", addr: tcpAddr(v4), want: false},
		{name: "trailing comma", patterns: "127.0.0.1,", addr: tcpAddr(v4), want: false},
		{name: "leading comma", patterns: ",127.0.0.1", addr: tcpAddr(v4), want: false},
		{name: "bare negation then star", patterns: "!,*", addr: tcpAddr(v4), want: false},
		{name: "star then bare negation", patterns: "*,!", addr: tcpAddr(v4), want: false},
		{name: "IPv4 mask over 32, then star", patterns: "127.0.0.0/33,*", addr: tcpAddr(v4), want: false},
		{name: "mapped IPv6 network", patterns: "::ffff:127.0.0.0/104", addr: tcpAddr(v4), want: false},
		{name: "mapped IPv6 host", patterns: "::ffff:127.0.0.1/128", addr: tcpAddr(v4), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fromAllows(tt.patterns, tt.addr)
			if got == tt.want {
				return
			}
			t.Errorf("fromAllows(%q, %s) = %v, want %v", tt.patterns, tt.addr, got, tt.want)
		})
	}
}

// sshd parses a pattern without wildcards as an address, so it also
// accepts the short and zero-padded IPv4 forms; fromAllows compares the
// text and refuses them. That is stricter than sshd (it never lets in a
// client sshd would refuse), and this test pins it down.
func TestFromAllowsIsStricterThanSSHDForOddIPv4Forms(t *testing.T) {
	for _, p := range []string{"127.1", "127.0.0.01"} {
		if fromAllows(p, tcpAddr("127.0.0.1")) {
			t.Errorf("fromAllows(%q, 127.0.0.1) = true, want false", p)
		}
	}
}
