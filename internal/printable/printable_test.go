package printable

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "tank/a@s1", "tank/a@s1"},
		{"unicode letters stay", "tank/données", "tank/données"},
		{"escape sequence", "a\x1b]0;owned\x07b", "a?]0;owned?b"},
		{"carriage return rewrites the line", "ok\rFAILED", "ok?FAILED"},
		{"newline and tab become spaces", "cannot send\n\tmust be", "cannot send  must be"},
		{"DEL", "a\x7fb", "a?b"},
		{"C1 CSI as UTF-8", "a\u009b2Jb", "a?2Jb"},
		{"lone 0x9b byte", "a\x9b2Jb", "a\uFFFD2Jb"},
		{"truncated UTF-8", "a\xc3", "a\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc..."},
		{"aéb", 2, "a..."}, // é is two bytes: not cut in half
	} {
		if got := Truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

type inner struct {
	Name  string
	Names []string
}

type kind string

type outer struct {
	Kind    kind
	Inner   *inner
	List    []inner
	Array   [2]string
	ByName  map[string]string
	Any     any
	private string
}

func TestStrings(t *testing.T) {
	v := outer{
		Kind:    "k\x1b",
		Inner:   &inner{Name: "a\x07", Names: []string{"b\r", "ok"}},
		List:    []inner{{Name: "c\x9b"}},
		Array:   [2]string{"d\x00", "e"},
		ByName:  map[string]string{"key\x1b": "val\x1b", "fine": "fine"},
		Any:     map[string]any{"x": "y\x1b", "n": []any{"z\x1b"}},
		private: "p\x1b",
	}
	Strings(&v)
	if v.Kind != "k?" || v.Inner.Name != "a?" || v.Inner.Names[0] != "b?" || v.Inner.Names[1] != "ok" ||
		v.List[0].Name != "c\uFFFD" || v.Array[0] != "d?" || v.Array[1] != "e" {
		t.Errorf("not every string was made printable: %+v %+v", v, *v.Inner)
	}
	if len(v.ByName) != 2 || v.ByName["key?"] != "val?" || v.ByName["fine"] != "fine" {
		t.Errorf("map keys and values: %q", v.ByName)
	}
	m := v.Any.(map[string]any)
	if m["x"] != "y?" || m["n"].([]any)[0] != "z?" {
		t.Errorf("values behind interfaces: %q", m)
	}
	if v.private != "p\x1b" {
		t.Errorf("an unexported field was changed: %q", v.private)
	}
	Strings(nil)                // nothing to do, no panic
	Strings(&outer{Inner: nil}) // nil pointers and maps are skipped
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"tank/a", "a\x1b[2Jb", "\x9b", "é\u009b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("String(%q) = %q: not UTF-8", s, out)
		}
		if i := strings.IndexFunc(out, unicode.IsControl); i >= 0 {
			t.Fatalf("String(%q) = %q: a control character at %d", s, out, i)
		}
		if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 && out != s {
			t.Fatalf("String(%q) = %q: printable text changed", s, out)
		}
	})
}
