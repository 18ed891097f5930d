package server

import (
	"net"
	"path"
	"strings"
)

// fromAllows applies an authorized_keys from="..." pattern list to the
// client's address the way sshd does with UseDNS off (its default): each
// comma-separated pattern is a wildcard pattern (* and ?) matched against
// the IP address as text, or a CIDR block; a pattern starting with '!'
// denies on a match, and any match of a negated pattern wins. An empty list
// allows every address. Host names cannot match, as under sshd without DNS.
func fromAllows(patterns string, addr net.Addr) bool {
	if patterns == "" {
		return true
	}
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		ip = net.ParseIP(host)
	}
	if ip == nil {
		return false
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	text := ip.String()
	allowed := false
	for _, p := range strings.Split(patterns, ",") {
		negated := strings.HasPrefix(p, "!")
		p = strings.ToLower(strings.TrimPrefix(p, "!"))
		if !patternMatches(p, ip, text) {
			continue
		}
		if negated {
			return false
		}
		allowed = true
	}
	return allowed
}

func patternMatches(p string, ip net.IP, text string) bool {
	if strings.Contains(p, "/") {
		_, block, err := net.ParseCIDR(p)
		return err == nil && block.Contains(ip)
	}
	// path.Match's '*' stops at '/', which addresses never contain; '['
	// is not an sshd wildcard, so patterns with it match only literally.
	if strings.ContainsAny(p, "[\\") {
		return p == text
	}
	ok, err := path.Match(p, text)
	return err == nil && ok
}
