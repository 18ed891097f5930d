package resumetoken

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/zrep/zrep/nvlist"
)

// The fields of the real tokens, as their sources give them (see
// testdata/README.md).
var realFields = map[string]Token{
	"zrepl-full": {ToName: "zreplplatformtest/src@a", ToGUID: 0x94a20a5f25877859,
		Object: 2, Offset: 0x2c0000, Bytes: 0x2e2878},
	"zrepl-full-raw": {ToName: "zreplplatformtest/src@a", ToGUID: 0x94a20a5f25877859,
		Object: 2, Offset: 0x2c0000, Bytes: 0x2e2e44, CompressOK: true, RawOK: true},
	"zrepl-inc": {ToName: "zreplplatformtest/src@b", ToGUID: 0xf784e1004f460f7a, FromGUID: 0x94a20a5f25877859,
		Object: 2, Offset: 0x2c0000, Bytes: 0x2e2540},
	"zrepl-inc-raw": {ToName: "zreplplatformtest/src@b", ToGUID: 0xf784e1004f460f7a, FromGUID: 0x94a20a5f25877859,
		Object: 2, Offset: 0x2c0000, Bytes: 0x2e2b0c, CompressOK: true, RawOK: true},
	"openzfs-14153": {ToName: "resumetest/encr-child@with-a-file", ToGUID: 3346673376557487226, FromGUID: 9465784931539935513,
		Object: 1, CompressOK: true, RawOK: true},
	"cfcs-nvlist": {ToName: "tmpzfs@repli-2020-05-06", ToGUID: 0xa60221498db5b662,
		Object: 0x23, Bytes: 0x2ab0},
	"zrepl-drysend-full": {ToName: "zroot/test/a@1", ToGUID: 0x52f9c212c71e60cd,
		Object: 2, Offset: 0x4c0000, Bytes: 0x4e4228},
	"zrepl-drysend-inc": {ToName: "zroot/test/a@2", ToGUID: 0xcfae0ae671723c16, FromGUID: 0x52f9c212c71e60cd,
		Object: 2, Offset: 0x4c0000, Bytes: 0x4e3ef0},
	// zrepl does not print this one; its toguid is the next one's fromguid.
	"zrepl-example-full": {ToName: "pool1/test@a", ToGUID: 0x595d9f81aa9dddab, Object: 1},
	"zrepl-example-inc":  {ToName: "pool1/test@b", ToGUID: 0x854f02a2dd32cf0d, FromGUID: 0x595d9f81aa9dddab, Object: 1},
	// zrep's OpenZFS lab; its stream is sendstream/testdata/openzfs-2.1-full-cLe.
	"openzfs-2.1.11-cLe": {ToName: "sspool/a@s1", ToGUID: 0x929cd29266d10bc5, Object: 0x23, Bytes: 0x8480,
		LargeBlockOK: true, EmbedOK: true, CompressOK: true},
}

func TestRealTokens(t *testing.T) {
	toks := readTokens(t)
	if len(toks) != len(realFields) {
		t.Fatalf("%d tokens in testdata, %d expected", len(toks), len(realFields))
	}
	for _, rt := range toks {
		t.Run(rt.name, func(t *testing.T) {
			want, ok := realFields[rt.name]
			if !ok {
				t.Fatalf("no fields for %s", rt.name)
			}
			tok, err := Decode(rt.token)
			if err != nil {
				t.Fatal(err)
			}
			if *tok != want {
				t.Fatalf("decoded\n%+v\nwant\n%+v", *tok, want)
			}

			// The nvlist Encode writes is the kernel's, byte for byte.
			kernel, err := unwrap(rt.token)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := nvlist.Pack(tok.list(), nvlist.Native)
			if err != nil || !bytes.Equal(ours, kernel) {
				t.Fatalf("packed list differs (%v):\n%x\n%x", err, ours, kernel)
			}

			// The zlib stream is Go's, not zlib's: both are level 6, but
			// compress/flate matches strings differently and ends with an
			// empty stored block, so the payload and the checksum differ.
			// The token is as good: same version, same packed length,
			// same list, and it decodes to the same Token.
			enc := tok.Encode()
			if enc == rt.token {
				t.Logf("Encode reproduces the kernel's token")
			} else {
				t.Logf("kernel %s\nEncode %s", rt.token, enc)
			}
			ef, rf := tokenFields(enc), tokenFields(rt.token)
			if ef[0] != rf[0] || ef[2] != rf[2] || !strings.HasPrefix(ef[3], "789c") {
				t.Errorf("Encode's header %s-%s-%s differs from %s-%s-%s", ef[0], ef[1], ef[2], rf[0], rf[1], rf[2])
			}
			tok2, err := Decode(enc)
			if err != nil || *tok2 != *tok {
				t.Fatalf("Decode(Encode) = %+v, %v", tok2, err)
			}
			l1, err1 := Inspect(rt.token)
			l2, err2 := Inspect(enc)
			if err1 != nil || err2 != nil || !sameList(l1, l2) {
				t.Errorf("Inspect differs: %v %v\n%+v\n%+v", err1, err2, l1, l2)
			}

			// libzfs reads hex digits of either case, and so do we.
			up, err := Decode(strings.ToUpper(rt.token))
			if err != nil || *up != *tok {
				t.Errorf("upper case: %+v, %v", up, err)
			}
		})
	}
}

