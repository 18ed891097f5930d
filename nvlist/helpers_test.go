package nvlist

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	stderrors "errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// dump prints l one pair a line, nested lists indented, like nvlist_print.
func dump(l *List) string {
	if l == nil {
		return "<nil>\n"
	}
	var b strings.Builder
	var walk func(l *List, indent string)
	walk = func(l *List, indent string) {
		for _, p := range l.Pairs {
			switch v := p.Value.(type) {
			case *List:
				fmt.Fprintf(&b, "%s%s: nvlist flags=%d\n", indent, p.Name, v.Flags)
				walk(v, indent+"  ")
			case []*List:
				fmt.Fprintf(&b, "%s%s: nvlist_array[%d]\n", indent, p.Name, len(v))
				for i, sub := range v {
					fmt.Fprintf(&b, "%s  [%d] flags=%d\n", indent, i, sub.Flags)
					walk(sub, indent+"    ")
				}
			case string:
				fmt.Fprintf(&b, "%s%s: %s %q\n", indent, p.Name, p.Type, v)
			case uint64:
				fmt.Fprintf(&b, "%s%s: %s %#x\n", indent, p.Name, p.Type, v)
			default:
				fmt.Fprintf(&b, "%s%s: %s %v\n", indent, p.Name, p.Type, v)
			}
		}
	}
	walk(l, "")
	return b.String()
}

// equal compares lists, floats by their bits so that NaNs compare.
func equal(a, b *List) bool {
	if a == nil || b == nil || a.Flags != b.Flags || len(a.Pairs) != len(b.Pairs) {
		return a == nil && b == nil
	}
	for i, p := range a.Pairs {
		q := b.Pairs[i]
		if p.Name != q.Name || p.Type != q.Type {
			return false
		}
		switch v := p.Value.(type) {
		case *List:
			w, ok := q.Value.(*List)
			if !ok || !equal(v, w) {
				return false
			}
		case []*List:
			w, ok := q.Value.([]*List)
			if !ok || len(v) != len(w) {
				return false
			}
			for j := range v {
				if !equal(v[j], w[j]) {
					return false
				}
			}
		case float64:
			w, ok := q.Value.(float64)
			if !ok || math.Float64bits(v) != math.Float64bits(w) {
				return false
			}
		default:
			if fmt.Sprintf("%T %v", p.Value, p.Value) != fmt.Sprintf("%T %v", q.Value, q.Value) {
				return false
			}
		}
	}
	return true
}

// resumeToken is a receive_resume_token from testdata/resume-tokens.txt.
type resumeToken struct{ name, token string }

func readTokens(t testing.TB) []resumeToken {
	b, err := os.ReadFile("testdata/resume-tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	var toks []resumeToken
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) == 2 && !strings.HasPrefix(line, "#") {
			toks = append(toks, resumeToken{f[0], f[1]})
		}
	}
	return toks
}

// tokenPayload decodes <version>-<fletcher4 word>-<packed length>-<zlib
// hex> as libzfs does, checking the checksum and the length.
func tokenPayload(tok string) ([]byte, error) {
	f := strings.SplitN(tok, "-", 4)
	if len(f) != 4 || f[0] != "1" {
		return nil, fmt.Errorf("bad token %.20q", tok)
	}
	cksum, err1 := strconv.ParseUint(f[1], 16, 64)
	plen, err2 := strconv.ParseUint(f[2], 16, 64)
	comp, err3 := hex.DecodeString(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("bad token fields")
	}
	var sum uint64
	for i := 0; i+4 <= len(comp); i += 4 {
		sum += uint64(binary.LittleEndian.Uint32(comp[i:]))
	}
	if sum != cksum {
		return nil, fmt.Errorf("checksum %x, want %x", sum, cksum)
	}
	zr, err := zlib.NewReader(bytes.NewReader(comp))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	if uint64(len(raw)) != plen {
		return nil, fmt.Errorf("payload of %d bytes, token says %d", len(raw), plen)
	}
	return raw, nil
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func isErr(err, target error) bool { return stderrors.Is(err, target) }

// raceEnabled is set under the race detector (race_test.go).
var raceEnabled bool
