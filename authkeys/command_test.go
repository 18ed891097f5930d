package authkeys

import (
	"bytes"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

var commandArgsTests = []struct {
	command string
	want    []string
}{
	{`/usr/local/bin/zrep-stdinserver serve --policy "/etc/zrep/policy.yaml" --identity backup1`,
		[]string{"/usr/local/bin/zrep-stdinserver", "serve", "--policy", "/etc/zrep/policy.yaml", "--identity", "backup1"}},
	{"zrep-stdinserver serve --identity backup-a", []string{"zrep-stdinserver", "serve", "--identity", "backup-a"}},
	{"  \tzrep\t serve  ", []string{"zrep", "serve"}},
	{`zrep --identity 'a b'`, []string{"zrep", "--identity", "a b"}},
	{`zrep --x=a'b c'"d e"f`, []string{"zrep", "--x=ab cd ef"}},
	{`zrep '' ""`, []string{"zrep", "", ""}},
	{`zrep 'it'\''s'`, []string{"zrep", "it's"}},
	{`zrep 'single $ ; | * # ~ " \ keeps all'`, []string{"zrep", `single $ ; | * # ~ " \ keeps all`}},
	{`zrep "double ; | * # ~ ' keeps these"`, []string{"zrep", `double ; | * # ~ ' keeps these`}},
	{`zrep "esc \$ \` + "`" + ` \" \\ but not \n \a"`, []string{"zrep", "esc $ ` \" \\ but not \\n \\a"}},
	{`zrep a\ b \; \$x \\ \"`, []string{"zrep", "a b", ";", "$x", `\`, `"`}},
	{`zrep --opt=value a=b`, []string{"zrep", "--opt=value", "a=b"}},
	{`'A=b' zrep`, []string{"A=b", "zrep"}},
	{`"if" zrep`, []string{"if", "zrep"}},
	{`zrep if then time`, []string{"zrep", "if", "then", "time"}},
	{`zrep ünïcode 'é'`, []string{"zrep", "ünïcode", "é"}},
	{`zrep %s ^ @ + , . : -`, []string{"zrep", "%s", "^", "@", "+", ",", ".", ":", "-"}},
}

func TestCommandArgs(t *testing.T) {
	for _, tt := range commandArgsTests {
		got, err := CommandArgs(tt.command)
		if err != nil {
			t.Errorf("CommandArgs(%s): %v", tt.command, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CommandArgs(%s)\n got %q\nwant %q", tt.command, got, tt.want)
		}
	}
}

// TestCommandArgsMatchesSh runs the accepted commands through the shells
// installed (sh, bash, zsh) and checks that they split them into the same
// words.
func TestCommandArgsMatchesSh(t *testing.T) {
	ran := false
	for _, name := range []string{"sh", "bash", "zsh"} {
		sh, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		ran = true
		for _, tt := range commandArgsTests {
			// The command's words become arguments of printf, one per NUL.
			out, err := exec.Command(sh, "-c", `printf '%s\0' `+tt.command).Output()
			if err != nil {
				t.Errorf("%s -c %s: %v", name, tt.command, err)
				continue
			}
			got := strings.Split(string(bytes.TrimSuffix(out, []byte{0})), "\x00")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s split %s\n into %q\n want %q", name, tt.command, got, tt.want)
			}
		}
	}
	if !ran {
		t.Skip("no shell found")
	}
}

func TestCommandArgsRefuses(t *testing.T) {
	tests := []struct {
		command string
		want    string // the reason in the error
	}{
		{"", "is empty"},
		{" \t ", "is empty"},
		{"zrep\nrm -rf /", "newline at byte 4"},
		{"zrep 'a\nb'", "newline at byte 7"},
		{"zrep \r", "control character 0x0d at byte 5"},
		{"zrep \x00", "control character 0x00 at byte 5"},
		{"zrep \x7f", "control character 0x7f at byte 5"},
		{"zrep 'open", "unterminated single quote at byte 5"},
		{`zrep "open`, "unterminated double quote at byte 5"},
		{`zrep "open\"`, "unterminated double quote at byte 5"},
		{`zrep \`, "trailing backslash at byte 5"},
		{`zrep "$HOME"`, `'$' inside double quotes at byte 6`},
		{`zrep "${x}"`, `'$' inside double quotes at byte 6`},
		{"zrep \"`id`\"", "'`' inside double quotes at byte 6"},
		{"if true", `shell reserved word "if"`},
		{"time zrep", `shell reserved word "time"`},
		{"while", `shell reserved word "while"`},
		{"A=b zrep", `variable assignment "A=b"`},
		{`PATH="/x y" zrep`, `variable assignment "PATH=\"/x y\""`},
		{"_x=", `variable assignment "_x="`},
		{"zrep =ls", "unquoted '=' starting a word at byte 5"},
	}
	for _, c := range refusedUnquoted {
		tests = append(tests, struct{ command, want string }{
			"zrep a" + string(c) + "b", "unquoted '" + string(c) + "' at byte 6",
		})
	}
	for _, tt := range tests {
		got, err := CommandArgs(tt.command)
		if err == nil {
			t.Errorf("CommandArgs(%q) = %q; want an error", tt.command, got)
			continue
		}
		if got != nil {
			t.Errorf("CommandArgs(%q) returned words with its error: %q", tt.command, got)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CommandArgs(%q) error = %v; want it to contain %q", tt.command, err, tt.want)
		}
	}
}
