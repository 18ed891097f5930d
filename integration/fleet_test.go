package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zrep/zrep/internal/testenv"
	"github.com/zrep/zrep/internal/testtools"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/status"
)

// fleet is a source pool with one dataset per source identity, a backup
// pool, and a pull configuration of four sources, each behind its own
// embedded sshd or none:
//
//	web1, web2  serve SRC/a and SRC/b: they complete
//	hang        serves SRC/c through a zfs whose send never ends: its
//	            timeout (20s) ends it
//	down        a port where nothing listens: unreachable
type fleet struct {
	src, dst *testenv.Pool
	dir      string
	config   string
	stateDir string
	metrics  string
	datasets map[string]string // source name -> its source dataset
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	f := &fleet{src: testenv.NewPool(t, "fsrc", 512), dst: testenv.NewPool(t, "fdst", 512), dir: t.TempDir()}
	s := f.src.Name
	f.datasets = map[string]string{"web1": s + "/a", "web2": s + "/b", "hang": s + "/c"}
	for _, name := range []string{"web1", "web2", "hang"} {
		ds := f.datasets[name]
		testenv.Run(t, "zfs", "create", ds)
		testenv.WriteRandom(t, filepath.Join(f.src.Mountpoint, strings.TrimPrefix(ds, s+"/"), "file"), 256<<10)
		testenv.Run(t, "zfs", "snapshot", ds+"@s1")
	}
	policy := filepath.Join(f.dir, "policy.yaml")
	writeFile(t, policy, fmt.Sprintf("identities:\n  web1:\n    datasets: {%q: true}\n  web2:\n    datasets: {%q: true}\n  hang:\n    datasets: {%q: true}\n",
		s+"/a<", s+"/b<", s+"/c<"))
	// A zfs for the hanging source whose sends never end.
	realZFS, err := exec.LookPath("zfs")
	if err != nil {
		t.Fatal(err)
	}
	hangingZFS := filepath.Join(f.dir, "hanging-zfs")
	writeFile(t, hangingZFS, "#!/bin/sh\nif [ \"$1\" = send ]; then exec sleep 600; fi\nexec "+realZFS+" \"$@\"\n")
	if err := os.Chmod(hangingZFS, 0o755); err != nil {
		t.Fatal(err)
	}

	f.stateDir = filepath.Join(f.dir, "state")
	f.metrics = filepath.Join(f.dir, "zrep.prom")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "state_dir: %s\nmetrics_textfile: %s\njobs: 4\nsources:\n", f.stateDir, f.metrics)
	for _, name := range []string{"web1", "web2", "hang"} {
		key, pub := testenv.NewClientKey(t, f.dir)
		log := filepath.Join(f.dir, "serve-"+name+".log")
		command := fmt.Sprintf("%s serve --policy %s --identity %s --log-file %s --log-level debug", binary, policy, name, log)
		if name == "hang" {
			command += " --zfs-bin " + hangingZFS
		}
		ak := filepath.Join(f.dir, "authorized_keys."+name)
		writeFile(t, ak, fmt.Sprintf("restrict,command=%q %s %s@test\n", command, pub, name))
		e := startEmbedded(t, f.dir, ak)
		fmt.Fprintf(&cfg, "  %s:\n    ssh: backup@127.0.0.1\n    port: %d\n    identity: %s\n    ssh_options: [%s]\n    root: %s/%s\n",
			name, e.port, key, quoteList(e.sshOptions), f.dst.Name, name)
		if name == "hang" {
			cfg.WriteString("    timeout: 20s\n")
		}
	}
	key, _ := testenv.NewClientKey(t, f.dir)
	fmt.Fprintf(&cfg, "  down:\n    ssh: backup@127.0.0.1\n    port: %d\n    identity: %s\n    ssh_options: [\"StrictHostKeyChecking=yes\"]\n    root: %s/down\n",
		freePort(t), key, f.dst.Name)
	f.config = filepath.Join(f.dir, "pull.yaml")
	writeFile(t, f.config, cfg.String())
	return f
}

