package nvlist

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

// allTypes has a pair of every type, edge values, empty arrays, and
// nested lists.
func allTypes() *List {
	inner := &List{Flags: UniqueName, Pairs: []Pair{
		{"s", String, "inner"},
		{"deeper", NVList, &List{Pairs: []Pair{{"x", Uint8Array, []byte{1, 2, 3, 4, 5}}}}},
	}}
	return &List{Flags: UniqueName, Pairs: []Pair{
		{"boolean", Boolean, nil},
		{"byte", Byte, uint64(0xff)},
		{"int16", Int16, int64(math.MinInt16)},
		{"uint16", Uint16, uint64(math.MaxUint16)},
		{"int32", Int32, int64(math.MinInt32)},
		{"uint32", Uint32, uint64(math.MaxUint32)},
		{"int64", Int64, int64(math.MinInt64)},
		{"uint64", Uint64, uint64(math.MaxUint64)},
		{"string", String, "hello, wörld"},
		{"empty string", String, ""},
		{"byte_array", ByteArray, []byte{0, 1, 0xfe, 0xff, 7}},
		{"int16_array", Int16Array, []int64{-1, 0, math.MaxInt16, math.MinInt16}},
		{"uint16_array", Uint16Array, []uint64{0, 1, math.MaxUint16}},
		{"int32_array", Int32Array, []int64{-7, math.MaxInt32, math.MinInt32}},
		{"uint32_array", Uint32Array, []uint64{math.MaxUint32, 3, 0}},
		{"int64_array", Int64Array, []int64{math.MinInt64, -1, math.MaxInt64}},
		{"uint64_array", Uint64Array, []uint64{0xdeadbeefcafe, math.MaxUint64}},
		{"string_array", StringArray, []string{"a", "", "bcdefghij", "x/y@z"}},
		{"hrtime", Hrtime, int64(-123456789)},
		{"nvlist", NVList, inner},
		{"nvlist_array", NVListArray, []*List{
			{Flags: UniqueName, Pairs: []Pair{{"a", Uint64, uint64(1)}}},
			{},
			{Flags: UniqueNameType, Pairs: []Pair{{"b", NVListArray, []*List{{}}}}},
		}},
		{"boolean_value", BooleanValue, true},
		{"false", BooleanValue, false},
		{"int8", Int8, int64(-128)},
		{"uint8", Uint8, uint64(200)},
		{"boolean_array", BooleanArray, []bool{true, false, true}},
		{"int8_array", Int8Array, []int64{-128, 127, -1, 0}},
		{"uint8_array", Uint8Array, []byte{0, 128, 255}},
		{"double", Double, -2.5e-300},
		{"nan", Double, math.NaN()},
		{"", String, "empty name"},
	}}
}

// emptyArrays has an empty array of every array type.
func emptyArrays() *List {
	l := &List{}
	for t := Boolean; t <= Double; t++ {
		if t.isArray() {
			l.Pairs = append(l.Pairs, Pair{t.String(), t, emptyValue(t)})
		}
	}
	return l
}

