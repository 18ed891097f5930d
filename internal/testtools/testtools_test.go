package testtools

import (
	"testing"
)

func TestOptional(t *testing.T) {
	t.Setenv(RequireToolsEnv, "")
	if got := Optional(t, "zrep-no-such-program", "nothing"); got != "" {
		t.Errorf("Optional of a missing program = %q", got)
	}
	if got := Optional(t, "sh", "dash"); got == "" {
		t.Error("Optional(sh) found nothing")
	}
	if got := Require(t, "sh", "dash"); got == "" {
		t.Error("Require(sh) found nothing")
	}
}
