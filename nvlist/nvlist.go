// Package nvlist decodes and encodes packed ZFS name-value lists, the
// format of libnvpair's nvlist_pack, in both of its encodings.
//
// A packed list starts with a 4-byte header {encoding, endian, 0, 0}.
// XDR (encoding 1) is big-endian in 4-byte units: a list is version,
// flags, pairs, and two zero words; a pair is its XDR size, its native
// size, name, type, element count and value. zfs send writes the header
// of compound streams (-R, -p, -I) this way. NATIVE (encoding 0) is the
// in-memory nvpair_t layout in the writer's byte order, 8-byte aligned,
// with embedded lists' pairs following their parent pair; resume tokens
// and the BEGIN payload of raw or resumed streams use it.
//
// The input is hostile, so the decoder accepts only what libnvpair
// (nvpair.c) would accept and read the same way, and refuses anything a
// ZFS reader could plausibly interpret differently from us:
//   - every size field, XDR count and native nvp_size must equal the size
//     computed from the structure (libnvpair's validation, and libzfs
//     always writes them right, so a mismatch is a forgery);
//   - a name may appear only once per list, whatever the list's flags
//     (libnvpair keeps both pairs, and old and new versions look up
//     different ones);
//   - names and strings contain no NUL byte; padding, reserved fields and
//     packed pointers are zero; versions are 0; flags are only
//     NV_UNIQUE_NAME and NV_UNIQUE_NAME_TYPE; booleans are 0 or 1;
//   - nesting is limited to 20 levels (the kernel's nvpair_max_recursion);
//   - bytes after the end of the list are refused, except the zero bytes
//     libnvpair itself leaves at the end of an XDR buffer holding empty
//     numeric arrays (its size estimate counts 4 bytes that it does not
//     write for each).
//
// So each list has exactly one encoding that decodes to it, up to the
// byte order of native lists (libnvpair reads only its host's; this
// package reads both), the XDR header's endian byte, and the sign
// extension of one-byte and int16 XDR words: x86 userland sign-extends
// them, the kernel zero-extends them and refuses anything else, and the
// decoder accepts both forms. Double, which only userland libnvpair
// knows, is accepted.
//
// The decoder never panics and allocates at most about five times its
// input. Pack writes what libnvpair writes for the same list: native
// lists little-endian, one-byte and int16 XDR words zero-extended.
package nvlist

