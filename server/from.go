package server

import (
	"math"
	"net"
	"net/netip"
	"path"
	"strings"

	"github.com/zrep/zrep/internal/cparse"
)

// maxAddrLen is the size of sshd's buffer for an element of from= read as
// an address (addr_pton_cidr's addrbuf): a longer element is a wildcard
// pattern only.
const maxAddrLen = 64

// fromAllows applies an authorized_keys from="..." pattern list to the
// client's address the way sshd does with UseDNS off (its default;
// match_host_and_ip in match.c, addr_match_list in addrmatch.c). Each
// comma-separated element is a wildcard pattern (* and ?) matched against
// the address as text, and, when sshd reads it as one, an address or CIDR
// block of the client's family. An element starting with '!' refuses on a
// match, and any such match wins. An element sshd calls invalid — empty, a
// bare '!', a CIDR with host bits set or a mask too long for its family —
// refuses the key outright, as sshd does. An empty list allows every
// address. Host names never match, as under sshd without DNS.
//
// Addresses are read as sshd reads them on glibc: IPv4 with inet_aton
// ("127.1", "0177.0.0.1", "0x7f.1" and "2130706433" are 127.0.0.1), not
// refused as Go's parser would, since a negated entry sshd honours must
// not be ignored here. Where sshd versions read an element differently,
// or where the embedded server cannot follow sshd, fromAllows refuses the
// key, so that it is never looser than sshd; see parseNetwork.
func fromAllows(patterns string, addr net.Addr) bool {
	if patterns == "" {
		return true
	}
	ip, ok := clientIP(addr)
	if !ok {
		return false
	}
	text := ip.String()
	allowed := false
	for _, p := range strings.Split(patterns, ",") {
		negated := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if p == "" {
			return false
		}
		network, isAddr, valid := parseNetwork(p)
		if !valid {
			return false
		}
		// sshd's address match families never match each other: an IPv6
		// network (::ffff:a.b.c.d/n included) says nothing about an IPv4
		// client.
		match := isAddr && network.Addr().Is4() == ip.Is4() && network.Contains(ip)
		if !match && !wildcardMatches(strings.ToLower(p), text) {
			continue
		}
		if negated {
			return false
		}
		allowed = true
	}
	return allowed
}

// clientIP is the client's address, IPv4-mapped IPv6 addresses as IPv4
// (sshd normalises them too). ok is false if addr holds no IP, or holds
// one with an IPv6 zone: sshd compares the zone's interface index too,
// which the embedded server does not model, so such a client is refused
// whenever from= is present.
func clientIP(addr net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	if a, ok := addr.(*net.TCPAddr); ok {
		if a.Zone != "" {
			return netip.Addr{}, false
		}
		ip, _ = netip.AddrFromSlice(a.IP)
	} else if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		ip, _ = netip.ParseAddr(host)
	}
	if !ip.IsValid() || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// parseNetwork reads an element (without its '!') as sshd's
// addr_pton_cidr does: an address as getaddrinfo(AI_NUMERICHOST) reads it
// on glibc, optionally followed by /MASK; a bare address is a host
// network. isAddr is false for an element that is a wildcard pattern only.
// valid is false for what sshd calls invalid criteria (a mask longer than
// the family's, host bits set), which refuses the key.
//
// The embedded server also returns valid false, refusing the key, where it
// cannot be sure to read as every sshd does:
//   - a mask that OpenSSH 9.8 and later read as a number (strtonum: leading
//     blanks and a sign allowed) but 9.2 does not (digits only, up to 128),
//     or one longer than the family's: 9.8 calls it invalid, 9.2 takes the
//     element for a wildcard pattern;
//   - an IPv6 address with a zone ("fe80::1%eth0"), which sshd resolves to
//     an interface index.
func parseNetwork(p string) (network netip.Prefix, isAddr, valid bool) {
	if len(p) >= maxAddrLen {
		return netip.Prefix{}, false, true
	}
	host, maskText, hasMask := strings.Cut(p, "/")
	var ip netip.Addr
	if a, ok := cparse.InetAton(host); ok {
		ip = netip.AddrFrom4(a)
	} else if a, err := netip.ParseAddr(host); err == nil && a.Is6() {
		if a.Zone() != "" {
			return netip.Prefix{}, true, false
		}
		ip = a
	} else {
		return netip.Prefix{}, false, true
	}
	bits := ip.BitLen()
	if hasMask {
		n, ok := cparse.Strtonum(maskText, 0, math.MaxInt32)
		switch {
		case !ok:
			return netip.Prefix{}, false, true // no sshd reads this as a mask
		case strings.Trim(maskText, "0123456789") != "" || n > int64(bits):
			return netip.Prefix{}, true, false
		}
		bits = int(n)
	}
	network = netip.PrefixFrom(ip, bits)
	if network.Masked().Addr() != ip {
		return netip.Prefix{}, true, false // host bits set
	}
	return network, true, true
}

// wildcardMatches matches sshd's * and ? patterns against the address text.
func wildcardMatches(p, text string) bool {
	// path.Match's '*' stops at '/', which addresses never contain; '[' and
	// '\' are not sshd wildcards, so patterns with them match only literally.
	if strings.ContainsAny(p, "[\\") {
		return p == text
	}
	ok, err := path.Match(p, text)
	return err == nil && ok
}
