// Package printable keeps text chosen by the other end of a session from
// driving a terminal. Control characters in printed text are commands to
// the terminal: escape sequences set its title, write its clipboard, move
// the cursor to rewrite lines already printed; format characters (a
// right-to-left override) make text read as something else. Text from a
// peer (its error messages, the names it lists, a sink's report) goes
// through String or Text before it is printed, and JSON output through
// JSON.
package printable

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s on one line: tabs, newlines and the Unicode line and
// paragraph separators become spaces; every other control character (C0,
// DEL, C1) and format character (bidirectional overrides, zero-width
// characters) becomes '?'. Bytes that are not UTF-8 become U+FFFD: a lone
// 0x9b is CSI to a terminal that does not decode UTF-8.
func String(s string) string { return clean(s, false) }

// Text is String for text of several lines (an error message with zfs's
// own lines in it): it keeps newlines and tabs.
func Text(s string) string { return clean(s, true) }

func clean(s string, lines bool) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return unsafe(r, lines) }) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case !unsafe(r, lines):
			return r
		case r == '\t', r == '\n', r == '\u2028', r == '\u2029':
			return ' '
		}
		return '?'
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// unsafe reports whether r must not reach a terminal as it is; with lines,
// newlines and tabs may.
func unsafe(r rune, lines bool) bool {
	if lines && (r == '\n' || r == '\t') {
		return false
	}
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// Bounded returns String(s) cut to at most limit bytes (Truncate): the
// other end's text for one line of output. It cuts after cleaning, as
// cleaning can make text longer (a byte that is not UTF-8 can become the
// three of U+FFFD).
func Bounded(s string, limit int) string { return Truncate(String(s), limit) }

// Truncate returns s cut to at most limit bytes (a negative limit counts as
// 0), at a character boundary, with "..." appended when it was cut.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := max(limit, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// Strings applies Bounded(limit) to every string that ptr
// points to or reaches through exported struct fields, pointers,
// interfaces, slices, arrays and maps, in place; a string already printable
// and short enough is not written. Map keys are cleaned too: two keys that
// clean to the same string leave one of their entries. ptr is a pointer, to
// a value the caller owns and without cycles: data a decoder just filled,
// not data shared with another goroutine.
func Strings(ptr any, limit int) {
	walk(reflect.ValueOf(ptr), limit)
}

func walk(v reflect.Value, limit int) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), limit)
		}
	case reflect.Interface:
		// What an interface holds cannot be set in place: copy, walk, store.
		if !v.IsNil() && v.CanSet() {
			e := reflect.New(v.Elem().Type()).Elem()
			e.Set(v.Elem())
			walk(e, limit)
			v.Set(e)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i), limit)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i), limit)
		}
	case reflect.Map:
		walkMap(v, limit)
	case reflect.String:
		if s := Bounded(v.String(), limit); s != v.String() && v.CanSet() {
			v.SetString(s)
		}
	}
}

// walkMap cleans a map's keys and values: map elements are not
// addressable, so each is copied, cleaned and stored again.
func walkMap(m reflect.Value, limit int) {
	if m.IsNil() {
		return
	}
	for _, k := range m.MapKeys() {
		val := reflect.New(m.Type().Elem()).Elem()
		val.Set(m.MapIndex(k))
		walk(val, limit)
		key := reflect.New(m.Type().Key()).Elem()
		key.Set(k)
		walk(key, limit)
		if !key.Equal(k) {
			m.SetMapIndex(k, reflect.Value{})
		}
		m.SetMapIndex(key, val)
	}
}

// JSON returns a writer that passes encoding/json's output to w with the C1
// control characters (U+0080 to U+009F) escaped, \u009b for U+009B:
// encoding/json escapes C0 controls but writes C1 ones as they are, and a
// terminal may take them as commands. The JSON means the same. Each Write
// must be whole JSON values, as json.Encoder writes them.
func JSON(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(p []byte) (int, error) {
	out := EscapeC1(p)
	if _, err := j.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// EscapeC1 returns JSON text b with its C1 control characters escaped (see
// JSON); b itself when it has none.
func EscapeC1(b []byte) []byte {
	i := indexC1(b)
	if i < 0 {
		return b
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, len(b)+16)
	for i >= 0 {
		c := b[i+1] // the second byte of U+0080..U+009F: 0x80..0x9f
		out = append(out, b[:i]...)
		out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		b = b[i+2:]
		i = indexC1(b)
	}
	return append(out, b...)
}

// indexC1 returns the index of the first C1 character's UTF-8 encoding
// (0xc2 followed by 0x80..0x9f) in b, or -1.
func indexC1(b []byte) int {
	off := 0
	for {
		i := bytes.IndexByte(b[off:], 0xc2)
		if i < 0 || off+i+1 >= len(b) {
			return -1
		}
		if c := b[off+i+1]; c >= 0x80 && c <= 0x9f {
			return off + i
		}
		off += i + 1
	}
}