func quoteList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPullConfig pulls four sources at once: two complete, one is
// unreachable, one hangs until its timeout; the output, the exit status,
// the state files, status and the metrics say exactly that.
func TestPullConfig(t *testing.T) {
	f := newFleet(t)
	r := zrep(t, "pull", "--config", f.config)
	if r.code != 3 {
		t.Fatalf("pull --config: exit %d, want 3 (the worst: unreachable)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"[web1] source OK in ", "[web2] source OK in ",
		"[down] source UNREACHABLE after ", "connection refused",
		"[hang] source TIMED-OUT after ", "timed out after 20s (the source's timeout)",
		"sources: 2 ok, 1 timed-out, 1 unreachable\n",
		"[web1] OK         " + f.datasets["web1"] + " -> " + f.dst.Name + "/web1/" + f.datasets["web1"],
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(line, "[") && !strings.HasPrefix(line, "sources: ") {
			t.Errorf("a line without its source: %q", line)
		}
	}
	for _, name := range []string{"web1", "web2"} {
		sameSnapshots(t, f.datasets[name], f.dst.Name+"/"+name+"/"+f.datasets[name])
	}
	if snaps := testenv.Snapshots(t, f.dst.Name+"/hang/"+f.datasets["hang"]); len(snaps) != 0 {
		t.Errorf("the hanging source's dataset was received: %v", snaps)
	}

	// The state files.
	for name, want := range map[string]pullstate.Outcome{"web1": pullstate.OK, "web2": pullstate.OK, "hang": pullstate.TimedOut, "down": pullstate.Unreachable} {
		st, err := pullstate.Load(filepath.Join(f.stateDir, name+".json"))
		if err != nil || st == nil {
			t.Fatalf("%s: state %v, %v", name, st, err)
		}
		if st.Outcome != want || st.Root != f.dst.Name+"/"+name {
			t.Errorf("%s: state outcome %s root %s, want %s", name, st.Outcome, st.Root, want)
		}
		if want == pullstate.OK && (st.Error != "" || len(st.Datasets) != 1 || st.Datasets[0].Snapshots != 1 || st.Bytes == 0 || st.LastSuccess.IsZero()) {
			t.Errorf("%s: state %+v", name, st)
		}
		if want != pullstate.OK && (st.Error == "" || st.Failures != 1 || !st.LastSuccess.IsZero()) {
			t.Errorf("%s: state %+v", name, st)
		}
	}

	// status: the lag is the age of the received snapshot, from zfs itself.
	r = zrep(t, "status", "--config", f.config, "--json")
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep status.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	created := creation(t, f.datasets["web1"]+"@s1")
	bySource := map[string]status.Source{}
	for _, s := range rep.Sources {
		bySource[s.Name] = s
	}
	web1 := bySource["web1"]
	if len(web1.Datasets) != 1 || web1.LastRun == nil || web1.LastRun.Outcome != pullstate.OK {
		t.Fatalf("status of web1: %+v", web1)
	}
	d := web1.Datasets[0]
	if d.Dataset != f.datasets["web1"] || d.NewestSnapshot != f.dst.Name+"/web1/"+f.datasets["web1"]+"@s1" || !d.NewestCreated.Equal(created) ||
		d.Lag != rep.Time.Sub(created) {
		t.Errorf("web1's dataset: %+v; want created %v, lag %v", d, created, rep.Time.Sub(created))
	}
	// hang's dataset was tried and failed: no snapshot, the reason kept.
	if h := bySource["hang"]; h.LastRun == nil || h.LastRun.Outcome != pullstate.TimedOut || len(h.Datasets) != 1 ||
		h.Datasets[0].NewestSnapshot != "" || h.Datasets[0].LastRun == nil || h.Datasets[0].LastRun.Error == "" {
		t.Errorf("status of hang: %+v", h)
	}
	if dn := bySource["down"]; dn.LastRun == nil || dn.LastRun.Outcome != pullstate.Unreachable || !strings.Contains(dn.LastRun.Error, "connection refused") {
		t.Errorf("status of down: %+v", dn)
	}

	// --warn-lag: the hanging and unreachable sources have nothing; web1's
	// snapshot is younger than a day, and (once it is) older than a second.
	if r := zrep(t, "status", "--config", f.config, "--warn-lag", "1d"); r.code != 1 || !strings.Contains(r.stdout, "LAGGING: nothing is backed up") ||
		!strings.Contains(r.stdout, "LAGGING (no snapshot)") {
		t.Errorf("status --warn-lag 1d: exit %d\n%s", r.code, r.stdout)
	}
	if r := zrep(t, "status", "--config", f.config, "--source", "web1", "--source", "web2", "--warn-lag", "1d"); r.code != 0 {
		t.Errorf("status --warn-lag 1d of web1 and web2: exit %d\n%s", r.code, r.stdout)
	}
	for time.Since(created) < 2*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if r := zrep(t, "status", "--config", f.config, "--source", "web1", "--warn-lag", "1s"); r.code != 1 || !strings.Contains(r.stdout, "LAGGING (older than 1s)") {
		t.Errorf("status --warn-lag 1s of web1: exit %d\n%s", r.code, r.stdout)
	}

	// The metrics: promtool accepts them, and they hold the same facts.
	// (promtool is required in CI; the metrics package checks with it too.)
	if promtool := testtools.Optional(t, "promtool", "prometheus"); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		in, err := os.Open(f.metrics)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = in
		if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		in.Close()
	}
	m := readMetrics(t, f.metrics)
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`zrep_source_last_run_outcome{outcome="ok",source="web1"}`, 1},
		{`zrep_source_last_run_outcome{outcome="timed-out",source="hang"}`, 1},
		{`zrep_source_last_run_outcome{outcome="ok",source="hang"}`, 0},
		{`zrep_source_last_run_outcome{outcome="unreachable",source="down"}`, 1},
		{`zrep_source_failures_total{source="down"}`, 1},
		{`zrep_source_failures_total{source="web2"}`, 0},
		{fmt.Sprintf(`zrep_dataset_newest_snapshot_timestamp_seconds{dataset=%q,source="web1"}`, f.datasets["web1"]), float64(created.Unix())},
		{fmt.Sprintf(`zrep_dataset_last_run_success{dataset=%q,source="web2"}`, f.datasets["web2"]), 1},
	} {
		if got, ok := m[tt.series]; !ok || got != tt.want {
			t.Errorf("%s = %v (present %t), want %v", tt.series, got, ok, tt.want)
		}
	}
	for series := range m {
		if strings.Contains(series, `source="hang"`) && strings.HasPrefix(series, "zrep_dataset_newest_snapshot") {
			t.Errorf("a snapshot of the hanging source in the metrics: %s", series)
		}
	}

	// --source pulls only those named; the others' state stays.
	before, _ := os.ReadFile(filepath.Join(f.stateDir, "down.json"))
	testenv.Run(t, "zfs", "snapshot", f.datasets["web1"]+"@s2")
	r = zrep(t, "pull", "--config", f.config, "--source", "web1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"source":"web1"`) || strings.Contains(r.stdout, `"source":"web2"`) ||
		!strings.Contains(r.stdout, `"type":"source_done"`) {
		t.Errorf("pull --source web1 --json: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	sameSnapshots(t, f.datasets["web1"], f.dst.Name+"/web1/"+f.datasets["web1"])
	if after, _ := os.ReadFile(filepath.Join(f.stateDir, "down.json")); string(after) != string(before) {
		t.Error("pull --source web1 changed down's state")
	}
	// The metrics still cover every source.
	if m := readMetrics(t, f.metrics); m[`zrep_source_last_run_outcome{outcome="unreachable",source="down"}`] != 1 {
		t.Errorf("after pull --source web1, the metrics lost down: %v", m)
	}
}

// creation is a snapshot's creation time, from zfs.
func creation(t *testing.T, snapshot string) time.Time {
	t.Helper()
	out := strings.TrimSpace(testenv.Run(t, "zfs", "get", "-H", "-p", "-o", "value", "creation", snapshot))
	sec, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("creation of %s: %q", snapshot, out)
	}
	return time.Unix(sec, 0).UTC()
}

// readMetrics parses a metrics file into series (name{labels}) -> value.
func readMetrics(t *testing.T, path string) map[string]float64 {
	t.Helper()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
