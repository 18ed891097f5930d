// Package metrics writes the backups' status as Prometheus metrics in the
// text format, for node_exporter's textfile collector: the file is
// replaced atomically, so the collector never reads half of it. The series
// are built with the Prometheus client library and encoded by its encoder.
//
// Per source (label source):
//
//	zrep_source_last_run_timestamp_seconds     when its last pull ended
//	zrep_source_last_run_duration_seconds      how long it took
//	zrep_source_last_run_bytes                 bytes received
//	zrep_source_last_run_outcome{outcome}      1 for the last pull's outcome (ok, failed, timed-out, unreachable), 0 for the others
//	zrep_source_last_success_timestamp_seconds when a pull last ended ok
//	zrep_source_failures_total                 pulls that did not end ok
//
// Per dataset (labels source, dataset):
//
//	zrep_dataset_newest_snapshot_timestamp_seconds  creation time of the newest snapshot on the backup
//	zrep_dataset_last_success_timestamp_seconds     when it was last brought up to date
//	zrep_dataset_last_run_bytes                     bytes received by the last pull
//	zrep_dataset_last_run_duration_seconds          how long the last pull took on it
//	zrep_dataset_last_run_success                   1 if the last pull brought it up to date, else 0
//	zrep_dataset_failures_total                     pulls that failed on it
//
// A series whose value is unknown (never succeeded, no snapshot) is left
// out rather than written as 0. Alert on time() - newest_snapshot.
package metrics

import (
	"bytes"
	"io"

	"github.com/pkg/errors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/zrep/zrep/internal/atomicfile"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/status"
)

type vecs struct {
	runTime, runDuration, runBytes, runOutcome, lastSuccess *prometheus.GaugeVec
	failures                                                *prometheus.CounterVec
	dsNewest, dsSuccess, dsBytes, dsDuration, dsOK          *prometheus.GaugeVec
	dsFailures                                              *prometheus.CounterVec
}

func newVecs(reg *prometheus.Registry) *vecs {
	src := []string{"source"}
	ds := []string{"source", "dataset"}
	g := func(name, help string, labels []string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	c := func(name, help string, labels []string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	return &vecs{
		runTime:     g("zrep_source_last_run_timestamp_seconds", "When the last pull of the source ended.", src),
		runDuration: g("zrep_source_last_run_duration_seconds", "How long the last pull of the source took.", src),
		runBytes:    g("zrep_source_last_run_bytes", "Bytes received by the last pull of the source.", src),
		runOutcome:  g("zrep_source_last_run_outcome", "1 for the outcome of the last pull of the source (ok, failed, timed-out, unreachable), 0 for the others.", []string{"source", "outcome"}),
		lastSuccess: g("zrep_source_last_success_timestamp_seconds", "When a pull of the source last ended ok.", src),
		failures:    c("zrep_source_failures_total", "Pulls of the source that did not end ok.", src),
		dsNewest:    g("zrep_dataset_newest_snapshot_timestamp_seconds", "Creation time of the newest snapshot of the dataset on the backup.", ds),
		dsSuccess:   g("zrep_dataset_last_success_timestamp_seconds", "When a pull last brought the dataset up to date.", ds),
		dsBytes:     g("zrep_dataset_last_run_bytes", "Bytes of the dataset received by the last pull that tried it.", ds),
		dsDuration:  g("zrep_dataset_last_run_duration_seconds", "How long the last pull that tried the dataset took on it.", ds),
		dsOK:        g("zrep_dataset_last_run_success", "1 if the last pull that tried the dataset brought it up to date, else 0.", ds),
		dsFailures:  c("zrep_dataset_failures_total", "Pulls that failed on the dataset.", ds),
	}
}

// Gather builds the metrics of a status report.
func Gather(r *status.Report) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	v := newVecs(reg)
	for _, s := range r.Sources {
		if run := s.LastRun; run != nil {
			v.runTime.WithLabelValues(s.Name).Set(unix(run.Finished.Unix()))
			v.runDuration.WithLabelValues(s.Name).Set(run.Duration.Seconds())
			v.runBytes.WithLabelValues(s.Name).Set(float64(run.Bytes))
			for _, o := range pullstate.Outcomes {
				val := 0.0
				if o == run.Outcome {
					val = 1
				}
				v.runOutcome.WithLabelValues(s.Name, string(o)).Set(val)
			}
			if !run.LastSuccess.IsZero() {
				v.lastSuccess.WithLabelValues(s.Name).Set(unix(run.LastSuccess.Unix()))
			}
			v.failures.WithLabelValues(s.Name).Add(float64(run.Failures))
		}
		for _, d := range s.Datasets {
			if d.NewestSnapshot != "" {
				v.dsNewest.WithLabelValues(s.Name, d.Dataset).Set(unix(d.NewestCreated.Unix()))
			}
			rec := d.LastRun
			if rec == nil {
				continue
			}
			if !rec.LastSuccess.IsZero() {
				v.dsSuccess.WithLabelValues(s.Name, d.Dataset).Set(unix(rec.LastSuccess.Unix()))
			}
			v.dsBytes.WithLabelValues(s.Name, d.Dataset).Set(float64(rec.Bytes))
			v.dsDuration.WithLabelValues(s.Name, d.Dataset).Set(rec.Duration.Seconds())
			ok := 1.0
			if rec.Outcome.Failed() {
				ok = 0
			}
			v.dsOK.WithLabelValues(s.Name, d.Dataset).Set(ok)
			v.dsFailures.WithLabelValues(s.Name, d.Dataset).Add(float64(rec.Failures))
		}
	}
	return reg
}

func unix(sec int64) float64 { return float64(sec) }

// Encode writes the metrics of r in the Prometheus text format.
func Encode(w io.Writer, r *status.Report) error {
	families, err := Gather(r).Gather()
	if err != nil {
		return errors.Wrap(err, "gathering the metrics")
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range families {
		if err := enc.Encode(mf); err != nil {
			return errors.Wrap(err, "encoding the metrics")
		}
	}
	return nil
}

// WriteTextfile writes the metrics of r to path atomically (mode 0644:
// node_exporter often runs as another user).
func WriteTextfile(path string, r *status.Report) error {
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, buf.Bytes(), 0o644)
}
