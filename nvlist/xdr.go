package nvlist

import (
	"bytes"
	"math"
)

// xdrMaxLen is NVS_XDR_MAX_LEN: the largest native pair size libnvpair
// accepts with avail bytes left in an XDR buffer.
func xdrMaxLen(avail int) int64 {
	data := max(int64(avail)-20, 0)
	return 24 + 2*data + align4(data/4)
}

// xdrList decodes an XDR list: version, flags, pairs, and a zero
// encode_size and decode_size.
func (d *decoder) xdrList(depth int) (*List, error) {
	flags, err := d.listHeader()
	if err != nil {
		return nil, err
	}
	l := &List{Flags: flags}
	listAt, base := d.off-8, len(d.path)
	for {
		d.path = d.path[:base]
		start := d.off
		enc, err := d.u32("pair encode size")
		if err != nil {
			return nil, err
		}
		dec, err := d.u32("pair decode size")
		if err != nil {
			return nil, err
		}
		if dec == 0 {
			// libnvpair ignores the first word of the end marker.
			if enc != 0 {
				return nil, d.errf(start, ErrMalformed, "end of list with encode size %d", enc)
			}
			return l, d.checkNames(l, listAt)
		}
		if err := d.countPair(start); err != nil {
			return nil, err
		}
		if int32(dec) < 24 || int64(dec) > xdrMaxLen(d.left()) {
			return nil, d.errf(start+4, ErrMalformed, "decode size %d with %d bytes left", int32(dec), d.left())
		}
		slack := d.slack
		name, err := d.xdrString("name")
		if err != nil {
			return nil, err
		}
		if len(name) > maxNameLen {
			return nil, d.errf(start+8, ErrMalformed, "name of %d bytes", len(name))
		}
		d.inPair(base, name)
		typ, err := d.u32("type")
		if err != nil {
			return nil, err
		}
		nelem, err := d.u32("element count")
		if err != nil {
			return nil, err
		}
		t := Type(int32(typ))
		if err := checkTypeNelem(t, nelem); err != nil {
			return nil, d.errf(d.off-8, ErrMalformed, "%v", err)
		}
		pr := Pair{Name: name, Type: t}
		if pr.Value, err = d.xdrValue(t, nelem, depth); err != nil {
			return nil, err
		}
		if want := nativePairSize(pr); int64(dec) != want {
			return nil, d.errf(start+4, ErrMalformed, "decode size %d, want %d", dec, want)
		}
		if want := d.off - start + d.slack - slack; int64(enc) != int64(want) {
			return nil, d.errf(start, ErrMalformed, "encode size %d, want %d", enc, want)
		}
		l.Pairs = appendPair(l.Pairs, pr)
	}
}

// xdrString decodes an XDR string: length, bytes, zero padding to 4. A
// NUL inside would end the string early for libnvpair (and the kernel's
// XDR refuses it), so it is refused.
func (d *decoder) xdrString(what string) (string, error) {
	n, err := d.u32("string length")
	if err != nil {
		return "", err
	}
	if err := d.need(align4(int64(n)), what); err != nil {
		return "", err
	}
	s := d.b[d.off : d.off+int(n)]
	if bytes.IndexByte(s, 0) >= 0 {
		return "", d.errf(d.off, ErrMalformed, "%s contains a NUL byte", what)
	}
	if err := d.xdrPadding(int(n)); err != nil {
		return "", err
	}
	return string(s), nil
}

// xdrPadding skips n bytes of data and their zero padding.
func (d *decoder) xdrPadding(n int) error {
	end := d.off + int(align4(int64(n)))
	if !allZero(d.b[d.off+n : end]) {
		return d.errf(d.off+n, ErrMalformed, "nonzero XDR padding")
	}
	d.off = end
	return nil
}

// emptyValue is the value of an array with no elements, or of Boolean.
func emptyValue(t Type) any {
	switch t {
	case ByteArray, Uint8Array:
		return []byte{}
	case Uint16Array, Uint32Array, Uint64Array:
		return []uint64{}
	case Int8Array, Int16Array, Int32Array, Int64Array:
		return []int64{}
	case BooleanArray:
		return []bool{}
	case StringArray:
		return []string{}
	case NVListArray:
		return []*List{}
	}
	return nil
}

