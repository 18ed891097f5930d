package nvlist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func mustPack(t testing.TB, l *List, enc Encoding) []byte {
	t.Helper()
	b, err := Pack(l, enc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// one is a list of one pair.
func one(name string, typ Type, v any) *List {
	return &List{Flags: UniqueName, Pairs: []Pair{{name, typ, v}}}
}

// edit returns a copy of b changed by f.
func edit(b []byte, f func(b []byte) []byte) []byte {
	return f(bytes.Clone(b))
}

func be32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
}

func le32(off int, v uint32) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return b }
}

func le16(off int, v uint16) func([]byte) []byte {
	return func(b []byte) []byte { binary.LittleEndian.PutUint16(b[off:], v); return b }
}

func fill(from, to int, v byte) func([]byte) []byte {
	return func(b []byte) []byte {
		for i := from; i < to; i++ {
			b[i] = v
		}
		return b
	}
}

func setByte(off int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[off] = v; return b }
}

// Offsets in a packed single-pair list: the pair starts at 12. In XDR,
// encode size at 12, decode size at 16, name length at 20, name at 24;
// type and count follow the padded name. In native, nvp_size at 12,
// name_sz at 16, reserved at 18, nelem at 20, type at 24, name at 28.
const pairAt = 12

// xdrChain is an XDR list nested depth levels deep through pairs "n".
func xdrChain(depth int) []byte {
	var level func(k int) []byte
	level = func(k int) []byte {
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, 1)
		if k < depth {
			sub := level(k + 1)
			for _, w := range []uint32{uint32(24 + len(sub)), 48, 1, 0x6e000000, uint32(NVList), 1} {
				b = binary.BigEndian.AppendUint32(b, w)
			}
			b = append(b, sub...)
		}
		return append(b, make([]byte, 8)...)
	}
	return append([]byte{1, 1, 0, 0}, level(0)...)
}

// nativeChain is a native list nested depth levels deep through pairs "n".
func nativeChain(depth int) []byte {
	b := []byte{0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}
	for range depth {
		for _, w := range []uint32{48, 2, 1, uint32(NVList), 0x6e, 0, 0, 1, 0, 0, 0, 0} {
			b = binary.LittleEndian.AppendUint32(b, w)
		}
	}
	return append(b, make([]byte, 4*(depth+1))...)
}

