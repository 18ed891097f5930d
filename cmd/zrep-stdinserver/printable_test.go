package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/printable/printabletest"
)

// TestLsTableIsPrintable: the names and types ls prints come from the
// source, which may lie. Terminal escape sequences, a carriage return or a
// tab in them reach the table with their control characters replaced,
// and the table keeps its rows.
func TestLsTableIsPrintable(t *testing.T) {
	const esc = "\x1b]0;owned\x07\x1b[2J\r\t\n\u009b"
	fss := []api.Filesystem{
		{Name: "tank", Type: "filesystem"},
		{Name: "tank/a" + esc, Type: "filesystem" + esc, Versions: []api.Version{
			{Name: "tank/a" + esc + "@s1", Type: "snapshot" + esc, GUID: 7, CreateTXG: 5},
		}},
	}
	var buf bytes.Buffer
	if err := printTable(&buf, fss); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	printabletest.Lines(t, out, 4) // the header and three rows
	if !strings.Contains(out, "tank/a?]0;owned??[2J?  ?@s1") {
		t.Errorf("the snapshot's name is not shown with its control characters replaced:\n%s", out)
	}
}

// TestPrintErrorIsPrintable: the error a command ends with may quote the
// other end; it keeps its lines (zfs's own messages have several) and
// loses every other control character.
func TestPrintErrorIsPrintable(t *testing.T) {
	var buf bytes.Buffer
	printError(&buf, errors.New("listing the source's datasets: \x1b]0;owned\x07\r\u009b\u202e\ncannot open 'x':\tno such pool"))
	want := "zrep-stdinserver: listing the source's datasets: ?]0;owned????\ncannot open 'x':\tno such pool\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
