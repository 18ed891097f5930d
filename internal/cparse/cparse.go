// Package cparse reads numbers and IPv4 addresses the way OpenSSH's C code
// does on Linux, so that zrep reads an authorized_keys file exactly as
// sshd would: strtonum (OpenBSD's, which OpenSSH ships) for numeric option
// values, and glibc's inet_aton, which getaddrinfo(AI_NUMERICHOST) uses
// for IPv4 literals, for addresses. It only parses: no locale, no lookups.
package cparse

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || '\t' <= c && c <= '\r'
}

// Strtonum is OpenBSD's strtonum(s, min, max): strtoll in base 10 (leading
// blanks, then an optional sign, then at least one digit, and nothing
// after them), then a range check. ok is false for anything it refuses.
func Strtonum(s string, min, max int64) (n int64, ok bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	// The magnitude, up to that of math.MinInt64; more overflows strtoll
	// (ERANGE), which strtonum refuses like any value out of range.
	const limit = 1 << 63
	var mag uint64
	overflow := false
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if mag > (limit-d)/10 {
			overflow = true
		} else {
			mag = mag*10 + d
		}
	}
	if i == start || i != len(s) || overflow {
		return 0, false
	}
	switch {
	case !neg && mag > 1<<63-1:
		return 0, false
	case neg:
		n = -int64(mag) // mag == 1<<63 wraps to math.MinInt64, which is right
	default:
		n = int64(mag)
	}
	if n < min || n > max {
		return 0, false
	}
	return n, true
}

// InetAton parses s as glibc's __inet_aton_exact does (what getaddrinfo
// with AI_NUMERICHOST tries first): one to four parts separated by dots,
// each a C integer constant — decimal, octal with a leading 0, hex with
// 0x or 0X — of which all but the last are bytes and the last fills the
// remaining bytes: "127.1", "0177.0.0.1", "0x7f.1" and "2130706433" are
// all 127.0.0.1. Nothing may follow the address, not even a blank.
func InetAton(s string) (addr [4]byte, ok bool) {
	// The most the last part may hold, by the number of parts before it.
	maxLast := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	var parts [3]byte
	n := 0
	i := 0
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return addr, false
		}
		v, next, ok := strtoul0(s, i)
		if !ok {
			return addr, false
		}
		i = next
		if i < len(s) && s[i] == '.' {
			if n == len(parts) || v > 0xff {
				return addr, false
			}
			parts[n] = byte(v)
			n++
			i++
			continue
		}
		if i != len(s) || v > maxLast[n] {
			return addr, false
		}
		word := uint32(v)
		for j := 0; j < n; j++ {
			word |= uint32(parts[j]) << (24 - 8*j)
		}
		return [4]byte{byte(word >> 24), byte(word >> 16), byte(word >> 8), byte(word)}, true
	}
}

// strtoul0 is strtoul(s+i, &end, 0) for a part that starts with a digit:
// "0x" or "0X" and at least one hex digit is hex, a leading 0 is octal,
// anything else decimal; it stops at the first byte that is not a digit of
// the base. ok is false when the value is over 32 bits, which inet_aton
// refuses (glibc checks ERANGE, then > 0xffffffff).
func strtoul0(s string, i int) (v uint64, end int, ok bool) {
	base := uint64(10)
	switch {
	case s[i] == '0' && i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && hexDigit(s[i+2]) >= 0:
		base, i = 16, i+2
	case s[i] == '0':
		base = 8
	}
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if v = v*base + uint64(d); v > 0xffffffff {
			return 0, i, false
		}
	}
	return v, i, true
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
