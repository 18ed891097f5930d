package sendstream

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/zrep/zrep/nvlist"
)

// A Checker decides whether a BEGIN record may pass. Reader calls it for the
// stream's first BEGIN and for each substream's, in stream order, before
// any byte of that record leaves the Reader; an error stops the stream there.
type Checker func(*Begin) error

// FormatError says that the bytes are not a well-formed send stream.
type FormatError struct {
	Offset int64 // where the offending record starts
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("malformed send stream at byte %d: %s", e.Offset, e.Msg)
}

func formatErr(off int64, format string, args ...any) error {
	return &FormatError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// DefaultMaxBeginPayload bounds the nvlist after a BEGIN record. A plain
// stream's is a few hundred bytes (raw and resumed sends); a compound
// header carrying properties of many file systems can be larger, and is
// refused by zrep anyway.
const DefaultMaxBeginPayload = 1 << 20

// The Reader's buffer starts small and grows while the source fills it, up
// to the size of the pipes zrep grows.
const (
	initialBufferSize = 64 << 10
	bufferSize        = 1 << 20
)

// position is where the reader is in the grammar of a stream:
//
//	stream    = substream | compound
//	compound  = BEGIN(compound) END { substream } END
//	substream = BEGIN(substream) { record } END
type position uint8

const (
	atStart     position = iota // expecting the first BEGIN
	inHeader                    // after a compound BEGIN: expecting its END
	betweenSubs                 // in a compound stream: a substream's BEGIN, or the final END
	inSubstream                 // inside a substream: records up to END
	atEnd                       // the stream is complete: nothing may follow
)

// Reader passes a send stream through, checking its structure and each
// BEGIN record. Read and WriteTo return exactly the bytes of the source,
// up to the first one that fails a check; then the check's error (a
// *FormatError for a malformed stream, the Checker's error otherwise, or
// the source's own read error). io.EOF comes only after a complete stream.
//
// A compound stream's header is held back until its first substream's
// BEGIN has passed too, so that nothing reaches zfs receive before the
// first snapshot the stream would create has been checked.
type Reader struct {
	src        io.Reader
	check      Checker
	maxPayload int

	buf        []byte
	start, end int   // buf[start:end] was read from src and not yet handed on
	checked    int   // buf[start:checked] has passed every check
	ready      int   // buf[start:ready] may be handed on: checked, unless held
	holding    bool  // a compound header is held back until its first substream passes
	base       int64 // the stream offset of buf[0]
	need       int   // bytes wanted at buf[checked:] for the next step of parsing

	pos      position
	compound bool             // the stream is compound
	left     int64            // payload bytes of the current record still to pass
	order    binary.ByteOrder // of the current substream (or compound header)
	features Features         // of the current substream

	begins int   // BEGIN records accepted
	srcErr error // the error src returned (io.EOF included)
	err    error // sticky: what Read returns once buf[start:ready] is empty
}

// NewReader returns a Reader of the stream src that calls check for every
// BEGIN (nil accepts any well-formed stream).
func NewReader(src io.Reader, check Checker) *Reader {
	return &Reader{src: src, check: check, maxPayload: DefaultMaxBeginPayload, buf: make([]byte, initialBufferSize), need: RecordSize}
}

// Begins is the number of BEGIN records accepted so far.
func (r *Reader) Begins() int { return r.begins }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for r.start == r.ready {
		if r.err != nil {
			return 0, r.err
		}
		r.step()
	}
	n := copy(p, r.buf[r.start:r.ready])
	r.start += n
	return n, nil
}

// WriteTo implements io.WriterTo: it writes the checked stream to w in
// chunks as large as its buffer, and returns nil at the stream's end.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if r.start < r.ready {
			n, err := w.Write(r.buf[r.start:r.ready])
			r.start += n
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		r.step()
	}
}

// step parses what is buffered and, if that frees nothing to hand on,
// reads more from the source. Errors become r.err.
func (r *Reader) step() {
	err := r.advance()
	if !r.holding {
		r.ready = r.checked
	}
	if err != nil {
		r.err = err
		return
	}
	if r.start < r.ready {
		return
	}
	if r.srcErr != nil {
		r.err = r.finish()
		return
	}
	r.fill()
}

// finish decides what the source's error means once everything before it
// has been handed on.
func (r *Reader) finish() error {
	if r.srcErr != io.EOF {
		return r.srcErr
	}
	off := r.base + int64(r.checked)
	switch {
	case r.pos == atEnd:
		return io.EOF
	case r.pos == atStart && off == 0 && r.end == r.checked:
		return formatErr(0, "the stream is empty")
	case r.left > 0:
		return formatErr(off, "the stream ends %d bytes short of the end of a record's payload", r.left)
	}
	return formatErr(off, "the stream ends %d bytes into a record, before the end of the stream", r.end-r.checked)
}

