package resumetoken

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/zrep/zrep/nvlist"
)

// realToken is a token from testdata/tokens.txt.
type realToken struct{ name, token string }

func readTokens(t testing.TB) []realToken {
	t.Helper()
	b, err := os.ReadFile("testdata/tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	var toks []realToken
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			toks = append(toks, realToken{f[0], f[1]})
		}
	}
	return toks
}

// tokenNamed returns the real token called name.
func tokenNamed(t testing.TB, name string) string {
	t.Helper()
	for _, rt := range readTokens(t) {
		if rt.name == name {
			return rt.token
		}
	}
	t.Fatalf("no token %s", name)
	return ""
}

// baseToken is the token of the tests that forge tokens.
func baseToken() *Token {
	return &Token{
		ToName: "pool/fs@snap", ToGUID: 0xf784e1004f460f7a, FromGUID: 0x94a20a5f25877859,
		Object: 2, Offset: 0x2c0000, Bytes: 0x2e2b0c, CompressOK: true, RawOK: true,
	}
}

// forge returns the token of baseToken's list after edit.
func forge(edit func(l *nvlist.List)) string {
	l := baseToken().list()
	edit(l)
	return EncodeList(l)
}

// setPair replaces the value and type of the pair named name.
func setPair(l *nvlist.List, name string, typ nvlist.Type, v any) {
	for i := range l.Pairs {
		if l.Pairs[i].Name == name {
			l.Pairs[i].Type, l.Pairs[i].Value = typ, v
			return
		}
	}
	panic("no pair " + name)
}

func removePair(l *nvlist.List, name string) {
	for i := range l.Pairs {
		if l.Pairs[i].Name == name {
			l.Pairs = append(l.Pairs[:i], l.Pairs[i+1:]...)
			return
		}
	}
	panic("no pair " + name)
}

// tokenFields returns the four fields of a token string.
func tokenFields(s string) []string { return strings.SplitN(s, "-", 4) }

// withPayload returns a token around compressed bytes, with a right
// checksum and the given packed length.
func withPayload(comp []byte, packedLen int) string { return wrap(comp, packedLen) }

// toBigEndian converts a little-endian native list holding only booleans,
// uint64s, strings and uint64 arrays to the big-endian list a big-endian
// kernel would write.
func toBigEndian(b []byte) []byte {
	le, be := binary.LittleEndian, binary.BigEndian
	out := bytes.Clone(b)
	out[1] = 0
	swap32 := func(off int) { be.PutUint32(out[off:], le.Uint32(b[off:])) }
	swap16 := func(off int) { be.PutUint16(out[off:], le.Uint16(b[off:])) }
	swap64 := func(off int) { be.PutUint64(out[off:], le.Uint64(b[off:])) }
	swap32(4)
	swap32(8)
	off := 12
	for {
		size := int(le.Uint32(b[off:]))
		swap32(off)
		if size == 0 {
			return out
		}
		nameSz := int(le.Uint16(b[off+4:]))
		nelem := int(le.Uint32(b[off+8:]))
		typ := nvlist.Type(le.Uint32(b[off+12:]))
		swap16(off + 4)
		swap16(off + 6)
		swap32(off + 8)
		swap32(off + 12)
		val := off + (16+nameSz+7)&^7
		switch typ {
		case nvlist.Uint64:
			swap64(val)
		case nvlist.Uint64Array:
			for i := 0; i < nelem; i++ {
				swap64(val + 8*i)
			}
		case nvlist.Boolean, nvlist.String:
		default:
			panic(fmt.Sprintf("toBigEndian: type %v", typ))
		}
		off += size
	}
}

// checkError fails unless err is an *Error of kind, whose message
// contains msg.
func checkError(t *testing.T, err, kind error, msg string) {
	t.Helper()
	var e *Error
	switch {
	case err == nil:
		t.Errorf("no error, want %v containing %q", kind, msg)
	case !errors.As(err, &e):
		t.Errorf("error %T %v is not an *Error", err, err)
	case !errors.Is(err, kind):
		t.Errorf("error %q is not %v", err, kind)
	case !strings.Contains(err.Error(), msg):
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

// isKnownError reports whether err is an *Error of one of the kinds.
func isKnownError(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrRefused)
}