func sameList(a, b *nvlist.List) bool {
	pa, err1 := nvlist.Pack(a, nvlist.Native)
	pb, err2 := nvlist.Pack(b, nvlist.Native)
	return err1 == nil && err2 == nil && bytes.Equal(pa, pb)
}

// TestForgedToken: the checksum protects nothing; a token whose toname
// or flags were changed decodes as well as the original, so callers must
// check the fields.
func TestForgedToken(t *testing.T) {
	tok, err := Decode(tokenNamed(t, "zrepl-inc-raw"))
	if err != nil {
		t.Fatal(err)
	}
	forged := *tok
	forged.ToName = "zreplplatformtest/secret@b"
	forged.RawOK = false // an encrypted dataset would go out decrypted
	s := forged.Encode()
	got, err := Decode(s)
	if err != nil {
		t.Fatalf("forged token refused: %v", err)
	}
	if *got != forged {
		t.Errorf("forged token decodes to %+v", *got)
	}
	if got.ToGUID != tok.ToGUID || got.ToName == tok.ToName {
		t.Errorf("forgery lost: %+v", *got)
	}
}

// TestChecksumCoverage: the checksum ignores the last len%4 compressed
// bytes (openzfs#10517); zlib's Adler-32 catches a change there.
func TestChecksumCoverage(t *testing.T) {
	for _, rt := range readTokens(t) {
		f := tokenFields(rt.token)
		comp := mustHex(t, f[3])
		if len(comp)%4 == 0 {
			continue
		}
		comp[len(comp)-1] ^= 0x01
		plen, _ := strconv.ParseUint(f[2], 16, 64)
		s := withPayload(comp, int(plen))
		if tokenFields(s)[1] != f[1] {
			t.Fatalf("%s: checksum changed with an unchecked byte", rt.name)
		}
		_, err := Decode(s)
		checkError(t, err, ErrMalformed, "bad zlib stream: zlib: invalid checksum")
		return
	}
	t.Fatal("no real token has a compressed length that is not a multiple of 4")
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(v)
	}
	return b
}

// TestTruncated: every prefix of every real token is refused.
func TestTruncated(t *testing.T) {
	for _, rt := range readTokens(t) {
		for i := 0; i < len(rt.token); i++ {
			if _, err := Decode(rt.token[:i]); !isKnownError(err) {
				t.Fatalf("%s cut at %d: %v", rt.name, i, err)
			}
			if _, err := Inspect(rt.token[:i]); !isKnownError(err) {
				t.Fatalf("%s cut at %d: Inspect: %v", rt.name, i, err)
			}
		}
	}
}

