package printable

import (
	"bytes"
	"encoding/json"
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
		{"right-to-left override", "tank/a\u202egpj.exe", "tank/a?gpj.exe"},
		{"zero-width joiner", "ta\u200dnk", "ta?nk"},
		{"line separator", "a\u2028b", "a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	in := "cannot receive:\n\tdestination exists\x1b[2J\r\u009b\u202e"
	if got, want := Text(in), "cannot receive:\n\tdestination exists?[2J???"; got != want {
		t.Errorf("Text(%q) = %q, want %q", in, got, want)
	}
}

// TestBounded: the text is cleaned first, then cut: a byte that is not
// UTF-8 becomes a U+FFFD of three bytes, which must not push it past its
// bound (a run of such bytes becomes a single U+FFFD).
func TestBounded(t *testing.T) {
	in := strings.Repeat("a\x9b", 5) // 10 bytes, 20 once cleaned
	got := Bounded(in, 7)
	if want := "a\uFFFDa..."; got != want {
		t.Errorf("Bounded(%q, 7) = %q, want %q", in, got, want)
	}
	if got := Bounded("ok\x1b", 10); got != "ok?" {
		t.Errorf("Bounded(ok ESC) = %q", got)
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
		{"abc", -1, "..."},
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
	Strings(&v, 100)
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
	Strings(nil, 100)                // nothing to do, no panic
	Strings(&outer{Inner: nil}, 100) // nil pointers and maps are skipped
	long := outer{Kind: "abcdef", Inner: &inner{Name: "ok"}}
	Strings(&long, 3)
	if long.Kind != "abc..." || long.Inner.Name != "ok" {
		t.Errorf("strings are not bounded: %q %q", long.Kind, long.Inner.Name)
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	in := map[string]string{"name": "tank/a\u009b2J\u0085é\u00a0", "err": "x\x1by"}
	if err := json.NewEncoder(JSON(&buf)).Encode(in); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if want := `{"err":"x\u001by","name":"tank/a\u009b2J\u0085é` + "\u00a0" + `"}` + "\n"; out != want { // NBSP is no control
		t.Errorf("got %s want %s", out, want)
	}
	var back map[string]string
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["name"] != in["name"] || back["err"] != in["err"] {
		t.Errorf("the JSON does not mean the same: %q, %v", back, err)
	}
	if b := []byte(`{"a":"plain é"}`); &EscapeC1(b)[0] != &b[0] {
		t.Error("JSON without C1 characters is copied")
	}
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
		if i := strings.IndexFunc(out, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }); i >= 0 {
			t.Fatalf("String(%q) = %q: a control character at %d", s, out, i)
		}
		if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 || r < 0x20 || r == 0x7f }) < 0 && out != s {
			t.Fatalf("String(%q) = %q: printable ASCII changed", s, out)
		}
		if len(out) > 3*len(s) {
			t.Fatalf("String(%q) = %q: more than three bytes per byte", s, out)
		}
	})
}

func FuzzEscapeC1(f *testing.F) {
	for _, s := range []string{"tank/a", "a\u009bb", "\u0085\u009f\u0080", "é\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		out := EscapeC1(b)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("EscapeC1(%s) = %s: not JSON: %v", b, out, err)
		}
		var want string
		_ = json.Unmarshal(b, &want)
		if back != want {
			t.Fatalf("EscapeC1(%s) = %s: means %q, not %q", b, out, back, want)
		}
		if i := indexC1(out); i >= 0 {
			t.Fatalf("EscapeC1(%s) = %s: a C1 character at %d", b, out, i)
		}
	})
}