import (
	"math"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Encoding is the first byte of a packed list.
type Encoding uint8

// The two encodings of nvlist_pack.
const (
	Native Encoding = 0
	XDR    Encoding = 1
)

func (e Encoding) String() string {
	switch e {
	case Native:
		return "native"
	case XDR:
		return "xdr"
	}
	return "encoding(" + strconv.Itoa(int(e)) + ")"
}

// Type is a pair's data type, numbered as libnvpair's data_type_t.
type Type int32

// The data types, with the Go type of Pair.Value for each.
const (
	Boolean      Type = 1  // nil: presence is the value
	Byte         Type = 2  // uint64
	Int16        Type = 3  // int64
	Uint16       Type = 4  // uint64
	Int32        Type = 5  // int64
	Uint32       Type = 6  // uint64
	Int64        Type = 7  // int64
	Uint64       Type = 8  // uint64
	String       Type = 9  // string
	ByteArray    Type = 10 // []byte
	Int16Array   Type = 11 // []int64
	Uint16Array  Type = 12 // []uint64
	Int32Array   Type = 13 // []int64
	Uint32Array  Type = 14 // []uint64
	Int64Array   Type = 15 // []int64
	Uint64Array  Type = 16 // []uint64
	StringArray  Type = 17 // []string
	Hrtime       Type = 18 // int64
	NVList       Type = 19 // *List
	NVListArray  Type = 20 // []*List
	BooleanValue Type = 21 // bool
	Int8         Type = 22 // int64
	Uint8        Type = 23 // uint64
	BooleanArray Type = 24 // []bool
	Int8Array    Type = 25 // []int64
	Uint8Array   Type = 26 // []byte
	Double       Type = 27 // float64
)

var typeNames = [...]string{
	Boolean: "boolean", Byte: "byte", Int16: "int16", Uint16: "uint16",
	Int32: "int32", Uint32: "uint32", Int64: "int64", Uint64: "uint64",
	String: "string", ByteArray: "byte_array", Int16Array: "int16_array",
	Uint16Array: "uint16_array", Int32Array: "int32_array",
	Uint32Array: "uint32_array", Int64Array: "int64_array",
	Uint64Array: "uint64_array", StringArray: "string_array",
	Hrtime: "hrtime", NVList: "nvlist", NVListArray: "nvlist_array",
	BooleanValue: "boolean_value", Int8: "int8", Uint8: "uint8",
	BooleanArray: "boolean_array", Int8Array: "int8_array",
	Uint8Array: "uint8_array", Double: "double",
}

func (t Type) valid() bool { return t >= Boolean && t <= Double }

func (t Type) String() string {
	if t.valid() {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// isArray reports whether t may have any number of elements.
func (t Type) isArray() bool {
	switch t {
	case ByteArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
		Int64Array, Uint64Array, StringArray, NVListArray, BooleanArray,
		Int8Array, Uint8Array:
		return true
	}
	return false
}

// List flags, as in nvlist_alloc.
const (
	UniqueName     uint32 = 0x1 // NV_UNIQUE_NAME
	UniqueNameType uint32 = 0x2 // NV_UNIQUE_NAME_TYPE
)

// Pair is one name-value pair. Value's Go type is given by Type (see the
// Type constants): unsigned scalars are uint64, signed ones and Hrtime
// int64, Byte and Uint8 arrays []byte, other unsigned arrays []uint64,
// signed arrays []int64.
type Pair struct {
	Name  string
	Type  Type
	Value any
}

// List is an nvlist: flags and pairs in stream order. Decoded lists have
// unique names.
type List struct {
	Flags uint32
	Pairs []Pair
}

// Lookup returns the first pair named name.
func (l *List) Lookup(name string) (Pair, bool) {
	if l == nil {
		return Pair{}, false
	}
	for _, p := range l.Pairs {
		if p.Name == name {
			return p, true
		}
	}
	return Pair{}, false
}

// Has reports whether a pair named name exists, of any type.
func (l *List) Has(name string) bool {
	_, ok := l.Lookup(name)
	return ok
}

func lookupAs[T any](l *List, name string, t Type) (T, bool) {
	var zero T
	p, ok := l.Lookup(name)
	if !ok || p.Type != t {
		return zero, false
	}
	v, ok := p.Value.(T)
	return v, ok
}

// String returns the value of a String pair named name.
func (l *List) String(name string) (string, bool) { return lookupAs[string](l, name, String) }

// Uint64 returns the value of a Uint64 pair named name.
func (l *List) Uint64(name string) (uint64, bool) { return lookupAs[uint64](l, name, Uint64) }

// Uint64Array returns the value of a Uint64Array pair named name.
func (l *List) Uint64Array(name string) ([]uint64, bool) {
	return lookupAs[[]uint64](l, name, Uint64Array)
}

// List returns the value of an NVList pair named name.
func (l *List) List(name string) (*List, bool) { return lookupAs[*List](l, name, NVList) }

// Names returns the pairs' names in stream order.
func (l *List) Names() []string {
	if l == nil {
		return nil
	}
	names := make([]string, len(l.Pairs))
	for i, p := range l.Pairs {
		names[i] = p.Name
	}
	return names
}

// Limits bounds the decoder. Zero fields take the defaults.
type Limits struct {
	MaxDepth int // nesting of embedded lists; default 20, at most 100
	MaxPairs int // pairs in the whole tree; default 100000
}

// Defaults of Limits. DefaultMaxDepth is the kernel's nvpair_max_recursion;
// userland libnvpair allows 100, the most MaxDepth can be.
const (
	DefaultMaxDepth = 20
	DefaultMaxPairs = 100000
	maxDepthCap     = 100
)

func (lim Limits) withDefaults() Limits {
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	lim.MaxDepth = min(lim.MaxDepth, maxDepthCap)
	if lim.MaxPairs <= 0 {
		lim.MaxPairs = DefaultMaxPairs
	}
	return lim
}

// Errors of Unpack wrap one of these; Pack's wrap ErrInvalid.
var (
	ErrTruncated     = errors.New("truncated")
	ErrMalformed     = errors.New("malformed")
	ErrDuplicateName = errors.New("duplicate name")
	ErrTooDeep       = errors.New("nested too deeply")
	ErrTooManyPairs  = errors.New("too many pairs")
	ErrInvalid       = errors.New("invalid list")
)

// pathElem is one step of the path to a pair in error messages: a name,
// and an index for an element of an nvlist array.
type pathElem struct {
	name  string
	index int // -1 unless in an nvlist array
}

func formatPath(path []pathElem) string {
	var b strings.Builder
	for i, e := range path {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(e.name)
		if e.index >= 0 {
			b.WriteString("[" + strconv.Itoa(e.index) + "]")
		}
	}
	return b.String()
}

// Named sizes of the native layout.
const (
	nvpairHeader = 16 // sizeof (nvpair_t)
	nvlistStruct = 24 // sizeof (nvlist_t)
	maxNameLen   = math.MaxInt16 - 1
)

func align8(n int64) int64 { return (n + 7) &^ 7 }
func align4(n int64) int64 { return (n + 3) &^ 3 }

// scalarSize is the native size of one element of t, 0 for variable-size
// and list types.
func scalarSize(t Type) int64 {
	switch t {
	case Byte, Int8, Uint8, ByteArray, Int8Array, Uint8Array:
		return 1
	case Int16, Uint16, Int16Array, Uint16Array:
		return 2
	case Int32, Uint32, BooleanValue, Int32Array, Uint32Array, BooleanArray:
		return 4
	case Int64, Uint64, Hrtime, Double, Int64Array, Uint64Array:
		return 8
	}
	return 0
}

// checkTypeNelem mirrors i_validate_type_nelem: Boolean has no element,
// other scalars one, arrays any number.
func checkTypeNelem(t Type, nelem uint32) error {
	switch {
	case !t.valid():
		return errors.Errorf("unknown type %d", int32(t))
	case t == Boolean && nelem != 0:
		return errors.Errorf("boolean with %d elements", nelem)
	case t != Boolean && !t.isArray() && nelem != 1:
		return errors.Errorf("%s with %d elements", t, nelem)
	}
	return nil
}

// nativeValueSize is i_get_value_size for a decoded value: the unpadded
// size of the value in the native layout.
func nativeValueSize(p Pair) int64 {
	switch v := p.Value.(type) {
	case string:
		return int64(len(v)) + 1
	case []string:
		n := 8 * int64(len(v))
		for _, s := range v {
			n += int64(len(s)) + 1
		}
		return n
	case *List:
		return nvlistStruct
	case []*List:
		return int64(len(v)) * (8 + nvlistStruct)
	}
	return scalarSize(p.Type) * int64(valueLen(p))
}

// nativePairSize is NVP_SIZE_CALC: the nvp_size of p.
func nativePairSize(p Pair) int64 {
	return align8(nvpairHeader+int64(len(p.Name))+1) + align8(nativeValueSize(p))
}

// valueLen is the element count of a value; Boolean has none.
func valueLen(p Pair) int {
	switch v := p.Value.(type) {
	case []byte:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []*List:
		return len(v)
	case nil:
		return 0
	}
	return 1
}
