package server

import (
	"net"
	"strings"
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
		{name: "huge mask, then star", patterns: "127.0.0.0/99999999999,*", addr: tcpAddr(v4), want: true}, // no sshd reads it as a mask
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

// TestFromAllowsReadsIPv4AsGlibc: sshd reads every element of from= with
// getaddrinfo(AI_NUMERICHOST), which on glibc (OpenSSH 9.2 on Debian 12
// here) is inet_aton: one to four parts, each decimal, octal (leading 0)
// or hex (0x), the last part filling the remaining bytes. So "127.1",
// "0177.0.0.1", "2130706433" and "0x7f.1" all mean 127.0.0.1, and a
// negated one refuses a client there: the embedded server must read them
// the same way (as an address, not as a pattern that matches nothing).
// Spellings inet_aton refuses stay wildcard patterns, as in sshd. Every
// row was checked against glibc 2.36's getaddrinfo.
func TestFromAllowsReadsIPv4AsGlibc(t *testing.T) {
	client := tcpAddr("127.0.0.1")
	means127 := []string{
		"127.1",      // a.b: b fills 24 bits
		"127.0.1",    // a.b.c: c fills 16 bits
		"127.0.0.01", // octal 01
		"0177.0.0.1", // octal 0177
		"2130706433", // one 32-bit number
		"0x7f.1",     // hex
		"0X7F.0.0.1", // hex, upper case
		"0x7f.0x1",
		"017700000001",                      // octal, whole
		"0x7f000001",                        // hex, whole
		"127.00000000000000000000000000001", // leading zeros are octal, and still 1
	}
	for _, p := range means127 {
		t.Run("negated "+p+" refuses", func(t *testing.T) {
			if fromAllows("*,!"+p, client) {
				t.Errorf("fromAllows(%q, 127.0.0.1) = true; sshd reads %s as 127.0.0.1 and refuses", "*,!"+p, p)
			}
		})
		t.Run(p+" allows", func(t *testing.T) {
			if !fromAllows(p, client) {
				t.Errorf("fromAllows(%q, 127.0.0.1) = false; sshd reads it as 127.0.0.1 and allows", p)
			}
		})
		t.Run(p+"/32 allows", func(t *testing.T) {
			if !fromAllows(p+"/32", client) {
				t.Errorf("fromAllows(%q, 127.0.0.1) = false; sshd reads it as 127.0.0.1/32", p+"/32")
			}
		})
	}
	// CIDR blocks in short spellings: 127/8 is 0.0.0.127/8, host bits set,
	// which sshd calls invalid and refuses the key for.
	cidr := []struct {
		patterns string
		want     bool
	}{
		{"0177.0/8", true},         // 127.0.0.0/8
		{"*,!0x7f.0/8", false},     // negated 127.0.0.0/8
		{"*,!2130706432/8", false}, // negated 127.0.0.0/8
		{"127/8", false},           // 0.0.0.127/8: host bits set
		{"*,!127/8", false},
	}
	for _, tt := range cidr {
		if got := fromAllows(tt.patterns, client); got != tt.want {
			t.Errorf("fromAllows(%q, 127.0.0.1) = %v, want %v", tt.patterns, got, tt.want)
		}
	}
	// Not addresses for inet_aton: wildcard patterns that match nothing,
	// so a negation of them refuses no one.
	for _, p := range []string{
		"08.1",                            // 8 is no octal digit
		"0x",                              // no hex digit
		"00x1",                            // 0 then garbage
		"127.0.0.256",                     // part too big
		"127.0.65536",                     // last part over 16 bits
		"127.16777216",                    // last part over 24 bits
		"4294967296",                      // over 32 bits
		"040000000000",                    // octal, over 32 bits
		"1.2.3.4.",                        // trailing dot
		"1.2.3.4.5",                       // five parts
		"127..1",                          // empty part
		"+127.1",                          // sign
		"127.1 ",                          // trailing space (getaddrinfo wants it exact)
		strings.Repeat("0", 60) + "177.1", // 127.1, but 64 bytes or more: sshd's buffer refuses it before parsing
	} {
		if !fromAllows("*,!"+p, client) {
			t.Errorf("fromAllows(%q, 127.0.0.1) = false; sshd does not read %q as an address, so its negation matches nothing", "*,!"+p, p)
		}
	}
	if long := strings.Repeat("0", 58) + "177.1"; fromAllows("*,!"+long, client) {
		t.Errorf("fromAllows(*,!%s, 127.0.0.1) = true; at 63 bytes sshd still reads it as 127.0.0.1", long)
	}
}

// TestFromAllowsFailsClosedWhereSSHDVersionsDiffer: OpenSSH 9.2 (the
// reference here) reads a CIDR mask only as plain digits up to 128, and
// takes anything else for a wildcard pattern; OpenSSH 9.8 and later read
// it with strtonum (leading blanks and a sign allowed) and call any mask
// longer than the family's invalid. An IPv6 zone ("%eth0") makes sshd
// compare interface indexes, which the embedded server does not model.
// Where one sshd would read an element as an address and another, or the
// embedded server, would not, the embedded server refuses the key, as sshd
// does for invalid criteria: it is never looser than any of them.
func TestFromAllowsFailsClosedWhereSSHDVersionsDiffer(t *testing.T) {
	for _, tt := range []struct {
		patterns string
		addr     net.Addr
	}{
		{"127.0.0.0/+8,*", tcpAddr("127.0.0.1")},
		{"*,!127.0.0.0/+8", tcpAddr("127.0.0.1")},
		{"127.0.0.0/ 8,*", tcpAddr("127.0.0.1")},
		{"127.0.0.0/-0,*", tcpAddr("127.0.0.1")},
		{"::1/129,*", tcpAddr("::1")},
		{"*,!fe80::1%lo", tcpAddr("127.0.0.1")},
		{"fe80::1%1,*", tcpAddr("::1")},
		{"::1%lo", &net.TCPAddr{IP: net.ParseIP("::1"), Zone: "lo"}},
		{"*", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}}, // a zoned client
	} {
		if fromAllows(tt.patterns, tt.addr) {
			t.Errorf("fromAllows(%q, %s) = true, want the key refused", tt.patterns, tt.addr)
		}
	}
}
