package nvlist

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/pkg/errors"
)

// Pack encodes l as nvlist_pack would: native lists little-endian, XDR
// with the zero bytes libnvpair leaves at the end for empty numeric
// arrays. It refuses, with ErrInvalid, lists that Unpack or libnvpair
// would refuse: values whose Go type does not match their Type or that do
// not fit it, names or strings with a NUL, duplicate names, unknown flags,
// nesting beyond DefaultMaxDepth, and XDR pairs over libnvpair's
// NVS_XDR_MAX_LEN estimate (arrays of many short strings near the end).
func Pack(l *List, enc Encoding) ([]byte, error) {
	return pack(l, enc, false)
}

// pack is Pack, writing native lists big-endian if bigEndian is set.
func pack(l *List, enc Encoding, bigEndian bool) ([]byte, error) {
	e := &encoder{}
	var err error
	switch enc {
	case Native:
		e.bo = binary.LittleEndian
		e.b = append(e.b, byte(Native), 1, 0, 0)
		if bigEndian {
			e.bo, e.b[1] = binary.BigEndian, 0
		}
		if err = e.listHeader(l); err == nil {
			err = e.nativePairs(l, 0)
		}
	case XDR:
		e.bo = binary.BigEndian
		e.b = append(e.b, byte(XDR), 1, 0, 0)
		err = e.xdrList(l, 0)
		e.b = append(e.b, make([]byte, e.slack)...)
		if err == nil {
			err = e.checkXDRBounds()
		}
	default:
		return nil, errors.Wrapf(ErrInvalid, "nvlist: unknown encoding %d", enc)
	}
	if err != nil {
		return nil, err
	}
	if len(e.b) > math.MaxInt32 {
		return nil, errors.Wrapf(ErrInvalid, "nvlist: packed size %d", len(e.b))
	}
	return e.b, nil
}

type encoder struct {
	b  []byte
	bo interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	slack int        // see decoder.slack
	path  []pathElem // see decoder.path
	// sizes holds, for each XDR pair, where its value starts and its
	// decode size, for checkXDRBounds.
	sizes []xdrSize
}

type xdrSize struct {
	off  int
	size int64
	path string
}

// checkXDRBounds refuses lists that libnvpair packs but cannot unpack: a
// pair whose decode size is larger than NVS_XDR_MAX_LEN of the bytes
// after it, such as an array of empty strings near the end.
func (e *encoder) checkXDRBounds() error {
	for _, s := range e.sizes {
		if s.size > xdrMaxLen(len(e.b)-s.off) {
			return errors.Wrapf(ErrInvalid, "nvlist %q: libnvpair would not unpack a pair of %d bytes from %d bytes (NVS_XDR_MAX_LEN)", s.path, s.size, len(e.b)-s.off)
		}
	}
	return nil
}

func (e *encoder) invalid(format string, args ...any) error {
	where := "nvlist"
	if len(e.path) > 0 {
		where += fmt.Sprintf(" %q", formatPath(e.path))
	}
	return errors.Wrapf(ErrInvalid, "%s: %s", where, fmt.Sprintf(format, args...))
}

func (e *encoder) u16(x uint16) { e.b = e.bo.AppendUint16(e.b, x) }
func (e *encoder) u32(x uint32) { e.b = e.bo.AppendUint32(e.b, x) }
func (e *encoder) u64(x uint64) { e.b = e.bo.AppendUint64(e.b, x) }

// pad appends zeros until the bytes since start are a multiple of n.
func (e *encoder) pad(start, n int) {
	for (len(e.b)-start)%n != 0 {
		e.b = append(e.b, 0)
	}
}

// listHeader writes version 0 and the flags.
func (e *encoder) listHeader(l *List) error {
	if l == nil {
		return e.invalid("nil list")
	}
	if l.Flags&^(UniqueName|UniqueNameType) != 0 {
		return e.invalid("list flags %#x", l.Flags)
	}
	e.u32(0)
	e.u32(l.Flags)
	return nil
}

