package nvlist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

// checkUnpacked is the property of every input: Unpack fails with one of
// its errors, or its list packs back to the very same bytes (the decoder
// accepts one encoding of each list, up to the byte order of native lists,
// the XDR header's endian byte and the sign extension of one-byte and
// int16 XDR words), and decodes the same from the other encoding.
func checkUnpacked(b []byte) error {
	l, enc, err := Unpack(b, Limits{})
	if err != nil {
		for _, e := range []error{ErrTruncated, ErrMalformed, ErrDuplicateName, ErrTooDeep, ErrTooManyPairs} {
			if isErr(err, e) {
				return nil
			}
		}
		return fmt.Errorf("unexpected error: %v", err)
	}
	p, err := pack(l, enc, enc == Native && b[1] == 0)
	if err != nil {
		return fmt.Errorf("decoded list does not pack: %v", err)
	}
	want := b
	if enc == XDR {
		want = bytes.Clone(b)
		want[1] = 1
	}
	if !bytes.Equal(p, want) && !(enc == XDR && hasSmallInts(l)) {
		return fmt.Errorf("repacked differently:\n%x\n%x", p, b)
	}
	for _, e := range []Encoding{Native, XDR} {
		p, err := Pack(l, e)
		if e != enc && isErr(err, ErrInvalid) && strings.Contains(err.Error(), "NVS_XDR_MAX_LEN") {
			continue // libnvpair could not read it back as XDR
		}
		if err != nil {
			return fmt.Errorf("pack %v: %v", e, err)
		}
		l2, enc2, err := Unpack(p, Limits{})
		if err != nil || enc2 != e || !equal(l, l2) {
			return fmt.Errorf("%v round trip: %v\n%s\n%s", e, err, dump(l), dump(l2))
		}
	}
	return nil
}

// hasSmallInts reports whether l holds types whose XDR words may be
// sign-extended.
func hasSmallInts(l *List) bool {
	for _, p := range l.Pairs {
		switch v := p.Value.(type) {
		case *List:
			if hasSmallInts(v) {
				return true
			}
		case []*List:
			for _, s := range v {
				if hasSmallInts(s) {
					return true
				}
			}
		}
		switch p.Type {
		case Byte, Int8, Uint8, Int16, Int8Array, Uint8Array, Int16Array:
			return true
		}
	}
	return false
}

func FuzzUnpack(f *testing.F) {
	for _, b := range samples(f) {
		f.Add(b)
	}
	f.Add(xdrChain(DefaultMaxDepth))
	f.Add(nativeChain(DefaultMaxDepth))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := checkUnpacked(b); err != nil {
			t.Fatal(err)
		}
	})
}

// gen builds lists from fuzz input, one choice a byte.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) u64() uint64 {
	var w [8]byte
	n := copy(w[:], g.b)
	g.b = g.b[n:]
	return binary.LittleEndian.Uint64(w[:])
}

func (g *gen) str() string {
	n := min(int(g.byte()%16), len(g.b))
	s := string(g.b[:n])
	g.b = g.b[n:]
	return s
}

func (g *gen) list(depth int) *List {
	l := &List{Flags: uint32(g.byte() % 5)}
	for range g.byte() % 6 {
		t := Type(g.byte() % 29)
		l.Pairs = append(l.Pairs, Pair{g.str(), t, g.value(t, depth)})
	}
	return l
}

// value makes a value of t's Go type, with any bits: Pack refuses what
// does not fit.
func (g *gen) value(t Type, depth int) any {
	n := int(g.byte() % 5)
	switch t {
	case Boolean:
		return nil
	case BooleanValue:
		return g.byte()%2 == 1
	case Double:
		return math.Float64frombits(g.u64())
	case String:
		return g.str()
	case StringArray:
		v := make([]string, n)
		for i := range v {
			v[i] = g.str()
		}
		return v
	case NVList:
		if depth > 3 {
			return (*List)(nil)
		}
		return g.list(depth + 1)
	case NVListArray:
		v := make([]*List, n)
		for i := range v {
			if depth <= 3 {
				v[i] = g.list(depth + 1)
			}
		}
		return v
	}
	if !t.valid() {
		return g.u64()
	}
	if t.isArray() {
		a := makeArray(t, n)
		for i := range n {
			x := g.u64()
			if g.byte()%4 != 0 { // mostly in range
				x &= 0x7f
			}
			setElem(a, i, x)
		}
		return a
	}
	x := g.u64()
	if g.byte()%4 != 0 {
		x &= 0x7f
	}
	return fromBits(t, x)
}

// FuzzPack packs generated lists: Pack refuses them with ErrInvalid, or
// they come back equal from both encodings.
func FuzzPack(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x05\x09\x03abc\x08\x02\x01\x02\x03\x04\x05\x06\x07\x08\x01\x13\x01n\x01\x02\x01b\x00"))
	f.Add(bytes.Repeat([]byte{3, 4, 1, 2, 3, 20, 17, 9, 5, 1, 24, 25, 26, 27}, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		g := &gen{b}
		l := g.list(0)
		for _, enc := range []Encoding{Native, XDR} {
			p, err := Pack(l, enc)
			if err != nil {
				if !isErr(err, ErrInvalid) {
					t.Fatalf("Pack %v: %v", enc, err)
				}
				return
			}
			got, _, err := Unpack(p, Limits{})
			if err != nil || !equal(got, l) {
				t.Fatalf("%v: %v\n%s\n%s", enc, err, dump(l), dump(got))
			}
			if err := checkUnpacked(p); err != nil {
				t.Fatal(err)
			}
		}
	})
}
