package vmlab

import (
	"io"
	"strings"
	"testing"
)

func TestMainRejectsBadCommandLines(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "usage: openzfs-vm VERSION"},
		{[]string{"2.3"}, "usage: openzfs-vm VERSION"},
		{[]string{"2.2", "start"}, `unknown OpenZFS version "2.2" (have 2.1, 2.3)`},
		{[]string{"all", "start"}, `"all" works with build only`},
		{[]string{"2.3", "reboot"}, `unknown command "reboot"`},
		{[]string{"2.3", "stop", "now"}, `unknown command "stop now"`},
	} {
		err := Main(tt.args, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) || ExitCode(err) != 2 {
			t.Errorf("Main(%q) = %v (exit %d), want exit 2 with %q", tt.args, err, ExitCode(err), tt.want)
		}
	}
}