// checkPairs refuses duplicate names, and pairs whose value does not
// match their type.
func (e *encoder) checkPairs(l *List, depth int) error {
	if depth > DefaultMaxDepth {
		return e.invalid("more than %d levels of embedded lists", DefaultMaxDepth)
	}
	base := len(e.path)
	defer func() { e.path = e.path[:base] }()
	seen := make(map[string]bool, len(l.Pairs))
	for _, pr := range l.Pairs {
		e.path = append(e.path[:base], pathElem{name: pr.Name, index: -1})
		if seen[pr.Name] {
			return e.invalid("duplicate name")
		}
		seen[pr.Name] = true
		if len(pr.Name) > maxNameLen || strings.IndexByte(pr.Name, 0) >= 0 {
			return e.invalid("name of %d bytes or with a NUL", len(pr.Name))
		}
		if !checkValue(pr) {
			return e.invalid("%s value %#v", pr.Type, pr.Value)
		}
		if n := nativePairSize(pr); n > math.MaxInt32 {
			return e.invalid("pair of %d bytes", n)
		}
	}
	return nil
}

// checkValue reports whether pr.Value has the Go type of pr.Type and
// fits it.
func checkValue(pr Pair) bool {
	t := pr.Type
	switch v := pr.Value.(type) {
	case nil:
		return t == Boolean
	case bool:
		return t == BooleanValue
	case float64:
		return t == Double
	case uint64:
		return (t == Byte || t == Uint8 || t == Uint16 || t == Uint32 || t == Uint64) && fits(t, v)
	case int64:
		return (t == Int8 || t == Int16 || t == Int32 || t == Int64 || t == Hrtime) && fits(t, uint64(v))
	case string:
		return t == String && strings.IndexByte(v, 0) < 0
	case []string:
		for _, s := range v {
			if strings.IndexByte(s, 0) >= 0 {
				return false
			}
		}
		return t == StringArray
	case *List:
		return t == NVList && v != nil
	case []*List:
		return t == NVListArray
	case []byte:
		return t == ByteArray || t == Uint8Array
	case []bool:
		return t == BooleanArray
	case []uint64:
		for _, x := range v {
			if !fits(elemType(t), x) {
				return false
			}
		}
		return t == Uint16Array || t == Uint32Array || t == Uint64Array
	case []int64:
		for _, x := range v {
			if !fits(elemType(t), uint64(x)) {
				return false
			}
		}
		return t == Int8Array || t == Int16Array || t == Int32Array || t == Int64Array
	}
	return false
}

// fits reports whether the 64-bit pattern x is in the range of t.
func fits(t Type, x uint64) bool {
	switch t {
	case Byte, Uint8:
		return x <= math.MaxUint8
	case Uint16:
		return x <= math.MaxUint16
	case Uint32:
		return x <= math.MaxUint32
	case Int8:
		return int64(x) >= math.MinInt8 && int64(x) <= math.MaxInt8
	case Int16:
		return int64(x) >= math.MinInt16 && int64(x) <= math.MaxInt16
	case Int32:
		return int64(x) >= math.MinInt32 && int64(x) <= math.MaxInt32
	}
	return true
}

// toBits is the 64-bit pattern of a checked scalar value.
func toBits(v any) uint64 {
	switch v := v.(type) {
	case bool:
		if v {
			return 1
		}
	case uint64:
		return v
	case int64:
		return uint64(v)
	case float64:
		return math.Float64bits(v)
	}
	return 0
}

// elems calls f with the 64-bit pattern of each element of a numeric
// array.
func elems(v any, f func(uint64)) {
	switch v := v.(type) {
	case []byte:
		for _, x := range v {
			f(uint64(x))
		}
	case []bool:
		for _, x := range v {
			f(toBits(x))
		}
	case []uint64:
		for _, x := range v {
			f(x)
		}
	case []int64:
		for _, x := range v {
			f(uint64(x))
		}
	}
}

// nativePairs writes l's pairs and the int32 0 that ends the list.
func (e *encoder) nativePairs(l *List, depth int) error {
	if err := e.checkPairs(l, depth); err != nil {
		return err
	}
	base := len(e.path)
	for _, pr := range l.Pairs {
		e.path = append(e.path[:base], pathElem{name: pr.Name, index: -1})
		start := len(e.b)
		size := nativePairSize(pr)
		e.u32(uint32(size))
		e.u16(uint16(len(pr.Name) + 1))
		e.u16(0)
		e.u32(uint32(valueLen(pr)))
		e.u32(uint32(pr.Type))
		e.b = append(e.b, pr.Name...)
		e.b = append(e.b, 0)
		e.pad(start, 8)
		var lists []*List
		switch v := pr.Value.(type) {
		case string:
			e.b = append(append(e.b, v...), 0)
		case []string:
			e.b = append(e.b, make([]byte, 8*len(v))...)
			for _, s := range v {
				e.b = append(append(e.b, s...), 0)
			}
		case *List:
			lists = []*List{v}
		case []*List:
			lists = v
			e.b = append(e.b, make([]byte, 8*len(v))...)
		default:
			if pr.Type.isArray() {
				elems(v, func(x uint64) { e.nativeWord(elemType(pr.Type), x) })
			} else if pr.Type != Boolean {
				e.nativeWord(pr.Type, toBits(v))
			}
		}
		for _, sub := range lists {
			if err := e.listHeader(sub); err != nil {
				return err
			}
			e.b = append(e.b, make([]byte, nvlistStruct-8)...)
		}
		e.pad(start, 8)
		for i, sub := range lists {
			if pr.Type == NVListArray {
				e.path[base].index = i
			}
			if err := e.nativePairs(sub, depth+1); err != nil {
				return err
			}
		}
	}
	e.path = e.path[:base]
	e.u32(0)
	return nil
}

