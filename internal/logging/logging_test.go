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

func TestUnknownLevel(t *testing.T) {
	if _, err := New(Options{Level: "chatty"}); err == nil || !strings.Contains(err.Error(), "chatty") {
		t.Fatalf("New(chatty) = %v", err)
	}
}
