package vmlab

import (
	"fmt"
	"io"
	"time"
)

// Log prints what the lab does and how long each phase took.
type Log struct {
	Out io.Writer // progress and the output of the tools run
}

// Printf prints one line prefixed with "openzfs-vm:".
func (l *Log) Printf(format string, args ...any) {
	fmt.Fprintf(l.Out, "openzfs-vm: "+format+"\n", args...)
}

// Phase runs fn as a named phase, printing its start and its duration.
func (l *Log) Phase(name string, fn func() error) error {
	start := time.Now()
	l.Printf("%s ...", name)
	err := fn()
	status := "done"
	if err != nil {
		status = "FAILED"
	}
	l.Printf("%s: %s in %s", name, status, time.Since(start).Round(100*time.Millisecond))
	return err
}