// nativeWord writes a scalar in t's native size.
func (e *encoder) nativeWord(t Type, x uint64) {
	switch scalarSize(t) {
	case 1:
		e.b = append(e.b, byte(x))
	case 2:
		e.u16(uint16(x))
	case 4:
		e.u32(uint32(x))
	default:
		e.u64(x)
	}
}

// xdrList writes version, flags, pairs and the two zero words.
func (e *encoder) xdrList(l *List, depth int) error {
	if err := e.listHeader(l); err != nil {
		return err
	}
	if err := e.checkPairs(l, depth); err != nil {
		return err
	}
	base := len(e.path)
	for _, pr := range l.Pairs {
		e.path = append(e.path[:base], pathElem{name: pr.Name, index: -1})
		if err := e.xdrPair(pr, depth); err != nil {
			return err
		}
	}
	e.path = e.path[:base]
	e.u32(0)
	e.u32(0)
	return nil
}

// xdrPair writes encode size, decode size, name, type, element count and
// value, as nvs_xdr_nvpair and nvs_xdr_nvp_op do.
func (e *encoder) xdrPair(pr Pair, depth int) error {
	start, slack := len(e.b), e.slack
	e.u32(0) // encode size, set below
	e.u32(uint32(nativePairSize(pr)))
	e.sizes = append(e.sizes, xdrSize{len(e.b), nativePairSize(pr), formatPath(e.path)})
	e.xdrString(pr.Name)
	e.u32(uint32(pr.Type))
	n := valueLen(pr)
	e.u32(uint32(n))
	switch v := pr.Value.(type) {
	case string:
		e.xdrString(v)
	case []string:
		for _, s := range v {
			e.xdrString(s)
		}
	case *List:
		if err := e.xdrList(v, depth+1); err != nil {
			return err
		}
	case []*List:
		for i, sub := range v {
			e.path[len(e.path)-1].index = i
			if err := e.xdrList(sub, depth+1); err != nil {
				return err
			}
		}
	case []byte:
		if pr.Type == ByteArray {
			e.b = append(e.b, v...)
			e.pad(start, 4)
			break
		}
		e.xdrArray(pr.Type, v)
	default:
		switch {
		case pr.Type.isArray():
			e.xdrArray(pr.Type, v)
		case pr.Type != Boolean:
			e.xdrWord(pr.Type, toBits(v))
		}
	}
	size := len(e.b) - start + e.slack - slack
	if size > math.MaxInt32 {
		return e.invalid("pair of %d bytes", size)
	}
	e.bo.PutUint32(e.b[start:], uint32(size))
	return nil
}

// xdrArray writes an xdr_array of numbers, or nothing when it is empty,
// like libnvpair, whose size estimate still counts the 4-byte count.
func (e *encoder) xdrArray(t Type, v any) {
	n := valueLen(Pair{Type: t, Value: v})
	if n == 0 {
		e.slack += 4
		return
	}
	e.u32(uint32(n))
	elems(v, func(x uint64) { e.xdrWord(elemType(t), x) })
}

// xdrWord writes a scalar: 64-bit types in 8 bytes, others in 4, one-byte
// and 16-bit ones zero-extended as the kernel's XDR does.
func (e *encoder) xdrWord(t Type, x uint64) {
	switch scalarSize(t) {
	case 8:
		e.u64(x)
	case 1:
		e.u32(uint32(uint8(x)))
	case 2:
		e.u32(uint32(uint16(x)))
	default:
		e.u32(uint32(x))
	}
}

// xdrString writes length, bytes and zero padding.
func (e *encoder) xdrString(s string) {
	e.u32(uint32(len(s)))
	start := len(e.b)
	e.b = append(e.b, s...)
	e.pad(start, 4)
}
