package server

import (
	"net"
	"path"
	"strconv"
	"strings"
)

// addrChars are the characters of an address or CIDR element; an element
// made of anything else is a wildcard pattern only (as in sshd's addrmatch.c).
const addrChars = "0123456789abcdefABCDEF.:/"

// fromAllows applies an authorized_keys from="..." pattern list to the
// client's address the way sshd does with UseDNS off (its default). Each
// comma-separated element is a wildcard pattern (* and ?) matched against
// the address as text, and, when it is written as one, an address or CIDR
// block of the client's family. An element starting with '!' refuses on a
// match, and any such match wins. An element sshd calls invalid — empty, a
// bare '!', a CIDR with host bits set or a mask too long for its family —
// refuses the key outright, as sshd does. An empty list allows every
// address. Host names never match, as under sshd without DNS.
func fromAllows(patterns string, addr net.Addr) bool {
	if patterns == "" {
		return true
	}
	ip := clientIP(addr)
	if ip == nil {
		return false
	}
	text := ip.String()
	allowed := false
	for _, p := range strings.Split(patterns, ",") {
		negated := strings.HasPrefix(p, "!")
		p = strings.ToLower(strings.TrimPrefix(p, "!"))
		if p == "" {
			return false
		}
		match, valid := addrMatches(p, ip)
		if !valid {
			return false
		}
		if !match && !wildcardMatches(p, text) {
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
// (sshd normalises them too); nil if addr holds no IP.
func clientIP(addr net.Addr) net.IP {
	var ip net.IP
	if a, ok := addr.(*net.TCPAddr); ok {
		ip = a.IP
	} else if host, _, err := net.SplitHostPort(addr.String()); err == nil {
		ip = net.ParseIP(host)
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

// addrMatches matches an element written as an address or CIDR block
// against ip. valid is false for what sshd rejects as invalid criteria.
// Elements that do not parse as an address are no match, and valid.
func addrMatches(p string, ip net.IP) (match, valid bool) {
	if strings.Trim(p, addrChars) != "" {
		return false, true
	}
	host, maskText, hasMask := strings.Cut(p, "/")
	v6 := strings.Contains(host, ":")
	bits := 32
	if v6 {
		bits = 128
	}
	pat := net.ParseIP(host)
	if pat == nil || (!v6 && pat.To4() == nil) {
		return false, true
	}
	if !v6 {
		pat = pat.To4()
	} else {
		pat = pat.To16()
	}
	mask := bits
	if hasMask {
		n, err := strconv.Atoi(maskText)
		if err != nil || n < 0 || n > 128 {
			return false, true // not a mask sshd parses: no match
		}
		if n > bits {
			return false, false // a mask too long for the family
		}
		mask = n
	}
	block := &net.IPNet{IP: pat.Mask(net.CIDRMask(mask, bits)), Mask: net.CIDRMask(mask, bits)}
	if !block.IP.Equal(pat) {
		return false, false // host bits set
	}
	// Families never match each other: an IPv6 network (::ffff:a.b.c.d/n
	// included) says nothing about an IPv4 client.
	if (len(ip) == net.IPv4len) == v6 {
		return false, true
	}
	return block.Contains(ip), true
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