// xdrValue decodes the value of the current pair.
func (d *decoder) xdrValue(t Type, nelem uint32, depth int) (any, error) {
	if nelem == 0 {
		// Boolean and empty arrays have no value at all, not even the
		// count of xdr_array, which libnvpair's size estimate counts.
		if t != ByteArray && t != StringArray && t != NVListArray && t.isArray() {
			d.slack += 4
		}
		return emptyValue(t), nil
	}
	switch t {
	case BooleanValue, Byte, Int8, Uint8, Int16, Uint16, Int32, Uint32:
		off := d.off
		w, err := d.u32("value")
		if err != nil {
			return nil, err
		}
		x, ok := xdrWord(t, w)
		if !ok {
			return nil, d.errf(off, ErrMalformed, "%s value %#x", t, w)
		}
		return fromBits(t, x), nil
	case Int64, Uint64, Hrtime, Double:
		x, err := d.u64("value")
		if err != nil {
			return nil, err
		}
		return fromBits(t, x), nil
	case String:
		return d.xdrString("string")
	case ByteArray:
		if err := d.need(align4(int64(nelem)), "byte array"); err != nil {
			return nil, err
		}
		v := bytes.Clone(d.b[d.off : d.off+int(nelem)])
		return v, d.xdrPadding(int(nelem))
	case StringArray:
		if err := d.need(4*int64(nelem), "string array"); err != nil {
			return nil, err
		}
		v := make([]string, nelem)
		for i := range v {
			d.path[len(d.path)-1].index = i
			s, err := d.xdrString("string")
			if err != nil {
				return nil, err
			}
			v[i] = s
		}
		return v, nil
	case NVList:
		if err := d.nest(depth + 1); err != nil {
			return nil, err
		}
		return d.xdrList(depth + 1)
	case NVListArray:
		if err := d.need(16*int64(nelem), "nvlist array"); err != nil {
			return nil, err
		}
		if err := d.nest(depth + 1); err != nil {
			return nil, err
		}
		v := make([]*List, nelem)
		for i := range v {
			d.path[len(d.path)-1].index = i
			var err error
			if v[i], err = d.xdrList(depth + 1); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	return d.xdrArray(t, nelem)
}

// xdrArray decodes an xdr_array of numbers: a count, which must equal
// nelem (libnvpair would leave the missing elements zero), and elements of
// 4 or 8 bytes.
func (d *decoder) xdrArray(t Type, nelem uint32) (any, error) {
	off := d.off
	n, err := d.u32("array count")
	if err != nil {
		return nil, err
	}
	if n != nelem {
		return nil, d.errf(off, ErrMalformed, "array count %d, %d elements", n, nelem)
	}
	size := max(scalarSize(t), 4)
	if err := d.need(size*int64(nelem), t.String()); err != nil {
		return nil, err
	}
	elem := elemType(t)
	out := makeArray(t, int(nelem))
	for i := range int(nelem) {
		off := d.off
		var x uint64
		if size == 8 {
			x, _ = d.u64("")
		} else {
			w, _ := d.u32("")
			var ok bool
			if x, ok = xdrWord(elem, w); !ok {
				d.path[len(d.path)-1].index = i
				return nil, d.errf(off, ErrMalformed, "%s value %#x", elem, w)
			}
		}
		setElem(out, i, x)
	}
	return out, nil
}

// xdrWord decodes a scalar of at most 32 bits to its 64-bit pattern.
// xdr_char and xdr_short sign-extend in x86 userland and zero-extend in
// the kernel (whose decoder refuses anything else); both forms carry the
// same value. xdr_u_short always zero-extends. Booleans are 0 or 1
// (i_validate_nvpair_value).
func xdrWord(t Type, w uint32) (uint64, bool) {
	char := w <= 0xff || w >= 0xffffff80
	switch t {
	case BooleanValue:
		return uint64(w), w <= 1
	case Byte, Uint8:
		return uint64(uint8(w)), char
	case Int8:
		return uint64(int64(int8(w))), char
	case Int16:
		return uint64(int64(int16(w))), w <= 0xffff || w >= 0xffff8000
	case Uint16:
		return uint64(w), w <= 0xffff
	case Int32:
		return uint64(int64(int32(w))), true
	}
	return uint64(w), true // Uint32
}

// elemType is the scalar type of a numeric array type.
func elemType(t Type) Type {
	switch t {
	case BooleanArray:
		return BooleanValue
	case Int8Array:
		return Int8
	case Uint8Array:
		return Uint8
	case ByteArray:
		return Byte
	}
	return t - Int16Array + Int16
}

// fromBits makes the Go value of a scalar from its 64-bit pattern (signed
// values sign-extended).
func fromBits(t Type, x uint64) any {
	switch t {
	case BooleanValue:
		return x == 1
	case Int8, Int16, Int32, Int64, Hrtime:
		return int64(x)
	case Double:
		return math.Float64frombits(x)
	}
	return x
}

// makeArray allocates the Go value of a numeric array type.
func makeArray(t Type, n int) any {
	switch t {
	case ByteArray, Uint8Array:
		return make([]byte, n)
	case Uint16Array, Uint32Array, Uint64Array:
		return make([]uint64, n)
	case Int8Array, Int16Array, Int32Array, Int64Array:
		return make([]int64, n)
	}
	return make([]bool, n)
}

// setElem stores the 64-bit pattern x as element i of the array a.
func setElem(a any, i int, x uint64) {
	switch a := a.(type) {
	case []byte:
		a[i] = byte(x)
	case []uint64:
		a[i] = x
	case []int64:
		a[i] = int64(x)
	case []bool:
		a[i] = x == 1
	}
}
