package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/pullstate"
	"github.com/zrep/zrep/replication"
)

// Render writes the report for people: per source a line on its last run,
// then a table of its datasets, then why each failed dataset failed.
func Render(w io.Writer, r *Report) error {
	var b strings.Builder
	for i, s := range r.Sources {
		if i > 0 {
			b.WriteByte('\n')
		}
		renderSource(&b, r, s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderSource(b *strings.Builder, r *Report, s Source) {
	fmt.Fprintf(b, "%s -> %s: ", s.Name, s.Root)
	if run := s.LastRun; run != nil {
		fmt.Fprintf(b, "last run %s (%s ago), %s in %s, %s",
			stamp(run.Finished), Age(r.Time.Sub(run.Finished)), strings.ToUpper(string(run.Outcome)),
			run.Duration.Round(time.Second), replication.HumanBytes(run.Bytes))
		if run.Outcome != pullstate.OK {
			if run.LastSuccess.IsZero() {
				b.WriteString(", never succeeded")
			} else {
				fmt.Fprintf(b, ", last success %s ago", Age(r.Time.Sub(run.LastSuccess)))
			}
		}
		b.WriteByte('\n')
		if run.Error != "" {
			fmt.Fprintf(b, "  why: %s\n", oneLine(run.Error))
		}
	} else {
		b.WriteString("never pulled (no state file)\n")
	}
	if s.Error != "" {
		fmt.Fprintf(b, "  status incomplete: %s\n", oneLine(s.Error))
	}
	if len(s.Datasets) == 0 {
		fmt.Fprintf(b, "  no dataset received under %s\n", s.Root)
		if r.WarnLag > 0 {
			fmt.Fprintf(b, "  LAGGING: nothing is backed up\n")
		}
		return
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 4, 2, ' ', tabwriter.DiscardEmptyColumns)
	fmt.Fprintf(tw, "  DATASET\tNEWEST SNAPSHOT\tAGE\tLAST RUN\t\n")
	var why []string
	for _, d := range s.Datasets {
		snap, age := "-", "-"
		if d.NewestSnapshot != "" {
			snap = "@" + d.NewestSnapshot[strings.IndexByte(d.NewestSnapshot, '@')+1:]
			snap += " (" + stamp(d.NewestCreated) + ")"
			age = Age(d.Lag)
		}
		last := "-"
		if rec := d.LastRun; rec != nil {
			last = string(rec.Outcome)
			if rec.Outcome == replication.OutcomeReplicated {
				last += fmt.Sprintf(", %d snapshot(s), %s", rec.Snapshots, replication.HumanBytes(rec.Bytes))
			}
			if rec.Error != "" {
				why = append(why, fmt.Sprintf("  %s: %s", printable.String(d.Dataset), oneLine(strings.TrimPrefix(rec.Error, d.Dataset+": "))))
			}
		}
		flag := ""
		if d.Lagging {
			flag = "LAGGING"
			if d.NewestSnapshot == "" {
				flag += " (no snapshot)"
			} else {
				flag += fmt.Sprintf(" (older than %s)", Age(r.WarnLag))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", printable.String(d.Dataset), printable.String(snap), age, printable.String(last), flag)
	}
	_ = tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		if line != "" {
			b.WriteString(strings.TrimRight(line, " \n") + "\n")
		}
	}
	for _, line := range why {
		b.WriteString(line + "\n")
	}
}

// stamp formats a time in UTC to the second.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// Age formats a duration as a person reads an age: "40s", "12m", "5h3m",
// "3d2h", "2d".
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days := int(d.Hours()) / 24
	if h := int(d.Hours()) - 24*days; h > 0 {
		return fmt.Sprintf("%dd%dh", days, h)
	}
	return fmt.Sprintf("%dd", days)
}

// oneLine keeps an error on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(printable.String(s)), " ")
}
