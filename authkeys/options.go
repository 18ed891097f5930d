package authkeys

import (
	"strings"

	pkgerrors "github.com/pkg/errors"
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
		}
	}
	if seen["principals"] && !ko.certAuthority {
		return ko, pkgerrors.New("principals on non-CA key")
	}
	return ko, nil
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
