// Package pullconfig reads the backup host's configuration: the sources
// that `pull --config` replicates, and where it keeps its state and
// metrics.
//
//	state_dir: /var/lib/zrep                # optional, the default
//	metrics_textfile: /var/lib/prometheus/node-exporter/zrep.prom  # optional
//	jobs: 2                                 # optional: sources pulled at once
//	timeout: 12h                            # optional: default per-source timeout
//	sources:
//	  web1:                                 # the source's name in status, metrics and logs
//	    ssh: backup@web1.example.com
//	    port: 22                            # optional
//	    identity: /root/.ssh/zrep_web1      # optional, as --ssh-identity
//	    ssh_options: ["StrictHostKeyChecking=yes"]  # optional, as --ssh-option
//	    root: backup/web1
//	    datasets: ["tank/data"]             # optional, as --dataset
//	    raw: true                           # optional, as --raw
//	    timeout: 2h                         # optional
//
// The file is read as strictly as the policy file: an unknown key, a
// duplicate key or a value of the wrong kind is an error naming the file
// and line. Durations are Go durations ("90m", "1h30m") with days ("2d")
// allowed in front.
package pullconfig

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// Defaults.
const (
	DefaultStateDir = "/var/lib/zrep"
	// DefaultTimeout bounds one source's pull when the file sets none: long
	// enough for a first full copy of a few TiB, short enough that a source
	// that hangs is noticed the same day.
	DefaultTimeout = 12 * time.Hour
)

// DefaultJobs is how many sources are pulled at once when neither --jobs
// nor the file says: one per core, at least 2 (a pull mostly waits on the
// network and on zfs), at most 4.
func DefaultJobs() int {
	return min(max(runtime.NumCPU(), 2), 4)
}

// Config is a parsed configuration file.
type Config struct {
	File            string // the path it was read from
	StateDir        string
	MetricsTextfile string // "" when not set
	Jobs            int    // 0 when not set
	Timeout         time.Duration
	Sources         []Source // sorted by name
}

// Source is one source host.
type Source struct {
	Name       string
	SSH        string // USER@HOST
	Port       int    // 0: ssh's own
	Identity   string
	SSHOptions []string
	Root       string
	Datasets   []string
	Raw        bool
	Timeout    time.Duration // the file's default when the source sets none
	Line       int           // the line of the source's name
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrap(err, "load config")
	}
	return Parse(data, path)
}

// Source returns the source called name.
func (c *Config) Source(name string) (Source, bool) {
	for _, s := range c.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// Select returns the sources named (all when names is empty), sorted by
// name; an unknown name is an error listing the known ones.
func (c *Config) Select(names []string) ([]Source, error) {
	if len(names) == 0 {
		return c.Sources, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := c.Source(n); !ok {
			known := make([]string, len(c.Sources))
			for i, s := range c.Sources {
				known[i] = s.Name
			}
			return nil, errors.Errorf("%s: no source %q (the file has %s)", c.File, n, strings.Join(known, ", "))
		}
		want[n] = true
	}
	var out []Source
	for _, s := range c.Sources {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// StatePath is the state file of a source under the state directory.
func (c *Config) StatePath(source string) string {
	return filepath.Join(c.StateDir, source+".json")
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ParseDuration reads a Go duration ("90m", "1h30m") with an optional
// number of days in front ("2d", "1d12h"). It must be positive.
func ParseDuration(s string) (time.Duration, error) {
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, errors.Errorf("invalid duration %q", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, errors.Errorf("invalid duration %q (want e.g. 90m, 6h, 2d)", s)
		}
	}
	if days+d <= 0 {
		return 0, errors.Errorf("invalid duration %q: must be more than zero", s)
	}
	return days + d, nil
}

func sortSources(ss []Source) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
}