func TestRoundTrip(t *testing.T) {
	lists := map[string]*List{"all types": allTypes(), "empty arrays": emptyArrays(), "empty": {}}
	for name, l := range lists {
		for _, enc := range []Encoding{Native, XDR} {
			t.Run(name+"/"+enc.String(), func(t *testing.T) {
				b, err := Pack(l, enc)
				if err != nil {
					t.Fatal(err)
				}
				got, genc, err := Unpack(b, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				if genc != enc || !equal(got, l) {
					t.Fatalf("got %v\n%s\nwant\n%s", genc, dump(got), dump(l))
				}
				again, err := Pack(got, enc)
				if err != nil || !bytes.Equal(again, b) {
					t.Errorf("repacked differently (%v)", err)
				}
			})
		}
		t.Run(name+"/native big-endian", func(t *testing.T) {
			b, err := pack(l, Native, true)
			if err != nil {
				t.Fatal(err)
			}
			if b[1] != 0 {
				t.Fatalf("header % x", b[:4])
			}
			got, _, err := Unpack(b, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, l) {
				t.Fatalf("got\n%s", dump(got))
			}
			le, _ := Pack(got, Native)
			if be, _ := pack(got, Native, true); !bytes.Equal(be, b) || bytes.Equal(le, b) {
				t.Error("big-endian repack")
			}
		})
	}
}

// TestEncodings checks single-pair lists against encodings worked out by
// hand from nvpair.c, for types the real samples lack.
func TestEncodings(t *testing.T) {
	tests := []struct {
		pair        Pair
		xdr, native string // the pair only
		slack       int
	}{
		{Pair{"b", BooleanValue, true},
			"0000001c 00000020 00000001 62000000 00000015 00000001 00000001",
			"20000000 0200 0000 01000000 15000000 6200000000000000 0100000000000000", 0},
		{Pair{"i", Int8, int64(-1)},
			"0000001c 00000020 00000001 69000000 00000016 00000001 000000ff",
			"20000000 0200 0000 01000000 16000000 6900000000000000 ff00000000000000", 0},
		{Pair{"a", Int16Array, []int64{-2, 3}},
			"00000024 00000020 00000001 61000000 0000000b 00000002 00000002 0000fffe 00000003",
			"20000000 0200 0000 02000000 0b000000 6100000000000000 feff030000000000", 0},
		{Pair{"s", StringArray, []string{"a", "bc"}},
			"00000028 00000030 00000001 73000000 00000011 00000002 00000001 61000000 00000002 62630000",
			"30000000 0200 0000 02000000 11000000 7300000000000000 0000000000000000 0000000000000000 6100626300000000", 0},
		{Pair{"d", Double, 1.5},
			"00000020 00000020 00000001 64000000 0000001b 00000001 3ff80000 00000000",
			"20000000 0200 0000 01000000 1b000000 6400000000000000 000000000000f83f", 0},
		{Pair{"y", ByteArray, []byte{1, 2, 3}},
			"0000001c 00000020 00000001 79000000 0000000a 00000003 01020300",
			"20000000 0200 0000 03000000 0a000000 7900000000000000 0102030000000000", 0},
		{Pair{"u", Uint32Array, []uint64{}},
			"0000001c 00000018 00000001 75000000 0000000e 00000000",
			"18000000 0200 0000 00000000 0e000000 7500000000000000", 4},
		{Pair{"l", NVListArray, []*List{{Flags: UniqueName}}},
			"00000028 00000038 00000001 6c000000 00000014 00000001 00000000 00000001 00000000 00000000",
			"38000000 0200 0000 01000000 14000000 6c00000000000000 0000000000000000 00000000 01000000 0000000000000000 00000000 00000000 00000000", 0},
		{Pair{"n", NVList, &List{Pairs: []Pair{{"z", Boolean, nil}}}},
			"00000040 00000030 00000001 6e000000 00000013 00000001 00000000 00000000 00000018 00000018 00000001 7a000000 00000001 00000000 00000000 00000000",
			"30000000 0200 0000 01000000 13000000 6e00000000000000 00000000 00000000 0000000000000000 00000000 00000000 18000000 0200 0000 00000000 01000000 7a00000000000000 00000000", 0},
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range tests {
		t.Run(tt.pair.Type.String(), func(t *testing.T) {
			l := &List{Flags: UniqueName, Pairs: []Pair{tt.pair}}
			for _, enc := range []Encoding{XDR, Native} {
				var want []byte
				if enc == XDR {
					want = unhex("01010000 00000000 00000001" + tt.xdr + "00000000 00000000")
					want = append(want, make([]byte, tt.slack)...)
				} else {
					want = unhex("00010000 00000000 01000000" + tt.native + "00000000")
				}
				got, err := Pack(l, enc)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("Pack %v (%v):\n%x\nwant\n%x", enc, err, got, want)
				}
				back, _, err := Unpack(want, Limits{})
				if err != nil || !equal(back, l) {
					t.Errorf("Unpack %v: %v", enc, err)
				}
			}
		})
	}
}

// TestXDRSmallInts checks that one-byte and int16 words decode
// sign-extended (x86 userland) as well as zero-extended (kernel), and
// that nothing else does.
func TestXDRSmallInts(t *testing.T) {
	tests := []struct {
		t    Type
		word uint32
		want any // nil: refused
	}{
		{Int8, 0xffffffff, int64(-1)},
		{Int8, 0x000000ff, int64(-1)},
		{Int8, 0xffffff80, int64(-128)},
		{Int8, 0xffffff7f, nil},
		{Int8, 0x00000100, nil},
		{Uint8, 0xffffffc8, uint64(200)},
		{Uint8, 0x000000c8, uint64(200)},
		{Uint8, 0x80000000, nil},
		{Byte, 0xffffffff, uint64(255)},
		{Byte, 0x0000017f, nil},
		{Int16, 0xfffffffe, int64(-2)},
		{Int16, 0x0000fffe, int64(-2)},
		{Int16, 0xffff7fff, nil},
		{Int16, 0x00010000, nil},
		{Uint16, 0x0000ffff, uint64(0xffff)},
		{Uint16, 0xffffffff, nil},
		{BooleanValue, 2, nil},
		{BooleanValue, 0xffffffff, nil},
		{Int32, 0xffffffff, int64(-1)},
		{Uint32, 0xffffffff, uint64(math.MaxUint32)},
	}
	for _, tt := range tests {
		l := &List{Pairs: []Pair{{"v", tt.t, emptyScalar(tt.t)}}}
		b, err := Pack(l, XDR)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-12] = byte(tt.word >> 24) // the value is the last word before the end marker
		b[len(b)-11] = byte(tt.word >> 16)
		b[len(b)-10] = byte(tt.word >> 8)
		b[len(b)-9] = byte(tt.word)
		got, _, err := Unpack(b, Limits{})
		switch {
		case tt.want == nil && !isErr(err, ErrMalformed):
			t.Errorf("%s %#x: got %v, want ErrMalformed", tt.t, tt.word, err)
		case tt.want != nil && err != nil:
			t.Errorf("%s %#x: %v", tt.t, tt.word, err)
		case tt.want != nil && got.Pairs[0].Value != tt.want:
			t.Errorf("%s %#x = %#v, want %#v", tt.t, tt.word, got.Pairs[0].Value, tt.want)
		}
		// The same words as array elements.
		at := map[Type]Type{Int8: Int8Array, Uint8: Uint8Array, Int16: Int16Array, Uint16: Uint16Array,
			BooleanValue: BooleanArray, Int32: Int32Array, Uint32: Uint32Array}[tt.t]
		if at == 0 {
			continue
		}
		b, err = Pack(&List{Pairs: []Pair{{"v", at, makeArray(at, 1)}}}, XDR)
		if err != nil {
			t.Fatal(err)
		}
		copy(b[len(b)-12:], []byte{byte(tt.word >> 24), byte(tt.word >> 16), byte(tt.word >> 8), byte(tt.word)})
		got, _, err = Unpack(b, Limits{})
		if (tt.want == nil) != (err != nil) {
			t.Errorf("%s %#x: %v", at, tt.word, err)
		}
	}
}