// fill reads from the source into the free end of the buffer, first making
// room for r.need bytes after r.checked.
func (r *Reader) fill() {
	if r.start == r.end || len(r.buf)-r.checked < r.need || len(r.buf)-r.end < RecordSize {
		buf := r.buf
		if want := max(r.checked-r.start+r.need, r.end-r.start+RecordSize); want > len(buf) {
			buf = make([]byte, want)
		}
		r.moveTo(buf)
	}
	n, err := r.src.Read(r.buf[r.end:])
	if r.end += n; r.end == len(r.buf) && len(r.buf) < bufferSize {
		r.moveTo(make([]byte, 2*len(r.buf)))
	}
	if err != nil {
		r.srcErr = err
	}
}

// moveTo moves the bytes held, buf[start:end], to the front of buf, which
// is the Reader's buffer or a larger one that replaces it.
func (r *Reader) moveTo(buf []byte) {
	copy(buf, r.buf[r.start:r.end])
	r.base += int64(r.start)
	r.checked -= r.start
	r.ready -= r.start
	r.end -= r.start
	r.start = 0
	r.buf = buf
}

// advance parses records in buf[checked:end] and moves checked past every
// one that passes, stopping where more bytes are needed (r.need says how many).
func (r *Reader) advance() error {
	for {
		if r.left > 0 {
			n := min(r.left, int64(r.end-r.checked))
			r.checked += int(n)
			r.left -= n
			if r.left > 0 {
				r.need = 1
				return nil
			}
		}
		avail := r.end - r.checked
		off := r.base + int64(r.checked)
		if r.pos == atEnd {
			if avail > 0 {
				return formatErr(off, "data after the end of the stream")
			}
			return nil
		}
		if avail < RecordSize {
			r.need = RecordSize
			return nil
		}
		rec := r.buf[r.checked : r.checked+RecordSize]
		if r.pos == atStart || r.pos == betweenSubs {
			if binary.LittleEndian.Uint32(rec) == uint32(RecordBegin) {
				n, err := r.begin(rec, avail, off)
				if err != nil || n == 0 {
					return err
				}
				r.checked += n
				continue
			}
		}
		if r.pos == atStart {
			return formatErr(off, "the stream does not start with a BEGIN record (not a zfs send stream)")
		}
		typ := RecordType(r.order.Uint32(rec))
		switch {
		case typ == RecordBegin:
			return formatErr(off, "BEGIN record inside a substream")
		case typ == RecordEnd:
			r.end1()
		case r.pos != inSubstream:
			return formatErr(off, "%s record where a BEGIN or END record belongs", typ)
		default:
			n, err := payloadSize(typ, rec[unionOffset:], r.order, r.features)
			if err != nil {
				return formatErr(off, "%v", err)
			}
			r.left = n
		}
		r.checked += RecordSize
	}
}

// end1 moves past an END record.
func (r *Reader) end1() {
	switch r.pos {
	case inHeader:
		r.pos = betweenSubs
	case inSubstream:
		if r.compound {
			r.pos = betweenSubs
		} else {
			r.pos = atEnd
		}
	case betweenSubs:
		r.pos = atEnd
		r.holding = false // a compound stream without substreams
	}
}

// begin checks a BEGIN record and its payload, which start at buf[checked].
// It returns how many bytes they take, or 0 if they are not buffered whole yet.
func (r *Reader) begin(rec []byte, avail int, off int64) (int, error) {
	b, order, err := parseBegin(rec, off)
	if err != nil {
		return 0, err
	}
	if int64(b.PayloadLen) > int64(r.maxPayload) {
		return 0, formatErr(off, "BEGIN record with a %d-byte payload (at most %d)", b.PayloadLen, r.maxPayload)
	}
	total := RecordSize + int(b.PayloadLen)
	if avail < total {
		r.need = total
		return 0, nil
	}
	if r.pos == betweenSubs && b.Compound() {
		return 0, formatErr(off, "compound stream nested in a compound stream")
	}
	if b.PayloadLen > 0 {
		list, _, err := nvlist.Unpack(r.buf[r.checked+RecordSize:r.checked+total], nvlist.Limits{})
		if err != nil {
			return 0, formatErr(off, "the nvlist after the BEGIN record: %v", err)
		}
		b.Payload = list
	}
	if r.check != nil {
		if err := r.check(b); err != nil {
			return 0, err
		}
	}
	r.begins++
	r.order = order
	if b.Compound() {
		r.compound = true
		r.holding = true
		r.pos = inHeader
	} else {
		r.features = b.Features
		r.holding = false
		r.pos = inSubstream
	}
	return total, nil
}
