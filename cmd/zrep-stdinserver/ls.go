package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/printable"
)

// lsOutput is the document `ls --json` prints.
type lsOutput struct {
	Filesystems []lsFilesystem `json:"filesystems"`
}

type lsFilesystem struct {
	Name     string        `json:"name"`
	Type     string        `json:"type"`
	Versions []api.Version `json:"versions"`
}

func newLsCommand(g *globalFlags) *cobra.Command {
	var (
		conn   connFlags
		asJSON bool
		zfsBin string
	)
	cmd := &cobra.Command{
		Use:   "ls (--ssh USER@HOST | --local --policy FILE --identity NAME) [--json]",
		Short: "List what a key may see on the source: filesystems and their snapshots",
		Long: `List the filesystems (and volumes) a key may see on the source, with their
snapshots and bookmarks: name, guid, createtxg and creation time.

` + connHelp + `

--json prints one document:
  {"filesystems":[{"name":"pool/a","type":"filesystem","versions":[{"name":"pool/a@s1",
   "type":"snapshot","guid":"123...","createtxg":19,"creation":"2026-11-24T23:40:49Z"}]}]}
guids are decimal strings: they are 64-bit numbers.

Exit status: 0 listed, 1 the listing could not be written, 2 bad flags,
3 could not connect to the source or the listing failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			src, closeSrc, err := conn.connect(ctx, zfsBin, log)
			if err != nil {
				return err
			}
			fss, err := src.ListFilesystems(ctx, true)
			if err != nil {
				_ = closeSrc()
				return withExit(exitConnect, err)
			}
			if err := closeSrc(); err != nil {
				log.Warn("closing the session", zap.Error(err))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				doc := lsOutput{Filesystems: []lsFilesystem{}}
				for _, fs := range fss {
					vs := fs.Versions
					if vs == nil {
						vs = []api.Version{}
					}
					doc.Filesystems = append(doc.Filesystems, lsFilesystem{Name: fs.Name, Type: fs.Type, Versions: vs})
				}
				enc := json.NewEncoder(printable.JSON(out))
				enc.SetIndent("", "  ")
				return withExit(exitFailure, enc.Encode(doc))
			}
			return withExit(exitFailure, printTable(out, fss))
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document")
	cmd.Flags().StringVar(&zfsBin, "zfs-bin", "zfs", "with --local: the zfs binary")
	return cmd
}

// printTable prints the listing as a table. The source chose the names and
// types: they lose their control characters (see package printable), which
// would otherwise reach the terminal, or break the table's cells and lines.
func printTable(w io.Writer, fss []api.Filesystem) error {
	p := printable.String
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printf(tw, "NAME\tTYPE\tGUID\tCREATETXG\tCREATION\n")
	for _, fs := range fss {
		printf(tw, "%s\t%s\t\t\t\n", p(fs.Name), p(fs.Type))
		for _, v := range fs.Versions {
			printf(tw, "%s\t%s\t%s\t%d\t%s\n", p(v.Name), p(v.Type), v.GUID, v.CreateTXG, v.Creation.UTC().Format(time.RFC3339))
		}
	}
	return tw.Flush()
}

// printf writes to w; a write error shows when the tabwriter is flushed.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
