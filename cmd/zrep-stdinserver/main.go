// Command zrep-stdinserver replicates ZFS snapshots between hosts over SSH.
// Its source endpoint (`serve`) is safe to hand to a backup key: forced by
// sshd, it lists and sends only the datasets its policy allows.
//
// This package holds flags and wiring only; see the packages it imports.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/zrep/zrep/internal/logging"
	"github.com/zrep/zrep/internal/printable"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses shared by the subcommands; each subcommand's help says
// which it uses.
const (
	exitOK      = 0
	exitFailure = 1 // the job failed (a session error, a dataset that failed)
	exitUsage   = 2 // bad flags or configuration: nothing was done
	exitConnect = 3 // could not connect to or talk to the source
)

// exitError carries the exit status a failure should produce.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// silentExit is an exit status whose explanation was already printed.
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var silent silentExit
	if errors.As(err, &silent) {
		return int(silent)
	}
	printError(os.Stderr, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage // cobra's own errors: unknown command or flag
}

// printError prints the error a command ended with. It may quote the other
// end (its error text, a name it listed): it loses every control character
// but its newlines and tabs (see package printable).
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "zrep-stdinserver: %s\n", printable.Text(err.Error()))
}

// globalFlags are the flags every subcommand has.
type globalFlags struct {
	logLevel string
	logFile  string
	logJSON  bool
}

// logger builds the logger: on a terminal, plain lines that read like the
// command's own output; else zap's console lines, or JSON with --log-json.
func (g *globalFlags) logger() (*zap.Logger, error) {
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	log, err := logging.New(logging.Options{Level: g.logLevel, File: g.logFile, JSON: g.logJSON, Human: tty, Terminal: tty})
	return log, withExit(exitUsage, err)
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "zrep-stdinserver",
		Short: "Replicate ZFS snapshots between hosts over SSH",
		Long: `zrep replicates ZFS snapshots from a source host to a backup host over SSH.

On the source, sshd starts "zrep-stdinserver serve" as the forced command of
the backup host's key (see authorized_keys.example): the key can then list and
"zfs send" exactly the datasets its policy allows, and nothing else. On the
backup host, "zrep-stdinserver pull" connects with the system ssh, plans full
or incremental transfers by snapshot guid, and receives them with "zfs recv".

Logs go to stderr (or --log-file), never to stdout: on a terminal as plain
lines like the command's own ("warning: ...: key=value"), else as time-stamped
lines, or one JSON object per line with --log-json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate("zrep-stdinserver {{.Version}}\n")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFile, "log-file", "", "append logs to this file instead of stderr")
	root.PersistentFlags().BoolVar(&g.logJSON, "log-json", false, "log one JSON object per line")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withExit(exitUsage, fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
	})
	root.AddCommand(
		newVersionCommand(),
		newServeCommand(g),
		newSSHDCommand(g),
		newPolicyCommand(),
		newLsCommand(g),
		newPullCommand(g),
		newStatusCommand(g),
		newDoctorCommand(g),
		newPushCommand(g),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "zrep-stdinserver %s\n", version)
			return nil
		},
	}
}
