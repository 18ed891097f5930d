package nvlist

import "bytes"

// nativeTop decodes the top-level native list: int32 version, int32
// flags, pairs, int32 0.
func (d *decoder) nativeTop() (*List, error) {
	flags, err := d.listHeader()
	if err != nil {
		return nil, err
	}
	l := &List{Flags: flags}
	return l, d.nativePairs(l, 0)
}

// nativePairs decodes pairs into l up to the int32 0 that ends a list.
// Each pair is an nvpair_t: int32 nvp_size (the whole pair), int16
// name_sz (with the NUL), int16 reserved, int32 nelem, int32 type, the
// name at 16 and the value at NV_ALIGN(16+name_sz), both padded to 8.
func (d *decoder) nativePairs(l *List, depth int) error {
	listAt, base := d.off, len(d.path)
	for {
		d.path = d.path[:base]
		start := d.off
		if err := d.need(4, "pair size"); err != nil {
			return err
		}
		size := int32(d.bo.Uint32(d.b[start:]))
		if size == 0 {
			d.off += 4
			return d.checkNames(l, listAt)
		}
		if size > 0 && int64(size) > int64(d.left()) {
			return d.errf(start, ErrTruncated, "pair of %d bytes, %d left", size, d.left())
		}
		if size < 24 {
			return d.errf(start, ErrMalformed, "pair size %d", size)
		}
		if err := d.countPair(start); err != nil {
			return err
		}
		pb := d.b[start : start+int(size)]
		d.off += int(size)

		nameSz := int64(int16(d.bo.Uint16(pb[4:])))
		valOff := align8(nvpairHeader + nameSz)
		if nameSz <= 0 || valOff > int64(size) {
			return d.errf(start+4, ErrMalformed, "name size %d in a pair of %d bytes", nameSz, size)
		}
		raw := pb[nvpairHeader : nvpairHeader+nameSz]
		if bytes.IndexByte(raw, 0) != len(raw)-1 {
			return d.errf(start+nvpairHeader, ErrMalformed, "name is not %d bytes and a NUL", nameSz-1)
		}
		name := string(raw[:len(raw)-1])
		d.inPair(base, name)
		if d.bo.Uint16(pb[6:]) != 0 || !allZero(pb[nvpairHeader+nameSz:valOff]) {
			return d.errf(start+6, ErrMalformed, "nonzero reserved field or padding")
		}
		nelem := d.bo.Uint32(pb[8:])
		t := Type(int32(d.bo.Uint32(pb[12:])))
		if err := checkTypeNelem(t, nelem); err != nil {
			return d.errf(start+8, ErrMalformed, "%v", err)
		}
		pr := Pair{Name: name, Type: t}
		v := pb[valOff:]
		used, err := d.nativeValue(&pr, nelem, v, depth, start+int(valOff))
		if err != nil {
			return err
		}
		if align8(used) != int64(len(v)) {
			return d.errf(start, ErrMalformed, "pair size %d, want %d", size, nativePairSize(pr))
		}
		if !allZero(v[used:]) {
			return d.errf(start+int(valOff+used), ErrMalformed, "nonzero padding after the value")
		}
		l.Pairs = appendPair(l.Pairs, pr)
	}
}