// zlibBytes compresses b with compress/zlib at level 6.
func zlibBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, 6)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestRefusals(t *testing.T) {
	base := baseToken().Encode()
	bf := tokenFields(base)
	packed, err := nvlist.Pack(baseToken().list(), nvlist.Native)
	if err != nil {
		t.Fatal(err)
	}
	comp := mustHex(t, bf[3])
	plen := len(packed)
	hdr := func(sum, length string) string { return "1-" + sum + "-" + length + "-" }

	var gz, raw bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(packed)
	gw.Close()
	fw, _ := flate.NewWriter(&raw, 6)
	fw.Write(packed)
	fw.Close()
	var dict bytes.Buffer
	dw, _ := zlib.NewWriterLevelDict(&dict, 6, []byte("toname"))
	dw.Write(packed)
	dw.Close()

	long := "pool/" + strings.Repeat("a", 290) + "@s"
	bigEndian := encodePacked(toBigEndian(packed))
	xdr, err := nvlist.Pack(baseToken().list(), nvlist.XDR)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, token string
		kind        error
		msg         string
	}{
		// Text.
		{"empty", "", ErrMalformed, "1 '-'-separated fields"},
		{"too long", base + strings.Repeat("0", MaxLen+1-len(base)), ErrMalformed, "more than 8191"},
		{"three fields", "1-" + bf[1] + "-" + bf[2], ErrMalformed, "3 '-'-separated fields"},
		{"extra field", hdr(bf[1], bf[2]) + "00-" + bf[3], ErrMalformed, "payload byte 2 is '-', not a hex digit"},
		{"version 2", "2-" + bf[1] + "-" + bf[2] + "-" + bf[3], ErrUnsupported, "version 2, only 1"},
		{"version 0", "0-" + bf[1] + "-" + bf[2] + "-" + bf[3], ErrUnsupported, "version 0"},
		{"version 01", "01-" + bf[1] + "-" + bf[2] + "-" + bf[3], ErrMalformed, "version \"01\""},
		{"version +1", "+1-" + bf[1] + "-" + bf[2] + "-" + bf[3], ErrMalformed, "version \"+1\""},
		{"version space", " 1-" + bf[1] + "-" + bf[2] + "-" + bf[3], ErrMalformed, "version \" 1\""},
		{"checksum 0x", hdr("0x"+bf[1], bf[2]) + bf[3], ErrMalformed, "leading zero"},
		{"checksum leading zero", hdr("0"+bf[1], bf[2]) + bf[3], ErrMalformed, "leading zero"},
		{"checksum empty", hdr("", bf[2]) + bf[3], ErrMalformed, "empty checksum"},
		{"checksum space", hdr(" "+bf[1], bf[2]) + bf[3], ErrMalformed, "not hex"},
		{"checksum 17 digits", hdr("1"+strings.Repeat("0", 16), bf[2]) + bf[3], ErrMalformed, "more than 16"},
		{"length leading zero", hdr(bf[1], "0"+bf[2]) + bf[3], ErrMalformed, "leading zero"},
		{"length g", hdr(bf[1], "g") + bf[3], ErrMalformed, "not hex"},
		{"payload empty", hdr(bf[1], bf[2]), ErrMalformed, "empty payload"},
		{"payload odd", base + "0", ErrMalformed, "odd number"},
		{"payload newline", base + "\n", ErrMalformed, "byte 0x0a, not a hex digit"},
		{"payload newline even", base + "0\n", ErrMalformed, "byte 0x0a, not a hex digit"},
		{"payload space", hdr(bf[1], bf[2]) + " " + bf[3][1:], ErrMalformed, "not a hex digit"},
		{"payload g", hdr(bf[1], bf[2]) + "g" + bf[3][1:], ErrMalformed, "not a hex digit"},

		// Checksum.
		{"bad checksum", hdr(strconv.FormatUint(fletcher4a(comp)+1, 16), bf[2]) + bf[3], ErrMalformed, "does not match the payload"},
		{"checksum 0", hdr("0", bf[2]) + bf[3], ErrMalformed, "checksum 0 does not match"},

		// Packed length and zlib.
		{"length 0", withPayload(comp, 0), ErrMalformed, "packed length 0"},
		{"length over limit", withPayload(comp, MaxPackedLen+1), ErrMalformed, "packed length 65537, must be 1 to 65536"},
		{"length too small", withPayload(comp, plen-1), ErrMalformed, "more than the packed length"},
		{"length too large", withPayload(comp, plen+1), ErrMalformed, fmt.Sprintf("decompresses to %d bytes, the packed length is %d", plen, plen+1)},
		{"trailing byte", withPayload(append(bytes.Clone(comp), 0), plen), ErrMalformed, "1 bytes after the end of the zlib stream"},
		{"second stream", withPayload(append(bytes.Clone(comp), comp...), plen), ErrMalformed, "bytes after the end"},
		{"gzip", withPayload(gz.Bytes(), plen), ErrMalformed, "not a zlib stream"},
		{"raw deflate", withPayload(raw.Bytes(), plen), ErrMalformed, "not a zlib stream"},
		{"preset dictionary", withPayload(dict.Bytes(), plen), ErrMalformed, "not a zlib stream"},
		{"truncated zlib", withPayload(comp[:len(comp)-4], plen), ErrMalformed, "bad zlib stream"},
		{"corrupt deflate", withPayload(append([]byte{0x78, 0x9c, 0xff}, comp[3:]...), plen), ErrMalformed, "bad zlib stream"},

		// nvlist layer.
		{"big-endian", bigEndian, ErrUnsupported, "big-endian"},
		{"xdr", encodePacked(xdr), ErrUnsupported, "XDR"},
		{"garbage list", encodePacked([]byte("not an nvlist")), ErrMalformed, "bad nvlist"},
		{"list trailing bytes", encodePacked(append(bytes.Clone(packed), 0, 0, 0, 0)), ErrMalformed, "bad nvlist"},
		{"list truncated", encodePacked(packed[:len(packed)-4]), ErrMalformed, "bad nvlist"},

		// Fields.
		{"flags 0", forge(func(l *nvlist.List) { l.Flags = 0 }), ErrRefused, "nvlist flags 0"},
		{"flags unique type", forge(func(l *nvlist.List) { l.Flags = nvlist.UniqueNameType }), ErrRefused, "nvlist flags 0x2"},
		{"extra field", forge(func(l *nvlist.List) {
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: "extra", Type: nvlist.Uint64, Value: uint64(1)})
		}), ErrRefused, `unknown field "extra"`},
		{"savedok", forge(func(l *nvlist.List) {
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: "savedok", Type: nvlist.Boolean})
		}), ErrRefused, `field "savedok": libzfs turns it into zfs send --saved`},
		{"redact_snaps", forge(func(l *nvlist.List) {
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: "redact_snaps", Type: nvlist.Uint64Array, Value: []uint64{1, 2}})
		}), ErrRefused, `field "redact_snaps": a redacted send`},
		{"book_redact_snaps", forge(func(l *nvlist.List) {
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: "book_redact_snaps", Type: nvlist.Uint64Array, Value: []uint64{}})
		}), ErrRefused, `field "book_redact_snaps": a redacted send`},
		{"rawok uint64", forge(func(l *nvlist.List) { setPair(l, "rawok", nvlist.Uint64, uint64(1)) }), ErrRefused, `field "rawok" is a uint64, not a boolean`},
		{"rawok boolean_value", forge(func(l *nvlist.List) { setPair(l, "rawok", nvlist.BooleanValue, true) }), ErrRefused, `field "rawok" is a boolean_value, not a boolean`},
		{"toguid string", forge(func(l *nvlist.List) { setPair(l, "toguid", nvlist.String, "1") }), ErrRefused, `field "toguid" is a string, not a uint64`},
		{"toname uint64", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.Uint64, uint64(1)) }), ErrRefused, `field "toname" is a uint64, not a string`},
		{"object uint32", forge(func(l *nvlist.List) { setPair(l, "object", nvlist.Uint32, uint64(1)) }), ErrRefused, `field "object" is a uint32`},
		{"fromguid int64", forge(func(l *nvlist.List) { setPair(l, "fromguid", nvlist.Int64, int64(1)) }), ErrRefused, `field "fromguid" is a int64`},
		{"toname string array", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.StringArray, []string{"pool/fs@snap"}) }), ErrRefused, `field "toname" is a string_array`},
		{"order", forge(func(l *nvlist.List) {
			l.Pairs[4], l.Pairs[5] = l.Pairs[5], l.Pairs[4]
		}), ErrRefused, `field "toguid" after "toname"`},
		{"flags order", forge(func(l *nvlist.List) {
			n := len(l.Pairs)
			l.Pairs[n-2], l.Pairs[n-1] = l.Pairs[n-1], l.Pairs[n-2]
		}), ErrRefused, `field "compressok" after "rawok"`},
		{"toguid 0", forge(func(l *nvlist.List) { setPair(l, "toguid", nvlist.Uint64, uint64(0)) }), ErrRefused, "toguid is 0"},
		{"fromguid 0", forge(func(l *nvlist.List) { setPair(l, "fromguid", nvlist.Uint64, uint64(0)) }), ErrRefused, "fromguid is 0"},

		// toname.
		{"toname no @", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs") }), ErrRefused, "no '@'"},
		{"toname bookmark", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs#b") }), ErrRefused, "no '@'"},
		{"toname with #", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@a#b") }), ErrRefused, `'#' in the snapshot name`},
		{"toname two @", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@a@b") }), ErrRefused, `'@' in the snapshot name`},
		{"toname empty", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "") }), ErrRefused, "toname \"\" is not a valid snapshot name: empty"},
		{"toname 300 bytes", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, long) }), ErrRefused, "297 bytes long, more than 255"},
		{"toname 256 bytes", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, long[:254]+"@s") }), ErrRefused, "256 bytes long"},
		{"toname empty snap", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@") }), ErrRefused, "empty snapshot name"},
		{"toname empty dataset", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "@s") }), ErrRefused, "empty dataset name"},
		{"toname //", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool//fs@s") }), ErrRefused, "empty dataset name component"},
		{"toname leading /", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "/pool/fs@s") }), ErrRefused, "starts or ends with '/'"},
		{"toname ..", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/../fs@s") }), ErrRefused, `component ".."`},
		{"toname newline", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@s\n") }), ErrRefused, `byte 0x0a in the snapshot name`},
		{"toname control", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/f\x01s@s") }), ErrRefused, `byte 0x01 in the dataset name`},
		{"toname DEL", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@s\x7f") }), ErrRefused, `byte 0x7f in the snapshot name`},
		{"toname UTF-8", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs@é") }), ErrRefused, `byte 0xc3 in the snapshot name`},
		{"toname %recv", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs/%recv@s") }), ErrRefused, `'%' in the dataset name`},
		{"toname digit pool", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "1pool/fs@s") }), ErrRefused, "does not start with a letter"},
		{"toname -pool", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "-pool/fs@s") }), ErrRefused, "does not start with a letter"},
		{"toname mirror", forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "mirror1/fs@s") }), ErrRefused, "reserved pool name"},
	}
	for _, f := range fields {
		if f.required {
			tests = append(tests, struct {
				name, token string
				kind        error
				msg         string
			}{"missing " + f.name, forge(func(l *nvlist.List) { removePair(l, f.name) }), ErrRefused, fmt.Sprintf("field %q is missing", f.name)})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Decode(tt.token)
			if err == nil {
				t.Fatalf("decoded to %+v", *tok)
			}
			checkError(t, err, tt.kind, tt.msg)
			if len(err.Error()) > 300 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
			// Inspect refuses what breaks a layer, and only that.
			_, ierr := Inspect(tt.token)
			if (tt.kind == ErrRefused) != (ierr == nil) {
				t.Errorf("Inspect: %v", ierr)
			}
		})
	}
}