// emptyScalar is a zero value of a scalar type.
func emptyScalar(t Type) any {
	switch t {
	case BooleanValue:
		return false
	case Double:
		return 0.0
	}
	return fromBits(t, 0)
}

func TestAccessors(t *testing.T) {
	l := allTypes()
	if s, ok := l.String("string"); !ok || s != "hello, wörld" {
		t.Error("String")
	}
	if _, ok := l.String("uint64"); ok {
		t.Error("String of a uint64")
	}
	if v, ok := l.Uint64("uint64"); !ok || v != math.MaxUint64 {
		t.Error("Uint64")
	}
	if _, ok := l.Uint64("uint32"); ok {
		t.Error("Uint64 of a uint32")
	}
	if v, ok := l.Uint64Array("uint64_array"); !ok || len(v) != 2 {
		t.Error("Uint64Array")
	}
	if sub, ok := l.List("nvlist"); !ok || !sub.Has("deeper") {
		t.Error("List")
	}
	if _, ok := l.List("nvlist_array"); ok {
		t.Error("List of an nvlist array")
	}
	if !l.Has("boolean") || l.Has("missing") || !l.Has("") {
		t.Error("Has")
	}
	if p, ok := l.Lookup("int8"); !ok || p.Type != Int8 || p.Value != int64(-128) {
		t.Error("Lookup")
	}
	var nilList *List
	if nilList.Has("x") || nilList.Names() != nil {
		t.Error("nil list")
	}
	if n := l.Names(); len(n) != len(l.Pairs) || n[0] != "boolean" {
		t.Errorf("Names %q", n)
	}
	for ty := Boolean; ty <= Double; ty++ {
		if s := ty.String(); s == "" || strings.Contains(s, "(") {
			t.Errorf("%d: %q", ty, s)
		}
	}
	if Type(0).String() != "type(0)" || Type(28).String() != "type(28)" || Uint64.String() != "uint64" {
		t.Error("Type.String")
	}
	if Native.String() != "native" || XDR.String() != "xdr" {
		t.Error("Encoding.String")
	}
}

// TestPackUnreadableXDR: libnvpair packs lists that its own
// NVS_XDR_MAX_LEN check then refuses to unpack (zfs-fuse's zstreamdump
// confirms it); Pack refuses them instead.
func TestPackUnreadableXDR(t *testing.T) {
	l := one("", StringArray, []string{"", "", ""})
	if _, err := Pack(l, XDR); !isErr(err, ErrInvalid) || !strings.Contains(err.Error(), "NVS_XDR_MAX_LEN") {
		t.Errorf("Pack: %v", err)
	}
	if _, err := Pack(l, Native); err != nil {
		t.Errorf("Pack native: %v", err)
	}
	// With more bytes after the pair, libnvpair reads it.
	l.Pairs = append(l.Pairs, Pair{"x", Uint64, uint64(1)})
	b, err := Pack(l, XDR)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := Unpack(b, Limits{}); err != nil || !equal(got, l) {
		t.Errorf("Unpack: %v", err)
	}
}
