package authkeys

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	pkgerrors "github.com/pkg/errors"

	"github.com/zrep/zrep/internal/cparse"
)

// keyOptions is what the embedded server needs from a line's options.
type keyOptions struct {
	command       string
	from          string
	hasFrom       bool // from= is present, possibly empty
	certAuthority bool
}

// flagOptions are sshd's options without a value; the true ones may also
// be written with a "no-" prefix.
var flagOptions = map[string]bool{
	"restrict":         false,
	"cert-authority":   false,
	"port-forwarding":  true,
	"agent-forwarding": true,
	"x11-forwarding":   true,
	"touch-required":   true,
	"verify-required":  true,
	"pty":              true,
	"user-rc":          true,
}

// valueOptions are sshd's name="value" options; the true ones may appear
// only once per line.
var valueOptions = map[string]bool{
	"command":      true,
	"from":         true,
	"principals":   true,
	"expiry-time":  false,
	"environment":  false,
	"permitopen":   false,
	"permitlisten": false,
	"tunnel":       false,
}

// parseOptions checks options, as split by gossh.ParseAuthorizedKey
// (gossh drops empty options, which sshd skips too), by the rules of
// sshd's sshauthopt_parse, and extracts command= and from=.
func parseOptions(options []string) (keyOptions, error) {
	var ko keyOptions
	seen := make(map[string]bool)
	env := make(map[string]bool) // distinct environment= names
	permits := make(map[string]int)
	for _, opt := range options {
		name, quoted, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name)
		if !hasValue {
			negated := false
			if n, ok := strings.CutPrefix(name, "no-"); ok && flagOptions[n] {
				name, negated = n, true
			}
			if _, ok := flagOptions[name]; !ok {
				return ko, pkgerrors.Errorf("unknown key option %q", opt)
			}
			switch {
			case name == "cert-authority":
				ko.certAuthority = true
			case name == "verify-required" && !negated:
				return ko, pkgerrors.New("verify-required is not supported by the embedded server")
			}
			continue
		}
		once, ok := valueOptions[name]
		if !ok {
			return ko, pkgerrors.Errorf("unknown key option %q", opt)
		}
		value, rest, err := dequote(quoted)
		if err != nil {
			return ko, err
		}
		if rest != "" {
			return ko, pkgerrors.Errorf("unknown key option %q (text after the closing quote)", opt)
		}
		if once && seen[name] {
			return ko, pkgerrors.Errorf("multiple %q clauses", name)
		}
		seen[name] = true
		switch name {
		case "command":
			ko.command = value
		case "from":
			ko.from, ko.hasFrom = value, true
		case "expiry-time":
			return ko, pkgerrors.New("expiry-time is not supported by the embedded server")
		case "environment":
			if len(env) > maxEnvironment {
				return ko, pkgerrors.New("too many environment strings")
			}
			envName, _, ok := strings.Cut(value, "=")
			if !ok || !validEnvName(envName) {
				return ko, pkgerrors.Errorf("invalid environment string %q", value)
			}
			env[envName] = true // the first one wins in sshd; only the count matters here
		case "permitopen", "permitlisten":
			if permits[name] > maxPermits {
				return ko, pkgerrors.New("too many permission directives")
			}
			if reason := checkPermit(value, name == "permitlisten"); reason != "" {
				return ko, pkgerrors.Errorf("%s in %s=%q", reason, name, value)
			}
			permits[name]++
		case "tunnel":
			if !validTunnel(value) {
				return ko, pkgerrors.Errorf("invalid tun device %q", value)
			}
		}
	}
	if seen["principals"] && !ko.certAuthority {
		return ko, pkgerrors.New("principals on non-CA key")
	}
	return ko, nil
}

// sshd's limits per line (auth-options.h): it refuses an environment=
// beyond maxEnvironment distinct names so far, and a permitopen= (or
// permitlisten=) beyond maxPermits of them.
const (
	maxEnvironment = 1024
	maxPermits     = 4096
	// maxHostLen is NI_MAXHOST: a permitopen host must be shorter.
	maxHostLen = 1025
	// maxTunnel is SSH_TUNID_MAX, the highest tun device number.
	maxTunnel = 0x7fffffff - 2
)

// validEnvName is sshd's valid_env_name: letters, digits and '_' (ASCII,
// as isalnum in the C locale), at least one.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// checkPermit checks a permitopen= or permitlisten= value as sshd's
// handle_permit does: HOST:PORT or HOST/PORT, HOST possibly in [brackets]
// (which may hold ':'), shorter than NI_MAXHOST, PORT "*" or a port for
// a2port. permitlisten also takes a bare port: sshd reads a value without
// ':' as "*:" followed by the value. It returns sshd's reason, or "".
func checkPermit(value string, bareport bool) string {
	if bareport && !strings.Contains(value, ":") {
		value = "*:" + value
	}
	// sshd's hpdelim2: the host ends at the first ':' or '/', or after the
	// ']' when it starts with '['; a delimiter, or nothing, must follow.
	end := strings.IndexAny(value, ":/")
	if strings.HasPrefix(value, "[") {
		if end = strings.IndexByte(value, ']'); end < 0 {
			return "invalid permission hostname"
		}
		end++
		if end < len(value) && value[end] != ':' && value[end] != '/' {
			return "invalid permission hostname"
		}
	}
	if end < 0 {
		end = len(value)
	}
	if end >= maxHostLen {
		return "invalid permission hostname"
	}
	if end == len(value) {
		return "invalid permission port" // no port at all
	}
	if port := value[end+1:]; port != "*" && a2port(port) <= 0 {
		return "invalid permission port"
	}
	return ""
}

// servicesFile is where getservbyname looks up service names.
var servicesFile = "/etc/services"

// a2port is sshd's: a number from 0 to 65535 as strtonum reads it, else
// a TCP service name from /etc/services; -1 when it is neither. sshd calls
// glibc's getservbyname, which reads /etc/services and nothing else, and
// matches names and aliases exactly: so does this (Go's net.LookupPort
// ignores case and falls back to a built-in table when the file is
// missing, where sshd refuses the name).
func a2port(s string) int {
	if n, ok := cparse.Strtonum(s, 0, 65535); ok {
		return int(n)
	}
	if s == "" {
		return -1
	}
	if _, ok := cparse.Strtonum(strings.TrimLeft(s, "+-"), 0, math.MaxInt64); ok {
		return -1 // a number out of range, not a name
	}
	return servicePort(servicesFile, s)
}

// servicePort finds the TCP port of a service name or alias in a services
// file ("name port/proto [alias...] [# comment]"); -1 if there is none.
func servicePort(path, name string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || !slices.Contains(append([]string{f[0]}, f[2:]...), name) {
			continue
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok || proto != "tcp" {
			continue
		}
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n <= 65535 {
			return n
		}
	}
	return -1
}

// validTunnel is sshd's a2tun for a tunnel= value: "any" in any case, or
// a device number from 0 to SSH_TUNID_MAX as strtonum reads it.
func validTunnel(s string) bool {
	if strings.EqualFold(s, "any") {
		return true
	}
	_, ok := cparse.Strtonum(s, 0, maxTunnel)
	return ok
}

// dequote unquotes an option value the way sshd's opt_dequote does: s must
// start with '"'; up to the next unescaped '"', the pair \" stands for a
// quote and every other byte, backslashes included, stands for itself.
// It returns the value and what follows the closing quote.
func dequote(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", pkgerrors.New("missing start quote")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case s[i] == '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", pkgerrors.New("missing end quote")
}