// TestBigEndianList checks the test's byte swapping: the nvlist package
// reads the swapped list as the same list.
func TestBigEndianList(t *testing.T) {
	l := baseToken().list()
	l.Pairs = append(l.Pairs, nvlist.Pair{Name: "redact_snaps", Type: nvlist.Uint64Array, Value: []uint64{1, 2}})
	packed, err := nvlist.Pack(l, nvlist.Native)
	if err != nil {
		t.Fatal(err)
	}
	be := toBigEndian(packed)
	l2, enc, err := nvlist.Unpack(be, nvlist.Limits{})
	if err != nil || enc != nvlist.Native || !sameList(l, l2) {
		t.Fatalf("%v %v", enc, err)
	}
}

func TestAccepted(t *testing.T) {
	full := Token{ToName: "p@s", ToGUID: 1}
	all := Token{ToName: "tank/a b/c-d_e.f:g@h-i_j.k:l m", ToGUID: ^uint64(0), FromGUID: ^uint64(0),
		Object: ^uint64(0), Offset: ^uint64(0), Bytes: ^uint64(0),
		LargeBlockOK: true, EmbedOK: true, CompressOK: true, RawOK: true}
	max := Token{ToName: "pool/" + strings.Repeat("x", MaxNameLen-len("pool/@s")) + "@s", ToGUID: 7}
	for _, tok := range []Token{full, all, max, *baseToken()} {
		s := tok.Encode()
		got, err := Decode(s)
		if err != nil || *got != tok {
			t.Errorf("%+v: %+v, %v", tok, got, err)
		}
	}
	// A token of exactly MaxLen bytes is not refused for its length.
	base := baseToken().Encode()
	_, err := Decode(base + strings.Repeat("0", MaxLen-len(base)))
	if err == nil || strings.Contains(err.Error(), "long") {
		t.Errorf("MaxLen bytes: %v", err)
	}
}

