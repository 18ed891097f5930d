// Package resumetoken decodes and encodes OpenZFS receive_resume_token
// strings, in process and strictly.
//
// A failed zfs receive -s leaves a token on the target; the sender resumes
// with zfs send -t TOKEN. The kernel (get_receive_resume_token_impl in
// module/zfs/dsl_dataset.c, the same format from 0.7 to 2.4) writes
//
//	<version>-<checksum>-<packed length>-<payload>
//
// with printf's "%u-%llx-%llx-%s": the version is 1; the payload is the
// lowercase hex of a zlib stream (level 6) of a packed NATIVE nvlist; the
// checksum is the first word of fletcher_4_native_varsize over the
// compressed bytes, which is just their sum as native-endian uint32 words
// mod 2^64, the trailing len%4 bytes ignored (openzfs#10517); the packed
// length is the uncompressed length. libzfs reads it back in
// zfs_send_resume_token_to_nvlist (lib/libzfs/libzfs_sendrecv.c).
//
// # The checksum is no protection
//
// Anyone can compute the checksum: a token whose toname, toguid or flags
// were changed, re-encoded, decodes as well as the original. zfs send -t
// trusts every field (openzfs#14153): it sends the snapshot whose guid is
// toguid, searching from toname's dataset up to the pool root, so a token
// naming an allowed snapshot with the guid of another dataset's snapshot
// sends the other one; and the token's flags (rawok, compressok, ...) are
// OR'ed into the send's. Decode checks only that a token is one the kernel
// could have written. Its callers must check the fields against their
// policy and against the pool: toname allowed, toname's guid == ToGUID,
// FromGUID a snapshot or bookmark of the same dataset, the flags
// acceptable. Re-encoding the checked fields with Encode, rather than
// passing the received string on, leaves nothing unchecked.
//
// # Strictness
//
// Decode accepts what the kernel writes and what libzfs reads the same
// way, and refuses everything else, including forms libzfs tolerates:
//   - at most MaxLen bytes (ZFS_MAXPROPLEN, 8 KiB, with its NUL), checked
//     before anything else; nothing is trimmed;
//   - exactly four '-'-separated fields; libzfs takes the payload after
//     the last '-' and ignores anything between the header and it;
//   - the version is exactly "1" (libzfs's %u also takes "01", "+1",
//     " 1"); a well-formed other version is ErrUnsupported;
//   - the checksum and packed length are hex of at most 16 digits without
//     leading zeros, sign, "0x" or spaces (all of which %llx accepts);
//   - hex digits may be upper or lower case, as libzfs's %llx and %2hhx
//     read both (the kernel writes lowercase; a case change cannot change
//     what any reader decodes);
//   - the payload has an even, non-zero number of hex digits (libzfs
//     drops an odd last digit);
//   - the checksum word matches;
//   - the packed length is at most MaxPackedLen (libzfs allocates
//     whatever it says), checked before decompressing, and decompression
//     stops one byte past it: a zlib bomb costs at most that much memory;
//   - the payload is one zlib stream (not gzip, not raw deflate, no preset
//     dictionary) with a valid Adler-32, that decompresses to exactly the
//     packed length, with nothing after it (libzfs's uncompress() ignores
//     bytes after the end of the stream);
//   - the nvlist is NATIVE and little-endian, and is read by the strict
//     nvlist package. The kernel writes its own byte order, and libnvpair
//     refuses a native list of the other byte order (nvlist_common returns
//     ENOTSUP), so libzfs on a little-endian sender cannot use a token
//     made on a big-endian receiver, and neither do we; its checksum,
//     summed as big-endian words, would not match either. XDR lists, which
//     libnvpair would read but the kernel never writes, are refused too.
//
// Those are the layers, which Inspect checks alone. Decode then requires
// the list the kernel writes: flags NV_UNIQUE_NAME; only the fields
// fromguid, object, offset, bytes, toguid (uint64), toname (string),
// largeblockok, embedok, compressok, rawok (DATA_TYPE_BOOLEAN, whose
// presence is the value), in that order, each with that type; object,
// offset, bytes, toguid and toname present; toguid not 0, fromguid, when
// present, not 0 (the kernel omits it for a full stream); toname a
// snapshot name that passes zfs_namecheck.c and zpool's pool name rules,
// as zfs.ValidateSnapshotName does, shorter than 256 bytes (no '#', one
// '@', no control characters). It refuses savedok (libzfs turns it into
// zfs send --saved; the kernel never writes it), redact_snaps and
// book_redact_snaps (redacted sends, which zrep does not do) and any other
// field.
//
// Every error is an *Error, and errors.Is tells ErrMalformed,
// ErrUnsupported and ErrRefused apart.
package resumetoken

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/zrep/zrep/nvlist"
)

