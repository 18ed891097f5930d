package vmlab

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// Source is one Debian apt source of the host: a mirror URI and its suites.
type Source struct {
	URI    string
	Suites []string
}

// ParseDeb822 reads the binary ("Types: deb") stanzas of a deb822
// .sources file. Disabled stanzas ("Enabled: no") are left out.
func ParseDeb822(text string) []Source {
	var out []Source
	flush := func(f map[string]string) {
		if f == nil || strings.EqualFold(f["enabled"], "no") {
			return
		}
		if !slices.Contains(strings.Fields(f["types"]), "deb") {
			return
		}
		for _, uri := range strings.Fields(f["uris"]) {
			out = append(out, Source{URI: uri, Suites: strings.Fields(f["suites"])})
		}
	}
	var fields map[string]string
	last := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush(fields)
			fields, last = nil, ""
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t': // continuation of the last field
			if fields != nil && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			key, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if fields == nil {
				fields = map[string]string{}
			}
			last = strings.ToLower(strings.TrimSpace(key))
			fields[last] = strings.TrimSpace(value)
		}
	}
	flush(fields)
	return out
}

// ParseOneLine reads the "deb" lines of a classic sources.list file;
// "deb [options] URI suite component..." with options left out.
func ParseOneLine(text string) []Source {
	var out []Source
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options, possibly several words
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, Source{URI: f[0], Suites: []string{f[1]}})
	}
	return out
}

// HostSources reads the apt sources of the machine under root (normally
// "/"): sources.list and every *.list and *.sources file of sources.list.d.
func HostSources(root string) ([]Source, error) {
	etc := filepath.Join(root, "etc", "apt")
	var out []Source
	read := func(path string, parse func(string) []Source) error {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return errors.Wrap(err, "reading apt sources")
		}
		out = append(out, parse(string(b))...)
		return nil
	}
	if err := read(filepath.Join(etc, "sources.list"), ParseOneLine); err != nil {
		return nil, err
	}
	parts, err := filepath.Glob(filepath.Join(etc, "sources.list.d", "*"))
	if err != nil {
		return nil, errors.Wrap(err, "listing apt sources")
	}
	sort.Strings(parts)
	for _, p := range parts {
		switch {
		case strings.HasSuffix(p, ".list"):
			err = read(p, ParseOneLine)
		case strings.HasSuffix(p, ".sources"):
			err = read(p, ParseDeb822)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Mirrors picks from the host's sources the mirror of the Debian archive
// (the source carrying suite itself, e.g. "bookworm") and, if there is one,
// the mirror carrying suite-security.
func Mirrors(sources []Source, suite string) (archive, security string, err error) {
	for _, s := range sources {
		if archive == "" && slices.Contains(s.Suites, suite) {
			archive = s.URI
		}
		if security == "" && (slices.Contains(s.Suites, suite+"-security") || slices.Contains(s.Suites, suite+"/updates")) {
			security = s.URI
		}
	}
	if archive == "" {
		return "", "", errors.Errorf("no apt source of the host carries the suite %q (read /etc/apt/sources.list and sources.list.d)", suite)
	}
	return archive, security, nil
}