// bomb returns a zlib stream of n zero bytes.
func bomb(n int) []byte { return zlibBytes(make([]byte, n)) }

// TestZlibBomb: a small payload that decompresses to a lot costs no more
// than the packed length bound.
func TestZlibBomb(t *testing.T) {
	const n = 3 << 20
	b := bomb(n)
	if 2*len(b)+32 > MaxLen {
		t.Fatalf("bomb of %d bytes does not fit in a token", len(b))
	}
	tests := []struct {
		name, token string
		msg         string
	}{
		{"wrong packed length", withPayload(b, 0x100), "decompresses to more than the packed length 256"},
		{"largest packed length", withPayload(b, MaxPackedLen), "decompresses to more than the packed length 65536"},
		{"right packed length", withPayload(b, n), fmt.Sprintf("packed length %d, must be 1 to 65536", n)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.token) > MaxLen {
				t.Fatalf("token of %d bytes", len(tt.token))
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Decode(tt.token)
			runtime.ReadMemStats(&after)
			checkError(t, err, ErrMalformed, tt.msg)
			// The 64 KiB buffer, the inflater's 32 KiB window and tables,
			// the compressed bytes: far less than the 3 MiB of the bomb.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
				t.Errorf("Decode allocated %d bytes", alloc)
			}
		})
	}
}