func TestMalformed(t *testing.T) {
	u64 := one("name", Uint64, uint64(7))                         // XDR: type at 28, nelem 32, value 36
	str := one("s", String, "abcd")                               // XDR: value length at 36, bytes at 40
	arr := one("a", Uint64Array, []uint64{1, 2})                  // XDR: count at 32; native: nelem at 20
	xu64, nu64 := mustPack(t, u64, XDR), mustPack(t, u64, Native) // native: value at 36
	xstr, nstr := mustPack(t, str, XDR), mustPack(t, str, Native) // native: value at 36
	xarr, narr := mustPack(t, arr, XDR), mustPack(t, arr, Native)
	nested := &List{Pairs: []Pair{{"outer", NVList, one("inner", Boolean, nil)}}}
	xnest, nnest := mustPack(t, nested, XDR), mustPack(t, nested, Native)
	lists := one("l", NVListArray, []*List{{}, {}})
	nlists := mustPack(t, lists, Native) // slots at 36, nvlist_t at 52 and 76
	sarr := one("s", StringArray, []string{"ab", "c"})
	nsarr := mustPack(t, sarr, Native) // slots at 36, strings at 52
	dup := &List{Pairs: []Pair{{"a", Boolean, nil}, {"b", Boolean, nil}}}
	xdup, ndup := mustPack(t, dup, XDR), mustPack(t, dup, Native) // second name at 24+24 / 28+24

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", []byte{1, 1, 0}, ErrTruncated},
		{"header only", []byte{1, 1, 0, 0}, ErrTruncated},
		{"unknown encoding", edit(xu64, setByte(0, 2)), ErrMalformed},
		{"bad endian byte", edit(nu64, setByte(1, 2)), ErrMalformed},
		{"reserved header byte", edit(xu64, setByte(3, 1)), ErrMalformed},

		// XDR
		{"xdr version", edit(xu64, be32(4, 1)), ErrMalformed},
		{"xdr unknown flag", edit(xu64, be32(8, 5)), ErrMalformed},
		{"xdr no end marker", xu64[:len(xu64)-8], ErrTruncated},
		{"xdr end marker with encode size", edit(xu64, be32(len(xu64)-8, 8)), ErrMalformed},
		{"xdr encode size", edit(xu64, be32(pairAt, 36)), ErrMalformed},
		{"xdr decode size", edit(xu64, be32(pairAt+4, 48)), ErrMalformed},
		{"xdr decode size below 24", edit(xu64, be32(pairAt+4, 16)), ErrMalformed},
		{"xdr decode size negative", edit(xu64, be32(pairAt+4, 0x80000000)), ErrMalformed},
		{"xdr decode size past NVS_XDR_MAX_LEN", edit(xu64, be32(pairAt+4, 1000)), ErrMalformed},
		{"xdr unknown type 0", edit(xu64, be32(28, 0)), ErrMalformed},
		{"xdr unknown type 28", edit(xu64, be32(28, 28)), ErrMalformed},
		{"xdr scalar with 2 elements", edit(xu64, be32(32, 2)), ErrMalformed},
		{"xdr scalar with 0 elements", edit(xu64, be32(32, 0)), ErrMalformed},
		{"xdr boolean with 1 element", edit(mustPack(t, one("b", Boolean, nil), XDR), be32(32, 1)), ErrMalformed},
		{"xdr name with NUL", edit(xu64, setByte(25, 0)), ErrMalformed},
		{"xdr name length past end", edit(xu64, be32(20, 1<<30)), ErrTruncated},
		{"xdr string with NUL", edit(xstr, setByte(41, 0)), ErrMalformed},
		{"xdr string padding", edit(mustPack(t, one("s", String, "abc"), XDR), setByte(43, 'x')), ErrMalformed},
		{"xdr string longer", edit(xstr, be32(36, 8)), ErrMalformed},
		{"xdr array count differs", edit(xarr, be32(36, 1)), ErrMalformed},
		{"xdr huge array", edit(edit(xarr, be32(32, 1<<28)), be32(36, 1<<28)), ErrTruncated},
		{"xdr huge byte array", edit(mustPack(t, one("y", ByteArray, []byte{1}), XDR), be32(32, 0x7ffffff0)), ErrTruncated},
		{"xdr huge string array", edit(mustPack(t, one("s", StringArray, []string{"x"}), XDR), be32(32, 1<<30)), ErrTruncated},
		{"xdr huge nvlist array", edit(mustPack(t, lists, XDR), be32(32, 1<<30)), ErrTruncated},
		{"xdr nested version", edit(xnest, be32(40, 3)), ErrMalformed},
		{"xdr nested flags", edit(xnest, be32(44, 4)), ErrMalformed},
		{"xdr duplicate", edit(xdup, setByte(24+24, 'a')), ErrDuplicateName},
		{"xdr trailing byte", append(bytes.Clone(xu64), 0), ErrMalformed},
		{"xdr trailing word", append(bytes.Clone(xu64), 0, 0, 0, 0), ErrMalformed},
		{"xdr missing slack", func() []byte {
			b := mustPack(t, one("e", Int8Array, []int64{}), XDR)
			return b[:len(b)-4]
		}(), ErrMalformed},
		{"xdr nonzero slack", edit(mustPack(t, one("e", Int8Array, []int64{}), XDR), func(b []byte) []byte {
			b[len(b)-1] = 1
			return b
		}), ErrMalformed},
		{"xdr too deep", xdrChain(DefaultMaxDepth + 1), ErrTooDeep},

		// Native
		{"native version", edit(nu64, le32(4, 1)), ErrMalformed},
		{"native unknown flag", edit(nu64, le32(8, 4)), ErrMalformed},
		{"native no end marker", nu64[:len(nu64)-4], ErrTruncated},
		{"native nvp_size bigger", edit(append(bytes.Clone(nu64), 0, 0, 0, 0, 0, 0, 0, 0), le32(pairAt, 40)), ErrMalformed},
		{"native nvp_size smaller", edit(nu64, le32(pairAt, 24)), ErrMalformed},
		{"native nvp_size below 24", edit(nu64, le32(pairAt, 16)), ErrMalformed},
		{"native nvp_size negative", edit(nu64, le32(pairAt, 0xfffffff0)), ErrMalformed},
		{"native nvp_size past end", edit(nu64, le32(pairAt, 4096)), ErrTruncated},
		{"native name_sz 0", edit(nu64, le16(16, 0)), ErrMalformed},
		{"native name_sz negative", edit(nu64, le16(16, 0x8000)), ErrMalformed},
		{"native name_sz too long", edit(nu64, le16(16, 6)), ErrMalformed},
		{"native name_sz too short", edit(nu64, le16(16, 4)), ErrMalformed},
		{"native name with NUL", edit(nu64, setByte(29, 0)), ErrMalformed},
		{"native name padding", edit(nu64, setByte(33, 1)), ErrMalformed},
		{"native reserved", edit(nu64, le16(18, 1)), ErrMalformed},
		{"native unknown type", edit(nu64, le32(24, 99)), ErrMalformed},
		{"native scalar with 2 elements", edit(nu64, le32(20, 2)), ErrMalformed},
		{"native string not terminated", edit(nstr, fill(40, 44, 'e')), ErrMalformed},
		{"native string longer", edit(nstr, setByte(40, 'e')), nil},
		{"native string with NUL", edit(nstr, setByte(37, 0)), ErrMalformed},
		{"native string padding", edit(nstr, setByte(42, 1)), ErrMalformed},
		{"native value padding", edit(mustPack(t, one("name", Int32, int64(1)), Native), setByte(40, 1)), ErrMalformed},
		{"native boolean value 2", edit(mustPack(t, one("name", BooleanValue, true), Native), setByte(36, 2)), ErrMalformed},
		{"native boolean array value 2", edit(mustPack(t, one("name", BooleanArray, []bool{true}), Native), setByte(36, 2)), ErrMalformed},
		{"native array nelem too big", edit(narr, le32(20, 3)), ErrMalformed},
		{"native array nelem too small", edit(narr, le32(20, 1)), ErrMalformed},
		{"native huge array", edit(narr, le32(20, 1<<30)), ErrMalformed},
		{"native huge string array", edit(nsarr, le32(20, 1<<30)), ErrMalformed},
		{"native huge nvlist array", edit(nlists, le32(20, 1<<30)), ErrMalformed},
		{"native string pointer", edit(nsarr, setByte(36, 1)), ErrMalformed},
		{"native string array unterminated", edit(nsarr, fill(56, 60, 'x')), ErrMalformed},
		{"native nvlist pointer", edit(nlists, setByte(44, 1)), ErrMalformed},
		{"native nvlist_t version", edit(nlists, le32(76, 1)), ErrMalformed},
		{"native nvlist_t flags", edit(nlists, le32(80, 8)), ErrMalformed},
		{"native nvlist_t priv", edit(nlists, setByte(90, 1)), ErrMalformed},
		{"native nvlist_t pad", edit(nlists, setByte(99, 1)), ErrMalformed},
		{"native nested truncated", nnest[:len(nnest)-8], ErrTruncated},
		{"native duplicate", edit(ndup, setByte(28+24, 'a')), ErrDuplicateName},
		{"native trailing", append(bytes.Clone(nu64), 0, 0, 0, 0), ErrMalformed},
		{"native too deep", nativeChain(DefaultMaxDepth + 1), ErrTooDeep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, err := Unpack(tt.in, Limits{})
			if tt.want == nil { // a control: a different valid list
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !isErr(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", err, l, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "nvlist: byte ") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestDuplicates refuses a repeated name in any list, whatever its flags
// and the pairs' types.
func TestDuplicates(t *testing.T) {
	pairs := []Pair{{"a", Uint64, uint64(1)}, {"b", Boolean, nil}, {"a", String, "x"}}
	// Pack refuses duplicates, so build the list with distinct names and
	// rename the third pair in the packed bytes.
	orig := []Pair{pairs[0], pairs[1], {"c", String, "x"}}
	many := &List{}
	for i := range 40 {
		many.Pairs = append(many.Pairs, Pair{fmt.Sprintf("%03d", i), Boolean, nil})
	}
	for _, flags := range []uint32{0, UniqueName, UniqueNameType} {
		for _, enc := range []Encoding{XDR, Native} {
			for _, nest := range []bool{false, true} {
				l := &List{Flags: flags, Pairs: orig}
				if nest {
					l = &List{Pairs: []Pair{{"x", NVListArray, []*List{{}, l}}}}
				}
				b := mustPack(t, l, enc)
				i := bytes.LastIndex(b, []byte("c\x00\x00\x00"))
				b[i] = 'a'
				if _, _, err := Unpack(b, Limits{}); !isErr(err, ErrDuplicateName) {
					t.Errorf("flags %d %v nested %v: %v", flags, enc, nest, err)
				}
			}
			// Past the linear scan.
			b := mustPack(t, many, enc)
			i := bytes.LastIndex(b, []byte("039"))
			copy(b[i:], "007")
			if _, _, err := Unpack(b, Limits{}); !isErr(err, ErrDuplicateName) || !strings.Contains(err.Error(), `pair 39 repeats the name "007" of pair 7`) {
				t.Errorf("many %v: %v", enc, err)
			}
		}
	}
}

func TestDepth(t *testing.T) {
	for _, tt := range []struct {
		name  string
		chain func(int) []byte
	}{{"xdr", xdrChain}, {"native", nativeChain}} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Unpack(tt.chain(DefaultMaxDepth), Limits{}); err != nil {
				t.Errorf("depth %d: %v", DefaultMaxDepth, err)
			}
			_, _, err := Unpack(tt.chain(DefaultMaxDepth+1), Limits{})
			if !isErr(err, ErrTooDeep) || !strings.Contains(err.Error(), strings.Repeat("n/", 20)+"n") {
				t.Errorf("depth %d: %v", DefaultMaxDepth+1, err)
			}
			if _, _, err := Unpack(tt.chain(3), Limits{MaxDepth: 2}); !isErr(err, ErrTooDeep) {
				t.Errorf("MaxDepth 2: %v", err)
			}
			if _, _, err := Unpack(tt.chain(50), Limits{MaxDepth: 50}); err != nil {
				t.Errorf("MaxDepth 50: %v", err)
			}
			if _, _, err := Unpack(tt.chain(101), Limits{MaxDepth: 1000}); !isErr(err, ErrTooDeep) {
				t.Errorf("MaxDepth is capped at 100: %v", err)
			}
		})
	}
	// Like libnvpair, an empty nvlist array does not count as a level.
	l := &List{}
	for range DefaultMaxDepth {
		l = one("n", NVList, l)
	}
	inner := l
	for inner.Pairs != nil {
		inner = inner.Pairs[0].Value.(*List)
	}
	inner.Pairs = []Pair{{"empty", NVListArray, []*List{}}}
	for _, enc := range []Encoding{XDR, Native} {
		if _, _, err := Unpack(mustPack(t, l, enc), Limits{}); err != nil {
			t.Errorf("%v: %v", enc, err)
		}
	}
	inner.Pairs = []Pair{{"one", NVListArray, []*List{{}}}}
	if _, err := Pack(l, XDR); !isErr(err, ErrInvalid) {
		t.Errorf("Pack too deep: %v", err)
	}
}

func TestMaxPairs(t *testing.T) {
	l := &List{Pairs: []Pair{{"a", Boolean, nil}, {"l", NVList, one("b", Boolean, nil)}}}
	for _, enc := range []Encoding{XDR, Native} {
		b := mustPack(t, l, enc)
		if _, _, err := Unpack(b, Limits{MaxPairs: 3}); err != nil {
			t.Errorf("%v 3: %v", enc, err)
		}
		if _, _, err := Unpack(b, Limits{MaxPairs: 2}); !isErr(err, ErrTooManyPairs) {
			t.Errorf("%v 2: %v", enc, err)
		}
	}
}

// TestErrorLocation checks that errors name the byte and the pair.
func TestErrorLocation(t *testing.T) {
	b := readFile(t, "zfsfuse-R-header.xdr")
	i := bytes.Index(b, []byte("/tmp/ss/evil"))
	b[i+4] = 0
	_, _, err := Unpack(b, Limits{})
	want := fmt.Sprintf(`nvlist: byte %d in "fss/0xcc7ad54b018aa73b/props/mountpoint": string contains a NUL byte: malformed`, i)
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	b = readFile(t, "zfsfuse-label-mirror.xdr")
	i = bytes.Index(b, []byte("/tmp/nvl2b.img"))
	b[i-1] = 0x0f // its length
	_, _, err = Unpack(b, Limits{})
	if err == nil || !strings.Contains(err.Error(), `in "vdev_tree/children[1]/path"`) {
		t.Errorf("got %v", err)
	}
	b = readFile(t, "zfsfuse-pool-stats-file.native")
	i = bytes.Index(b, []byte("stats\x00"))
	b[i+6+8*3] = 0 // does not break the pair
	b[i-8] = 3     // its nelem
	_, _, err = Unpack(b, Limits{})
	if err == nil || !strings.Contains(err.Error(), `in "vdev_tree/stats"`) {
		t.Errorf("got %v", err)
	}
}

// samples are the real packed lists and the packs of the test lists.
func samples(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob("testdata/*.xdr")
	natives, _ := filepath.Glob("testdata/*.native")
	for _, f := range append(files, natives...) {
		out[filepath.Base(f)] = readFile(t, filepath.Base(f))
	}
	for _, tk := range readTokens(t) {
		b, err := tokenPayload(tk.token)
		if err != nil {
			t.Fatal(err)
		}
		out[tk.name] = b
	}
	for name, l := range map[string]*List{"all": allTypes(), "empty": emptyArrays()} {
		out[name+".xdr"] = mustPack(t, l, XDR)
		out[name+".native"] = mustPack(t, l, Native)
		be, _ := pack(l, Native, true)
		out[name+".be"] = be
	}
	return out
}

// TestTruncations cuts every sample at every length.
func TestTruncations(t *testing.T) {
	for name, b := range samples(t) {
		for n := range len(b) {
			if l, _, err := Unpack(b[:n], Limits{}); err == nil {
				t.Fatalf("%s cut at %d decodes: %v", name, n, dump(l))
			}
		}
		if _, _, err := Unpack(b, Limits{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestMutations changes bytes of every sample (every byte of the small
// ones): decoding must not panic, and what decodes must be canonical (see
// checkUnpacked). FuzzUnpack goes further.
func TestMutations(t *testing.T) {
	for name, b := range samples(t) {
		step := max(1, len(b)/800)
		for i := 0; i < len(b); i += step {
			for _, x := range []byte{0x01, 0xff} {
				c := bytes.Clone(b)
				c[i] ^= x
				if err := checkUnpacked(c); err != nil {
					t.Fatalf("%s byte %d ^ %#x: %v", name, i, x, err)
				}
			}
		}
	}
}

// TestAllocations bounds what Unpack allocates for inputs that pack many
// small elements into few bytes.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations differ under the race detector")
	}
	const n = 20000
	names := &List{}
	for i := range n {
		names.Pairs = append(names.Pairs, Pair{fmt.Sprint(i), Boolean, nil})
	}
	lists := make([]*List, n)
	for i := range lists {
		lists[i] = &List{}
	}
	nested := &List{}
	for i := range n / 4 {
		nested.Pairs = append(nested.Pairs, Pair{fmt.Sprint(i), NVList, one("", Boolean, nil)})
	}
	inputs := map[string]*List{
		"pairs":         names,
		"nested":        nested,
		"empty strings": one("s", StringArray, make([]string, n)),
		"empty lists":   one("l", NVListArray, lists),
		"uint8s":        one("b", Uint8Array, make([]byte, n)),
		"booleans":      one("b", BooleanArray, make([]bool, n)),
		"int16s":        one("i", Int16Array, make([]int64, n)),
	}
	for name, l := range inputs {
		for _, enc := range []Encoding{XDR, Native} {
			b := mustPack(t, l, enc)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := Unpack(b, Limits{})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if ratio := float64(alloc) / float64(len(b)); ratio > 6 {
				t.Errorf("%s %v: %d bytes allocated for %d bytes of input (%.1fx)", name, enc, alloc, len(b), ratio)
			}
		}
	}
}
