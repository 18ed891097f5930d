package logging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/errors"
	"go.uber.org/zap"
)

func TestErrorsAreLoggedWithoutStacks(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	log, err := New(Options{File: file, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	err = errors.Wrap(errors.New("disk on fire"), "zfs send tank/a@s1")
	log.With(zap.NamedError("cause", err)).Error("failed", zap.Error(err), zap.String("dataset", "tank/a"))
	_ = log.Sync()
	b, _ := os.ReadFile(file)
	line := string(b)
	for _, want := range []string{`"error":"zfs send tank/a@s1: disk on fire"`, `"cause":"zfs send tank/a@s1: disk on fire"`, `"dataset":"tank/a"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "Verbose") || strings.Contains(line, ".go:") {
		t.Errorf("log line carries a stack: %s", line)
	}
}

// zap writes C1 control characters of field values as they are; the
// logger escapes them, in JSON and console lines alike.
func TestC1IsEscaped(t *testing.T) {
	for _, asJSON := range []bool{true, false} {
		file := filepath.Join(t.TempDir(), "log")
		log, err := New(Options{File: file, JSON: asJSON})
		if err != nil {
			t.Fatal(err)
		}
		log.Info("call failed", zap.String("method", "x\u009b2J\x1b"))
		_ = log.Sync()
		b, _ := os.ReadFile(file)
		if !strings.Contains(string(b), `x\u009b2J\u001b`) || strings.Contains(string(b), "\u009b") {
			t.Errorf("JSON %t: %q", asJSON, b)
		}
	}
}

func TestUnknownLevel(t *testing.T) {
	if _, err := New(Options{Level: "chatty"}); err == nil || !strings.Contains(err.Error(), "chatty") {
		t.Fatalf("New(chatty) = %v", err)
	}
}

type bufSyncer struct{ strings.Builder }

func (*bufSyncer) Sync() error { return nil }

// On a terminal, log lines read like pull's own lines: no time stamps,
// levels as words, fields as key=value, errors without stacks.
func TestHumanLines(t *testing.T) {
	var buf bufSyncer
	log := zap.New(plainErrors{&humanCore{LevelEnabler: zap.InfoLevel, w: &buf}})
	log.With(zap.String("source", "web1")).Warn("rolling back the diverged target", zap.String("target", "bk/a"), zap.String("to", "bk/a@s1"))
	log.Error("replication failed", zap.Error(errors.Wrap(errors.New("disk on fire"), "zfs recv")), zap.Int("n", 3))
	log.Info("creating placeholder", zap.String("dataset", "bk/web1"))
	log.Debug("not shown")
	want := "warning: rolling back the diverged target: source=web1 target=bk/a to=bk/a@s1\n" +
		"error: replication failed: error=\"zfs recv: disk on fire\" n=3\n" +
		"creating placeholder: dataset=bk/web1\n"
	if got := buf.String(); got != want {
		t.Errorf("human lines:\n%s\nwant:\n%s", got, want)
	}

	buf.Reset()
	log = zap.New(&humanCore{LevelEnabler: zap.DebugLevel, w: &buf, clearLine: true})
	log.Debug("hello")
	if got := buf.String(); got != "\r\x1b[Kdebug: hello\n" {
		t.Errorf("terminal line %q", got)
	}
}

// A field's value or a message may quote the other end (a source's error
// text, a name it listed): on a terminal, its control characters would be
// commands. Values that hold any are quoted, with them escaped; the
// message loses them.
func TestHumanLinesArePrintable(t *testing.T) {
	var buf bufSyncer
	log := zap.New(&humanCore{LevelEnabler: zap.InfoLevel, w: &buf})
	log.Warn("peer said \x1b[2Jhi\nthere", zap.String("reason", "bye\x1b]0;owned\x07"), zap.String("c1", "a\u009bb"), zap.String("bytes", "a\x9bb"))
	want := "warning: peer said ?[2Jhi there: reason=\"bye\\x1b]0;owned\\a\" c1=\"a\\u009bb\" bytes=\"a\\x9bb\"\n"
	if got := buf.String(); got != want {
		t.Errorf("human line:\n%q\nwant:\n%q", got, want)
	}
}

func TestHumanIgnoredWithJSONOrFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	log, err := New(Options{File: file, Human: true, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello", zap.String("k", "v"))
	_ = log.Sync()
	b, _ := os.ReadFile(file)
	if !strings.Contains(string(b), "INFO\thello\t{\"k\": \"v\"}") {
		t.Errorf("log file line %q, want zap's console format", b)
	}
}