const (
	// Version is ZFS_SEND_RESUME_TOKEN_VERSION, the only version.
	Version = 1
	// MaxLen bounds a token: ZFS_MAXPROPLEN (ZAP_MAXVALUELEN, 8 KiB) is
	// the size of the buffer zfs get reads a property into, its NUL
	// included, so a longer token cannot be read back whole.
	MaxLen = 8192 - 1
	// MaxPackedLen bounds the uncompressed nvlist. The kernel's lists
	// are under 1 KiB without redaction arrays.
	MaxPackedLen = 64 << 10
	// MaxNameLen is the longest toname: ZFS_MAX_DATASET_NAME_LEN (256)
	// counts the NUL.
	MaxNameLen = 255
)

// The kinds of error; every error of this package is an *Error whose Kind
// is one of them.
var (
	// ErrMalformed: not a token libzfs would decode as we do (length,
	// syntax, hex, checksum, zlib, packed length, nvlist).
	ErrMalformed = errors.New("malformed resume token")
	// ErrUnsupported: well formed, but of a version, nvlist encoding or
	// byte order that we do not read.
	ErrUnsupported = errors.New("unsupported resume token")
	// ErrRefused: the token decodes, but its fields are not what the
	// kernel writes (unknown, refused or mistyped fields, missing ones,
	// a bad toname, a zero guid).
	ErrRefused = errors.New("resume token refused")
)

// Error is a refusal: Kind is ErrMalformed, ErrUnsupported or ErrRefused,
// Msg says what is wrong, Err is the underlying error (zlib, nvlist) or
// nil.
type Error struct {
	Kind error
	Msg  string
	Err  error
}

// Error shows at most maxCause bytes of the underlying error, whose
// message may quote long names from the token.
func (e *Error) Error() string {
	s := e.Kind.Error() + ": " + e.Msg
	if e.Err != nil {
		cause := e.Err.Error()
		if len(cause) > maxCause {
			cause = cause[:maxCause] + "..."
		}
		s += ": " + cause
	}
	return s
}

const maxCause = 200

// Is reports whether target is e's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return &Error{Kind: ErrMalformed, Msg: fmt.Sprintf(format, args...)}
}

func refused(format string, args ...any) error {
	return &Error{Kind: ErrRefused, Msg: fmt.Sprintf(format, args...)}
}

// Token is a decoded receive_resume_token.
type Token struct {
	ToName   string // "pool/fs@snap" on the sending side
	ToGUID   uint64
	FromGUID uint64 // 0 for a full stream

	// Where the receive stopped: the object and offset to resume at,
	// and the bytes received so far.
	Object, Offset, Bytes uint64

	// The flags of the interrupted send, which zfs send -t adds to its
	// own.
	LargeBlockOK, EmbedOK, CompressOK, RawOK bool
}

// field is one pair the kernel may write, in the order it writes them.
type field struct {
	name     string
	typ      nvlist.Type
	required bool
}