// nativeValue decodes the value region v of pr (at offset off) into
// pr.Value and returns its unpadded size. Embedded lists' pairs follow
// the pair in the stream.
func (d *decoder) nativeValue(pr *Pair, nelem uint32, v []byte, depth int, off int) (int64, error) {
	t, n := pr.Type, int64(nelem)
	short := func(want int64) error {
		return d.errf(off, ErrMalformed, "%s of %d elements in %d bytes, want %d", t, n, len(v), want)
	}
	switch t {
	case Boolean:
		return 0, nil
	case String:
		i := bytes.IndexByte(v, 0)
		if i < 0 {
			return 0, d.errf(off, ErrMalformed, "string is not NUL-terminated")
		}
		pr.Value = string(v[:i])
		return int64(i) + 1, nil
	case StringArray:
		// nelem zeroed pointer slots, then the strings one after another.
		if 9*n > int64(len(v)) {
			return 0, short(9 * n)
		}
		if !allZero(v[:8*n]) {
			return 0, d.errf(off, ErrMalformed, "nonzero string pointers")
		}
		out, rest := make([]string, n), v[8*n:]
		for i := range out {
			j := bytes.IndexByte(rest, 0)
			if j < 0 {
				d.path[len(d.path)-1].index = i
				return 0, d.errf(off+len(v)-len(rest), ErrMalformed, "string is not NUL-terminated")
			}
			out[i], rest = string(rest[:j]), rest[j+1:]
		}
		pr.Value = out
		return int64(len(v) - len(rest)), nil
	case NVList, NVListArray:
		return d.nativeLists(pr, n, v, depth, off)
	}
	es := scalarSize(t)
	if es*n > int64(len(v)) {
		return 0, short(es * n)
	}
	if !t.isArray() {
		x, ok := d.nativeWord(t, v)
		if !ok {
			return 0, d.errf(off, ErrMalformed, "%s value %#x", t, x)
		}
		pr.Value = fromBits(t, x)
		return es, nil
	}
	out, elem := makeArray(t, int(n)), elemType(t)
	for i := range int(n) {
		x, ok := d.nativeWord(elem, v[int64(i)*es:])
		if !ok {
			d.path[len(d.path)-1].index = i
			return 0, d.errf(off+i*int(es), ErrMalformed, "%s value %#x", elem, x)
		}
		setElem(out, i, x)
	}
	pr.Value = out
	return es * n, nil
}

// nativeLists decodes an NVList value (an nvlist_t) or an NVListArray
// value (n zeroed pointer slots and n nvlist_t), then the lists' pairs.
func (d *decoder) nativeLists(pr *Pair, n int64, v []byte, depth int, off int) (int64, error) {
	slots := int64(8)
	if pr.Type == NVList {
		slots = 0
	}
	size := n * (slots + nvlistStruct)
	if size > int64(len(v)) {
		return 0, d.errf(off, ErrMalformed, "%s of %d lists in %d bytes, want %d", pr.Type, n, len(v), size)
	}
	if !allZero(v[:slots*n]) {
		return 0, d.errf(off, ErrMalformed, "nonzero nvlist pointers")
	}
	if n > 0 {
		if err := d.nest(depth + 1); err != nil {
			return 0, err
		}
	}
	out := make([]*List, n)
	for i := range out {
		at := slots*n + int64(i)*nvlistStruct
		s := v[at : at+nvlistStruct]
		if pr.Type == NVListArray {
			d.path[len(d.path)-1].index = i
		}
		// nvlist_t: int32 version, uint32 nvflag, then nvl_priv, nvl_flag
		// and nvl_pad, which libnvpair zeroes or never sets.
		ver, flags := d.bo.Uint32(s), d.bo.Uint32(s[4:])
		if err := d.checkListHeader(off+int(at), ver, flags); err != nil {
			return 0, err
		}
		if !allZero(s[8:]) {
			return 0, d.errf(off+int(at)+8, ErrMalformed, "nonzero nvlist_t fields")
		}
		out[i] = &List{Flags: flags}
		if err := d.nativePairs(out[i], depth+1); err != nil {
			return 0, err
		}
	}
	if pr.Type == NVList {
		pr.Value = out[0]
	} else {
		pr.Value = out
	}
	return size, nil
}

// nativeWord reads a scalar of t's size from b as a 64-bit pattern,
// sign-extending signed types; booleans must be 0 or 1.
func (d *decoder) nativeWord(t Type, b []byte) (uint64, bool) {
	switch scalarSize(t) {
	case 1:
		if t == Int8 {
			return uint64(int64(int8(b[0]))), true
		}
		return uint64(b[0]), true
	case 2:
		if t == Int16 {
			return uint64(int64(int16(d.bo.Uint16(b)))), true
		}
		return uint64(d.bo.Uint16(b)), true
	case 4:
		x := d.bo.Uint32(b)
		if t == Int32 {
			return uint64(int64(int32(x))), true
		}
		return uint64(x), t != BooleanValue || x <= 1
	}
	return d.bo.Uint64(b), true
}