// TestErrorKinds: errors.Is tells the kinds apart and sees the cause.
func TestErrorKinds(t *testing.T) {
	_, err := Decode("1-1-1-789c")
	checkError(t, err, ErrMalformed, "checksum")
	for _, k := range []error{ErrUnsupported, ErrRefused} {
		if errors.Is(err, k) {
			t.Errorf("%v is also %v", err, k)
		}
	}
	_, err = Decode(encodePacked([]byte("not an nvlist")))
	if !errors.Is(err, nvlist.ErrTruncated) && !errors.Is(err, nvlist.ErrMalformed) {
		t.Errorf("the nvlist error is not wrapped: %v", err)
	}
}

// TestEncodePanics: Encode panics on a toname no nvlist can hold.
func TestEncodePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	(&Token{ToName: "a\x00b@c", ToGUID: 1}).Encode()
}

// TestLongNameInError: an nvlist error that quotes a long name is cut.
func TestLongNameInError(t *testing.T) {
	name := strings.Repeat("n", 3000)
	l := &nvlist.List{Flags: nvlist.UniqueName, Pairs: []nvlist.Pair{{Name: name, Type: nvlist.BooleanValue, Value: true}}}
	packed, err := nvlist.Pack(l, nvlist.Native)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(packed, []byte(name)) - 16
	packed[start+(16+len(name)+1+7)&^7] = 2 // a boolean_value of 2
	_, err = Decode(encodePacked(packed))
	checkError(t, err, ErrMalformed, "bad nvlist")
	if !errors.Is(err, nvlist.ErrMalformed) || len(err.Error()) > 300 {
		t.Errorf("%d bytes: %v", len(err.Error()), err)
	}
}
