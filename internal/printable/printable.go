// Package printable keeps text chosen by the other end of a session from
// driving a terminal. Control characters in printed text are commands to
// the terminal: escape sequences set its title, write its clipboard, move
// the cursor to rewrite lines already printed, and a newline starts a
// line that looks like one zrep printed. Text from a peer (its error
// messages, the names in a sink's report) goes through String before it
// is printed.
package printable

import (
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with tabs and newlines as spaces and every other control
// character (C0, DEL and C1) as '?'. Bytes that are not UTF-8 become U+FFFD:
// a lone 0x9b is CSI to a terminal that does not decode UTF-8.
func String(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == '\n':
			return ' '
		case unicode.IsControl(r):
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

// Truncate returns s cut to at most max bytes, at a character boundary,
// with "..." appended when it was cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// Strings applies String to every string that ptr points to or reaches
// through exported struct fields, pointers, interfaces, slices, arrays and
// maps (keys too), in place; a string already printable is left as it is
// (not written). ptr is a pointer, to a value the caller owns and without
// cycles: data a decoder just filled, not data shared with another
// goroutine.
func Strings(ptr any) {
	walk(reflect.ValueOf(ptr))
}

func walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem())
		}
	case reflect.Interface:
		// What an interface holds cannot be set in place: copy, walk, store.
		if !v.IsNil() && v.CanSet() {
			e := reflect.New(v.Elem().Type()).Elem()
			e.Set(v.Elem())
			walk(e)
			v.Set(e)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walk(v.Index(i))
		}
	case reflect.Map:
		walkMap(v)
	case reflect.String:
		if s := String(v.String()); s != v.String() && v.CanSet() {
			v.SetString(s)
		}
	}
}

// walkMap sanitizes a map's keys and values: map elements are not
// addressable, so each is copied, sanitized and stored again.
func walkMap(m reflect.Value) {
	if m.IsNil() {
		return
	}
	keys := m.MapKeys()
	for _, k := range keys {
		val := reflect.New(m.Type().Elem()).Elem()
		val.Set(m.MapIndex(k))
		walk(val)
		key := reflect.New(m.Type().Key()).Elem()
		key.Set(k)
		walk(key)
		if !key.Equal(k) {
			m.SetMapIndex(k, reflect.Value{})
		}
		m.SetMapIndex(key, val)
	}
}