var fields = []field{
	{"fromguid", nvlist.Uint64, false},
	{"object", nvlist.Uint64, true},
	{"offset", nvlist.Uint64, true},
	{"bytes", nvlist.Uint64, true},
	{"toguid", nvlist.Uint64, true},
	{"toname", nvlist.String, true},
	{"largeblockok", nvlist.Boolean, false},
	{"embedok", nvlist.Boolean, false},
	{"compressok", nvlist.Boolean, false},
	{"rawok", nvlist.Boolean, false},
}

// refusedFields are fields libzfs acts on that Decode refuses, with why.
var refusedFields = map[string]string{
	"savedok":           "libzfs turns it into zfs send --saved, and the kernel never writes it",
	"redact_snaps":      "a redacted send, which is not supported",
	"book_redact_snaps": "a redacted send, which is not supported",
}

// Decode decodes and checks a token; see the package documentation for
// what it refuses. It never panics, and allocates at most a small
// multiple of MaxLen + MaxPackedLen.
func Decode(s string) (*Token, error) {
	l, err := Inspect(s)
	if err != nil {
		return nil, err
	}
	return fromList(l)
}

// fromList applies Decode's field rules to an inspected list.
func fromList(l *nvlist.List) (*Token, error) {
	if l.Flags != nvlist.UniqueName {
		return nil, refused("nvlist flags %#x, the kernel writes NV_UNIQUE_NAME (0x1)", l.Flags)
	}
	t := &Token{}
	next := 0 // index in fields of the first field allowed next
	seen := make([]bool, len(fields))
	hasFrom := false
	for _, p := range l.Pairs {
		i := fieldIndex(p.Name)
		if i < 0 {
			if why, ok := refusedFields[p.Name]; ok {
				return nil, refused("field %q: %s", p.Name, why)
			}
			return nil, refused("unknown field %q", quoteName(p.Name))
		}
		f := fields[i]
		if i < next {
			return nil, refused("field %q after %q: the kernel writes them in the other order", f.name, fields[next-1].name)
		}
		next = i + 1
		if p.Type != f.typ {
			return nil, refused("field %q is a %v, not a %v", f.name, p.Type, f.typ)
		}
		seen[i] = true
		switch f.name {
		case "fromguid":
			t.FromGUID = p.Value.(uint64)
			hasFrom = true
		case "object":
			t.Object = p.Value.(uint64)
		case "offset":
			t.Offset = p.Value.(uint64)
		case "bytes":
			t.Bytes = p.Value.(uint64)
		case "toguid":
			t.ToGUID = p.Value.(uint64)
		case "toname":
			t.ToName = p.Value.(string)
		case "largeblockok":
			t.LargeBlockOK = true
		case "embedok":
			t.EmbedOK = true
		case "compressok":
			t.CompressOK = true
		case "rawok":
			t.RawOK = true
		}
	}
	for i, f := range fields {
		if f.required && !seen[i] {
			return nil, refused("field %q is missing", f.name)
		}
	}
	if t.ToGUID == 0 {
		return nil, refused("toguid is 0")
	}
	if hasFrom && t.FromGUID == 0 {
		return nil, refused("fromguid is 0 (the kernel omits it for a full stream)")
	}
	if why := snapshotNameProblem(t.ToName); why != "" {
		return nil, refused("toname %q is not a valid snapshot name: %s", quoteName(t.ToName), why)
	}
	return t, nil
}

func fieldIndex(name string) int {
	for i, f := range fields {
		if f.name == name {
			return i
		}
	}
	return -1
}

