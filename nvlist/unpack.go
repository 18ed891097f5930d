package nvlist

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/pkg/errors"
)

// Unpack decodes a packed list of either encoding, and native lists of
// either byte order. It refuses bytes after the list (see the package
// documentation) and anything libnvpair would refuse or could read
// differently. Errors give the byte offset and the pair's path.
func Unpack(b []byte, lim Limits) (*List, Encoding, error) {
	d := &decoder{b: b, lim: lim.withDefaults()}
	if len(b) < 4 {
		return nil, 0, d.errf(0, ErrTruncated, "%d bytes, no header", len(b))
	}
	enc := Encoding(b[0])
	if enc != Native && enc != XDR {
		return nil, enc, d.errf(0, ErrMalformed, "unknown encoding %d", b[0])
	}
	if b[1] > 1 || b[2] != 0 || b[3] != 0 {
		return nil, enc, d.errf(1, ErrMalformed, "bad header % x", b[:4])
	}
	d.off = 4
	var l *List
	var err error
	if enc == XDR {
		d.bo = binary.BigEndian
		l, err = d.xdrList(0)
	} else {
		d.bo = binary.BigEndian
		if b[1] == 1 {
			d.bo = binary.LittleEndian
		}
		l, err = d.nativeTop()
	}
	if err != nil {
		return nil, enc, err
	}
	if err := d.checkTrailer(); err != nil {
		return nil, enc, err
	}
	return l, enc, nil
}

// decoder is a bounds-checked cursor over the whole packed buffer.
type decoder struct {
	b     []byte
	off   int
	bo    binary.ByteOrder
	lim   Limits
	pairs int
	// slack is the number of bytes libnvpair's XDR size estimate counts
	// but does not write: 4 for each empty numeric array.
	slack int
	// path leads to the pair being decoded, for error messages.
	path []pathElem
}

func (d *decoder) errf(off int, kind error, format string, args ...any) error {
	where := fmt.Sprintf("nvlist: byte %d", off)
	if len(d.path) > 0 {
		where += fmt.Sprintf(" in %q", formatPath(d.path))
	}
	return errors.Wrapf(kind, "%s: %s", where, fmt.Sprintf(format, args...))
}

// inPair makes name, in the list whose path has length base, the pair
// that errors name.
func (d *decoder) inPair(base int, name string) {
	d.path = append(d.path[:base], pathElem{name: name, index: -1})
}

func (d *decoder) left() int { return len(d.b) - d.off }

// need fails unless n more bytes are available.
func (d *decoder) need(n int64, what string) error {
	if n < 0 || n > int64(d.left()) {
		return d.errf(d.off, ErrTruncated, "%s needs %d bytes, %d left", what, n, d.left())
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	v := d.bo.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	v := d.bo.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// listHeader reads a list's version and flags.
func (d *decoder) listHeader() (uint32, error) {
	off := d.off
	ver, err := d.u32("list version")
	if err != nil {
		return 0, err
	}
	flags, err := d.u32("list flags")
	if err != nil {
		return 0, err
	}
	return flags, d.checkListHeader(off, ver, flags)
}

// checkListHeader refuses versions other than NV_VERSION and unknown
// flags; libnvpair checks the version of native embedded lists only and
// masks their flags.
func (d *decoder) checkListHeader(off int, ver, flags uint32) error {
	if ver != 0 {
		return d.errf(off, ErrMalformed, "list version %d", int32(ver))
	}
	if flags&^(UniqueName|UniqueNameType) != 0 {
		return d.errf(off+4, ErrMalformed, "list flags %#x", flags)
	}
	return nil
}

// countPair enforces MaxPairs.
func (d *decoder) countPair(off int) error {
	d.pairs++
	if d.pairs > d.lim.MaxPairs {
		return d.errf(off, ErrTooManyPairs, "more than %d pairs", d.lim.MaxPairs)
	}
	return nil
}

// nest enforces MaxDepth before decoding a list at depth.
func (d *decoder) nest(depth int) error {
	if depth > d.lim.MaxDepth {
		return d.errf(d.off, ErrTooDeep, "more than %d levels of embedded lists", d.lim.MaxDepth)
	}
	return nil
}

// checkNames refuses a list with a repeated name, at offset off. Old
// libnvpair looked up the first of two same-named pairs, new libnvpair
// the last one; the flags of the list do not matter.
func (d *decoder) checkNames(l *List, off int) error {
	dup := func(i, j int) error {
		return d.errf(off, ErrDuplicateName, "pair %d repeats the name %q of pair %d", j, l.Pairs[j].Name, i)
	}
	if len(l.Pairs) <= 16 {
		for j := range l.Pairs {
			for i := range j {
				if l.Pairs[i].Name == l.Pairs[j].Name {
					return dup(i, j)
				}
			}
		}
		return nil
	}
	idx := make([]int32, len(l.Pairs))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return strings.Compare(l.Pairs[a].Name, l.Pairs[b].Name) })
	for k := 1; k < len(idx); k++ {
		if l.Pairs[idx[k-1]].Name == l.Pairs[idx[k]].Name {
			return dup(int(idx[k-1]), int(idx[k]))
		}
	}
	return nil
}

// checkTrailer refuses bytes after the list, except the zero bytes that
// libnvpair's XDR size estimate leaves at the end of its buffer.
func (d *decoder) checkTrailer() error {
	rest := d.b[d.off:]
	if len(rest) != d.slack {
		return d.errf(d.off, ErrMalformed, "%d bytes after the end of the list, want %d", len(rest), d.slack)
	}
	for i, c := range rest {
		if c != 0 {
			return d.errf(d.off+i, ErrMalformed, "nonzero byte after the end of the list")
		}
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendPair appends, doubling the capacity: append's gentler growth of
// large slices allocates about five times the final size in all.
func appendPair(pairs []Pair, p Pair) []Pair {
	if len(pairs) == cap(pairs) {
		pairs = slices.Grow(pairs, max(len(pairs), 1))
	}
	return append(pairs, p)
}
