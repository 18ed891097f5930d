// Package authkeys reads an OpenSSH authorized_keys file for zrep's
// embedded SSH server, which must grant what sshd would grant with forced
// commands: a key is usable only if its line has a command="..." option,
// and the session then runs that command, never the client's.
//
// Options are checked by sshd's rules (auth-options.c): names are
// case-insensitive, values are double-quoted with \" as the only escape,
// an unknown option, a repeated command=, from= or principals=, or a value
// sshd refuses makes the line invalid. Where sshd would skip such a line,
// Parse returns an error, so a mistake is reported at startup instead of
// silently locking out (or letting in) a key.
//
// What the embedded server cannot enforce:
//   - from="..." is not checked here. Its value is in Entry.From; the caller
//     must match it against the client address or refuse the key. (sshd
//     goes on to a later line for the same key when from= does not match;
//     Set keeps only the first line, see Parse.)
//   - cert-authority lines authorize certificates, never the plain key, in
//     sshd; the embedded server supports no certificates, so such lines are
//     checked and then left out of the Set. A certificate written where a
//     key belongs (any *-cert-v01@openssh.com type) is an error: sshd never
//     matches it, and taking it for its key would ignore its limits.
//   - expiry-time="..." and verify-required cannot be honoured, and are an
//     error rather than silently ignored.
//   - The embedded server grants none of environment=, permitopen=,
//     permitlisten= and tunnel=; their values are still checked as
//     sshd checks them (a NAME=value environment string, HOST:PORT, a tun
//     device number, and sshd's counts per line), so that a line sshd
//     would skip is an error here too. A port may be a service name, as
//     sshd's getservbyname reads it from /etc/services.
package authkeys

import (
	"bytes"
	"os"
	"strings"

	pkgerrors "github.com/pkg/errors"
	gossh "golang.org/x/crypto/ssh"
)

// Entry is one key line of an authorized_keys file.
type Entry struct {
	Key     gossh.PublicKey
	Comment string
	Options []string // as gossh.ParseAuthorizedKey returns them, quotes included
	Command string   // the unquoted value of command="...", "" when absent
	From    string   // the unquoted value of from="..." (sshd pattern-list); NOT enforced here
	HasFrom bool     // the line has a from= option; from="" (no patterns) allows nobody, as in sshd
	Line    int      // 1-based line number in the file
}

// Set is the parsed content of an authorized_keys file, indexed by key.
// It is immutable and safe for concurrent use.
type Set struct {
	byKey map[string]*Entry // by string(Key.Marshal())
}

// Load reads and parses the authorized_keys file at path.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, pkgerrors.Wrap(err, "load authorized keys")
	}
	return Parse(data, path)
}

// Parse parses authorized_keys content; source names it in errors, which
// read "source:line: problem". Blank lines and lines starting with '#'
// (after leading blanks) are skipped; any other line that is not a valid
// key line is an error.
//
// When the same key appears on several lines the FIRST line wins, as in
// sshd, which uses the first line that matches the key; later lines for
// that key are checked for errors but otherwise ignored.
func Parse(data []byte, source string) (*Set, error) {
	s := &Set{byKey: make(map[string]*Entry)}
	lineno := 0
	for rest := data; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		lineno++
		line = bytes.Trim(bytes.TrimSuffix(line, []byte{'\r'}), " \t")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := parseLine(line)
		if err != nil {
			return nil, pkgerrors.WithMessagef(err, "%s:%d", source, lineno)
		}
		if e == nil { // a cert-authority line
			continue
		}
		e.Line = lineno
		k := string(e.Key.Marshal())
		if _, dup := s.byKey[k]; !dup {
			s.byKey[k] = e
		}
	}
	return s, nil
}

// parseLine parses one non-blank, non-comment line. It returns a nil
// Entry, and no error, for a valid cert-authority line.
func parseLine(line []byte) (*Entry, error) {
	if bytes.IndexByte(line, 0) >= 0 {
		return nil, pkgerrors.New("NUL byte in line")
	}
	key, comment, options, _, err := gossh.ParseAuthorizedKey(line)
	if err != nil {
		return nil, err
	}
	if IsCertificate(key) {
		return nil, pkgerrors.Errorf("%s is a certificate, not a key: sshd skips such a line, and the embedded server supports no certificates", key.Type())
	}
	opts, err := parseOptions(options)
	if err != nil {
		return nil, pkgerrors.WithMessage(err, "bad key options")
	}
	if opts.certAuthority {
		return nil, nil
	}
	return &Entry{
		Key:     key,
		Comment: comment,
		Options: options,
		Command: opts.command,
		From:    opts.from,
		HasFrom: opts.hasFrom,
	}, nil
}

// IsCertificate reports whether key is an OpenSSH certificate rather than
// a plain key. sshd accepts a certificate only through a cert-authority
// line naming its CA, after checking its validity, principals and critical
// options; the embedded server does none of that, so it must never take a
// certificate for the key inside it, in authorized_keys or at login.
func IsCertificate(key gossh.PublicKey) bool {
	if _, ok := key.(*gossh.Certificate); ok {
		return true
	}
	return strings.HasSuffix(key.Type(), "-cert-v01@openssh.com")
}

// Lookup returns the entry of the first line that lists key. The entry is
// shared: do not modify it.
//
// A found entry whose Command is "" has no forced command (or an empty
// one): the embedded server must refuse that key, as it only ever runs
// forced commands.
func (s *Set) Lookup(key gossh.PublicKey) (*Entry, bool) {
	if key == nil {
		return nil, false
	}
	e, ok := s.byKey[string(key.Marshal())]
	return e, ok
}

// Len returns the number of distinct keys in the set, that is the number
// of keys Lookup finds.
func (s *Set) Len() int {
	return len(s.byKey)
}