// quoteName shortens a hostile name for an error message.
func quoteName(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// Inspect checks the layers of a token (length, syntax, version, hex,
// checksum, zlib, packed length, a native little-endian nvlist) and
// returns its list, without Decode's rules on the fields: for diagnostics
// and tests. It never panics.
func Inspect(s string) (*nvlist.List, error) {
	raw, err := unwrap(s)
	if err != nil {
		return nil, err
	}
	if len(raw) >= 2 && raw[0] == byte(nvlist.Native) && raw[1] == 0 {
		return nil, &Error{Kind: ErrUnsupported, Msg: "the nvlist is big-endian (libnvpair on a little-endian sender refuses it too)"}
	}
	if len(raw) >= 1 && raw[0] == byte(nvlist.XDR) {
		return nil, &Error{Kind: ErrUnsupported, Msg: "the nvlist is XDR-encoded; the kernel writes NATIVE"}
	}
	l, enc, err := nvlist.Unpack(raw, nvlist.Limits{})
	if err != nil {
		return nil, &Error{Kind: ErrMalformed, Msg: "bad nvlist", Err: err}
	}
	if enc != nvlist.Native {
		// Not reached: the header was checked above.
		return nil, &Error{Kind: ErrUnsupported, Msg: fmt.Sprintf("nvlist encoding %v", enc)}
	}
	return l, nil
}

// unwrap checks the text, checksum and zlib layers and returns the packed
// nvlist.
func unwrap(s string) ([]byte, error) {
	if len(s) > MaxLen {
		return nil, malformed("%d bytes long, more than %d", len(s), MaxLen)
	}
	f := strings.SplitN(s, "-", 4)
	if len(f) != 4 {
		return nil, malformed("%d '-'-separated fields, want 4 (version-checksum-length-payload)", len(f))
	}
	if f[0] != strconv.Itoa(Version) {
		if isDecimal(f[0]) {
			return nil, &Error{Kind: ErrUnsupported, Msg: fmt.Sprintf("version %s, only %d exists", f[0], Version)}
		}
		return nil, malformed("version %q is not a decimal number", quoteName(f[0]))
	}
	sum, err := parseHex(f[1], "checksum")
	if err != nil {
		return nil, err
	}
	plen, err := parseHex(f[2], "packed length")
	if err != nil {
		return nil, err
	}
	if plen == 0 || plen > MaxPackedLen {
		return nil, malformed("packed length %d, must be 1 to %d", plen, MaxPackedLen)
	}
	payload := f[3]
	if payload == "" {
		return nil, malformed("empty payload")
	}
	for i := 0; i < len(payload); i++ {
		if !isHexDigit(payload[i]) {
			return nil, malformed("payload byte %d is %s, not a hex digit", i, charString(payload[i]))
		}
	}
	if len(payload)%2 != 0 {
		return nil, malformed("payload has an odd number (%d) of hex digits", len(payload))
	}
	comp, err := hex.DecodeString(payload)
	if err != nil {
		return nil, &Error{Kind: ErrMalformed, Msg: "payload is not hex", Err: err} // not reached
	}
	if got := fletcher4a(comp); got != sum {
		return nil, malformed("checksum %x does not match the payload, whose checksum is %x", sum, got)
	}
	return inflate(comp, int(plen))
}

// inflate decompresses the one zlib stream that comp must be, which must
// decompress to exactly plen bytes. It reads at most plen+1 bytes.
func inflate(comp []byte, plen int) ([]byte, error) {
	br := bytes.NewReader(comp)
	zr, err := zlib.NewReader(br)
	if err != nil {
		return nil, &Error{Kind: ErrMalformed, Msg: "payload is not a zlib stream", Err: err}
	}
	// br is an io.ByteReader, so the inflater reads no byte past the
	// end of the stream and br.Len() is what follows it.
	lr := io.LimitReader(zr, int64(plen)+1)
	buf := make([]byte, plen+1)
	n := 0
	for {
		m, err := lr.Read(buf[n:])
		n += m
		if n > plen {
			return nil, malformed("payload decompresses to more than the packed length %d", plen)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &Error{Kind: ErrMalformed, Msg: "bad zlib stream", Err: err}
		}
	}
	if n != plen {
		return nil, malformed("payload decompresses to %d bytes, the packed length is %d", n, plen)
	}
	if br.Len() != 0 {
		return nil, malformed("%d bytes after the end of the zlib stream", br.Len())
	}
	return buf[:n], nil
}

// fletcher4a is the first word of fletcher_4_native_varsize: the sum of
// b as native-endian uint32 words, mod 2^64, ignoring the last len(b)%4
// bytes. Native is little-endian here: a big-endian kernel's checksum
// would not match, and its nvlist is refused anyway.
func fletcher4a(b []byte) uint64 {
	var a uint64
	for ; len(b) >= 4; b = b[4:] {
		a += uint64(binary.LittleEndian.Uint32(b))
	}
	return a
}

// parseHex reads a header number as the kernel's %llx writes it, in
// either case.
func parseHex(s, what string) (uint64, error) {
	switch {
	case s == "":
		return 0, malformed("empty %s", what)
	case len(s) > 16:
		return 0, malformed("%s has %d hex digits, more than 16", what, len(s))
	case len(s) > 1 && s[0] == '0':
		return 0, malformed("%s %q has a leading zero", what, s)
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return 0, malformed("%s %q is not hex", what, s)
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, &Error{Kind: ErrMalformed, Msg: what, Err: err} // not reached
	}
	return v, nil
}

// charString shows a byte of hostile input in an error message.
func charString(c byte) string {
	if c >= ' ' && c <= '~' {
		return fmt.Sprintf("%q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isDecimal reports whether s is a decimal number as %u writes it.
func isDecimal(s string) bool {
	if s == "" || len(s) > 10 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// list returns the nvlist the kernel writes for t's fields, in its order.
func (t *Token) list() *nvlist.List {
	l := &nvlist.List{Flags: nvlist.UniqueName}
	add := func(name string, typ nvlist.Type, v any) {
		l.Pairs = append(l.Pairs, nvlist.Pair{Name: name, Type: typ, Value: v})
	}
	if t.FromGUID != 0 {
		add("fromguid", nvlist.Uint64, t.FromGUID)
	}
	add("object", nvlist.Uint64, t.Object)
	add("offset", nvlist.Uint64, t.Offset)
	add("bytes", nvlist.Uint64, t.Bytes)
	add("toguid", nvlist.Uint64, t.ToGUID)
	add("toname", nvlist.String, t.ToName)
	for _, b := range []struct {
		name string
		set  bool
	}{{"largeblockok", t.LargeBlockOK}, {"embedok", t.EmbedOK}, {"compressok", t.CompressOK}, {"rawok", t.RawOK}} {
		if b.set {
			add(b.name, nvlist.Boolean, nil)
		}
	}
	return l
}

// Encode returns the token the kernel would write for t's fields, which
// OpenZFS's zfs send -t accepts. The nvlist is byte for byte the
// kernel's; the zlib stream is Go's (level 6), which differs from zlib's
// but decompresses to the same bytes. Encode does not check the fields
// (Decode does); it panics if ToName contains a NUL byte, which no nvlist
// string can hold and no decoded Token has.
func (t *Token) Encode() string {
	return EncodeList(t.list())
}

// EncodeList wraps any list in a token with a right checksum and packed
// length, for tests that forge tokens (extra fields, savedok, ...). It
// panics if nvlist.Pack refuses l.
func EncodeList(l *nvlist.List) string {
	packed, err := nvlist.Pack(l, nvlist.Native)
	if err != nil {
		panic("resumetoken: " + err.Error())
	}
	return encodePacked(packed)
}

// encodePacked wraps packed bytes, whatever they are, in a token.
func encodePacked(packed []byte) string {
	var buf bytes.Buffer
	zw, err := zlib.NewWriterLevel(&buf, 6)
	if err != nil {
		panic(err) // not reached: 6 is a valid level
	}
	zw.Write(packed) // a bytes.Buffer does not fail
	zw.Close()
	return wrap(buf.Bytes(), len(packed))
}

// wrap formats compressed bytes as the kernel does.
func wrap(comp []byte, packedLen int) string {
	return fmt.Sprintf("%d-%x-%x-%x", Version, fletcher4a(comp), packedLen, comp)
}
