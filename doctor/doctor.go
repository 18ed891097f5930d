// Package doctor checks a zrep setup and says what is wrong in words an
// operator can act on. Each check is a small function that returns
// findings, each with a severity, what was found, and what to do about it;
// the command runs the checks that apply to the host (a source: its policy
// and authorized_keys; a backup host: its configuration, each source's
// session, each target root; on both, the zfs features and the `zfs
// allow` permissions of a user other than root) and exits 0 only when no
// finding is an error.
package doctor

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/zrep/zrep/internal/printable"
)

// Severity says how bad a finding is.
type Severity string

// Severities, from good to bad.
const (
	OK      Severity = "ok"      // checked, and as it should be
	Warning Severity = "warning" // works, but should be changed
	Error   Severity = "error"   // does not work, or is unsafe
)

// Finding is one result of a check.
type Finding struct {
	Check    string   `json:"check"`   // which check: "policy", "authorized_keys", "ssh", "target"...
	Subject  string   `json:"subject"` // what it is about: a file and line, a dataset, a source
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`       // what was found
	Fix      string   `json:"fix,omitempty"` // what to do about it
}

// Check is one check; it returns at least one finding.
type Check func(ctx context.Context) []Finding

// Report is the findings of every check run.
type Report struct {
	Findings []Finding `json:"findings"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
}

// Run runs the checks in order.
func Run(ctx context.Context, checks []Check) *Report {
	r := &Report{Findings: []Finding{}}
	for _, c := range checks {
		for _, f := range c(ctx) {
			r.Findings = append(r.Findings, f)
			switch f.Severity {
			case Error:
				r.Errors++
			case Warning:
				r.Warnings++
			}
		}
	}
	return r
}

// Render writes the findings for people, one per line with its fix below:
//
//	ERROR    authorized_keys /root/.ssh/authorized_keys:3: the zrep key lacks restrict: ...
//	         fix: put restrict first in its options: restrict,command="..."
func Render(w io.Writer, r *Report) error {
	var b strings.Builder
	// A message may quote the other end (a source's error text): every
	// finding's text is printed on its line, without control characters.
	p := printable.String
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-8s %s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Check, p(f.Subject), p(f.Message))
		if f.Fix != "" {
			fmt.Fprintf(&b, "%-8s fix: %s\n", "", p(f.Fix))
		}
	}
	switch {
	case r.Errors > 0:
		fmt.Fprintf(&b, "doctor: %d error(s), %d warning(s): fix the errors above\n", r.Errors, r.Warnings)
	case r.Warnings > 0:
		fmt.Fprintf(&b, "doctor: no errors, %d warning(s)\n", r.Warnings)
	default:
		fmt.Fprintf(&b, "doctor: all is well\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func finding(check, subject string, sev Severity, msg, fix string) Finding {
	return Finding{Check: check, Subject: subject, Severity: sev, Message: msg, Fix: fix}
}
