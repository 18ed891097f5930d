package authkeys

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors name the
// source, and that every entry it returns is found again by Lookup.
func FuzzParse(f *testing.F) {
	key := authorized(testKeys.ed1)
	for _, s := range []string{
		`command="zrep serve --identity \"a b\"",restrict,from="10.0.0.0/8" ` + key + " c",
		"# comment\n\n" + key + "\r\n" + key,
		`cert-authority,principals="a" ` + key,
		`command="x",command="y" ` + key,
		`command="a\\" ` + key,
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Parse(data, "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error does not name the source: %v", err)
			}
			return
		}
		for _, e := range set.byKey {
			got, ok := set.Lookup(e.Key)
			if !ok || got != e {
				t.Fatalf("Lookup(key of line %d) = %v, %t", e.Line, got, ok)
			}
			if e.Line < 1 {
				t.Fatalf("entry with line %d", e.Line)
			}
			if strings.IndexByte(e.Command, 0) >= 0 {
				t.Fatalf("command with a NUL: %q", e.Command)
			}
		}
	})
}

// FuzzCommandArgs checks that CommandArgs never panics, never returns a
// word with a NUL, and that its words, quoted again, split back into
// themselves.
func FuzzCommandArgs(f *testing.F) {
	for _, tt := range commandArgsTests {
		f.Add(tt.command)
	}
	for _, s := range []string{"", "a\\", `"\`, `'`, "a;b", `"$x"`, "if x", "A=b c", "=x", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		words, err := CommandArgs(command)
		if err != nil {
			if words != nil {
				t.Fatalf("words %q with error %v", words, err)
			}
			return
		}
		if len(words) == 0 {
			t.Fatal("no words and no error")
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			if strings.IndexByte(w, 0) >= 0 {
				t.Fatalf("word %q contains a NUL", w)
			}
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := CommandArgs(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("re-quoted %q split into %q, %v", words, again, err)
		}
	})
}
