package pullconfig

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const example = `# the backup host's sources
state_dir: /srv/zrep/state
metrics_textfile: /var/lib/prometheus/node-exporter/zrep.prom
jobs: 3
timeout: 1d6h
sources:
  web1:
    ssh: backup@web1.example.com
    port: 2222
    identity: /root/.ssh/zrep_web1
    ssh_options: ["StrictHostKeyChecking=yes"]
    root: backup/web1
    datasets: ["tank/data", "tank/vm"]
    raw: true
    timeout: 90m
  db:
    ssh: db.example.com
    root: backup/db
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(example), "pull.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File: "pull.yaml", StateDir: "/srv/zrep/state", MetricsTextfile: "/var/lib/prometheus/node-exporter/zrep.prom",
		Jobs: 3, Timeout: 30 * time.Hour,
		Sources: []Source{
			{Name: "db", SSH: "db.example.com", Root: "backup/db", Timeout: 30 * time.Hour, Line: 16},
			{Name: "web1", SSH: "backup@web1.example.com", Port: 2222, Identity: "/root/.ssh/zrep_web1",
				SSHOptions: []string{"StrictHostKeyChecking=yes"}, Root: "backup/web1", Datasets: []string{"tank/data", "tank/vm"},
				Raw: true, Timeout: 90 * time.Minute, Line: 7},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", c, want)
	}
	if got := c.StatePath("web1"); got != "/srv/zrep/state/web1.json" {
		t.Errorf("StatePath = %q", got)
	}
	sel, err := c.Select([]string{"web1"})
	if err != nil || len(sel) != 1 || sel[0].Name != "web1" {
		t.Errorf("Select(web1) = %v, %v", sel, err)
	}
	if _, err := c.Select([]string{"nope"}); err == nil || err.Error() != `pull.yaml: no source "nope" (the file has db, web1)` {
		t.Errorf("Select(nope): %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte("sources:\n  a: {ssh: h, root: bk/a}\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != DefaultStateDir || c.MetricsTextfile != "" || c.Jobs != 0 || c.Timeout != DefaultTimeout || c.Sources[0].Timeout != DefaultTimeout {
		t.Errorf("defaults: %+v", c)
	}
	if j := DefaultJobs(); j < 2 || j > 4 {
		t.Errorf("DefaultJobs() = %d", j)
	}
}

// src builds a file with one source "s" whose mapping holds the lines
// given; the first of them is line 3.
func src(lines ...string) string {
	return "sources:\n  s:\n    " + strings.Join(lines, "\n    ") + "\n"
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ name, text, want string }{
		{"empty", "", `p.yaml: no sources defined (empty file)`},
		{"bad yaml", "sources: [\n", `p.yaml:1: invalid YAML: did not find expected node content`},
		{"no sources", "jobs: 2\n", `p.yaml:1: no sources defined (missing key "sources")`},
		{"empty sources", "sources: {}\n", `p.yaml:1: no sources defined`},
		{"sources list", "sources:\n  - a\n", `p.yaml:2: "sources" must be a mapping of source names, not a sequence`},
		{"top sequence", "- a\n", `p.yaml:1: top level must be a mapping with the key "sources", not a sequence`},
		{"unknown top key", "source: {}\n", `p.yaml:1: unknown key "source" (the top-level keys are state_dir, metrics_textfile, jobs, timeout, sources)`},
		{"duplicate source", "sources:\n  a: {ssh: h, root: b/a}\n  a: {ssh: h, root: b/b}\n", `p.yaml:3: duplicate source name "a" (first on line 2)`},
		{"bad source name", "sources:\n  \"web 1\": {ssh: h, root: b/a}\n", `p.yaml:2: source name "web 1": use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit): it names the state file and the metrics`},
		{"dotdot name", "sources:\n  ..: {ssh: h, root: b/a}\n", `p.yaml:2: source name "..": use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit): it names the state file and the metrics`},
		{"empty source", "sources:\n  s:\n", `p.yaml:2: source "s": empty: it needs at least "ssh" and "root"`},
		{"source scalar", "sources:\n  s: web1\n", `p.yaml:2: source "s": must be a mapping of ssh, port, identity, ssh_options, root, datasets, raw, timeout, not "web1" (str)`},
		{"unknown source key", src("ssh: h", "root: b/s", "ssh_option: [x=y]"), `p.yaml:5: source "s": unknown key "ssh_option" (the keys of a source are ssh, port, identity, ssh_options, root, datasets, raw, timeout)`},
		{"missing ssh", src("root: b/s"), `p.yaml:2: source "s": missing "ssh: USER@HOST"`},
		{"missing root", src("ssh: h"), `p.yaml:2: source "s": missing "root: LOCAL_DATASET" (where its datasets are received)`},
		{"ssh number", src("ssh: 12", "root: b/s"), `p.yaml:3: source "s": value of "ssh" must be a non-empty string, not "12" (int)`},
		{"ssh option-like", src("ssh: -oProxyCommand=x", "root: b/s"), `p.yaml:3: source "s": ssh destination "-oProxyCommand=x": must not start with '-'`},
		{"port string", src("ssh: h", "root: b/s", "port: \"22\""), `p.yaml:5: source "s": value of "port" must be a whole number, not "22" (str)`},
		{"port range", src("ssh: h", "root: b/s", "port: 70000"), `p.yaml:5: source "s": port 70000 is out of range 1-65535`},
		{"relative identity", src("ssh: h", "root: b/s", "identity: id_ed25519"), `p.yaml:5: source "s": identity must be an absolute path, not "id_ed25519"`},
		{"ssh_options scalar", src("ssh: h", "root: b/s", "ssh_options: StrictHostKeyChecking=yes"), `p.yaml:5: source "s": value of "ssh_options" must be a list of strings, not "StrictHostKeyChecking=yes" (str)`},
		{"ssh_options malformed", src("ssh: h", "root: b/s", "ssh_options: [NoEquals]"), `p.yaml:3: source "s": ssh h: option "NoEquals": want Key=Value`},
		{"bad root", src("ssh: h", "root: /b/s"), `p.yaml:4: source "s": root: invalid name "/b/s": leading '/'`},
		{"bad dataset", src("ssh: h", "root: b/s", "datasets: [tank/a, tank/b@x]"), `p.yaml:5: source "s": datasets: invalid name "tank/b@x": '@' is not allowed in a dataset name`},
		{"dataset number", src("ssh: h", "root: b/s", "datasets: [tank, 3]"), `p.yaml:5: source "s": items of "datasets" must be non-empty strings, not "3" (int)`},
		{"raw yes", src("ssh: h", "root: b/s", "raw: yes"), `p.yaml:5: source "s": value of "raw" must be true or false, not "yes" (str)`},
		{"timeout number", src("ssh: h", "root: b/s", "timeout: 60"), `p.yaml:5: source "s": timeout must be a duration such as 90m, 6h or 2d, not "60" (int)`},
		{"timeout bad", src("ssh: h", "root: b/s", "timeout: 1 hour"), `p.yaml:5: source "s": timeout: invalid duration "1 hour" (want e.g. 90m, 6h, 2d)`},
		{"timeout zero", "timeout: 0s\nsources: {s: {ssh: h, root: b/s}}\n", `p.yaml:1: timeout: invalid duration "0s": must be more than zero`},
		{"jobs zero", "jobs: 0\nsources: {s: {ssh: h, root: b/s}}\n", `p.yaml:1: jobs must be between 1 and 64, not 0`},
		{"jobs string", "jobs: many\nsources: {s: {ssh: h, root: b/s}}\n", `p.yaml:1: value of "jobs" must be a whole number, not "many" (str)`},
		{"state_dir relative", "state_dir: state\nsources: {s: {ssh: h, root: b/s}}\n", `p.yaml:1: state_dir must be an absolute path, not "state"`},
		{"metrics null", "metrics_textfile:\nsources: {s: {ssh: h, root: b/s}}\n", `p.yaml:1: value of "metrics_textfile" must be a non-empty string, not null`},
		{"same root", "sources:\n  a: {ssh: h, root: b/x}\n  b: {ssh: h, root: b/x}\n", `p.yaml:3: source "b": root b/x overlaps root b/x of source "a" (line 2): give each source its own tree`},
		{"nested root", "sources:\n  a: {ssh: h, root: b/x}\n  b: {ssh: h, root: b/x/y}\n", `p.yaml:3: source "b": root b/x/y overlaps root b/x of source "a" (line 2): give each source its own tree`},
		{"merge key", "sources:\n  s:\n    <<: {ssh: h}\n    root: b/s\n", `p.yaml:3: source "s": merge keys (<<) are not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.text), "p.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded: %+v; want %q", c, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "6h": 6 * time.Hour, "2d": 48 * time.Hour, "1d12h": 36 * time.Hour, "1.5h": 90 * time.Minute, "30s": 30 * time.Second,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1h", "0", "1x", "h1d", "2dd", "1d-30h"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}
