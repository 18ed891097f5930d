package sendstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zrep/zrep/nvlist"
)

// beginSummary is what the tests compare of a BEGIN record.
type beginSummary struct {
	hdr      HeaderType
	features Features
	to, from uint64
	name     string
	payload  bool
}

func summarize(b *Begin) beginSummary {
	return beginSummary{hdr: b.HeaderType, features: b.Features, to: b.ToGUID, from: b.FromGUID, name: b.ToName, payload: b.Payload != nil}
}

// readAll passes stream through a Reader (via WriteTo) and returns what came
// out, the BEGIN records seen and the error.
func readAll(stream []byte, check Checker) ([]byte, []beginSummary, error) {
	var seen []beginSummary
	r := NewReader(bytes.NewReader(stream), func(b *Begin) error {
		seen = append(seen, summarize(b))
		if check != nil {
			return check(b)
		}
		return nil
	})
	var out bytes.Buffer
	_, err := r.WriteTo(&out)
	return out.Bytes(), seen, err
}

// TestRealStreams reads streams zfs-fuse sent (full, -i, -I, -R, -R -I, -p,
// -D, -D -i) and checks that every byte passes unchanged and that the BEGIN
// records are those zstreamdump printed for them.
func TestRealStreams(t *testing.T) {
	const ds = "sspool/a@"
	header := func(name string, payload bool) beginSummary {
		return beginSummary{hdr: Compound, name: ds + name, payload: payload}
	}
	sub := func(name string, to, from uint64, f Features) beginSummary {
		return beginSummary{hdr: Substream, to: to, from: from, name: ds + name, features: f}
	}
	dedup := FeatureDedup | FeatureDedupProps
	tests := []struct {
		name string
		want []beginSummary
	}{
		{"full", []beginSummary{sub("s1", guidS1, 0, 0)}},
		{"inc", []beginSummary{sub("s2", guidS2, guidS1, 0)}},
		{"incI", []beginSummary{header("s3", false), sub("s2", guidS2, guidS1, 0), sub("s3", guidS3, guidS2, 0)}},
		{"R", []beginSummary{header("s3", true), sub("s1", guidS1, 0, 0), sub("s2", guidS2, guidS1, 0), sub("s3", guidS3, guidS2, 0)}},
		{"RI", []beginSummary{header("s3", true), sub("s2", guidS2, guidS1, 0), sub("s3", guidS3, guidS2, 0)}},
		{"p", []beginSummary{header("s1", true), sub("s1", guidS1, 0, 0)}},
		{"D", []beginSummary{sub("s1", guidS1, 0, dedup)}},
		{"Di", []beginSummary{sub("s2", guidS2, guidS1, dedup)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := realStream(t, tt.name)
			out, seen, err := readAll(stream, nil)
			if err != nil {
				t.Fatalf("reading a real stream: %v", err)
			}
			if !bytes.Equal(out, stream) {
				t.Fatalf("the stream changed on its way through: %d bytes in, %d out", len(stream), len(out))
			}
			if len(seen) != len(tt.want) {
				t.Fatalf("BEGIN records: got %+v, want %+v", seen, tt.want)
			}
			for i := range seen {
				if seen[i] != tt.want[i] {
					t.Errorf("BEGIN %d: got %+v, want %+v", i, seen[i], tt.want[i])
				}
			}
		})
	}
}

// TestRealHeaders decodes the package headers zfs-fuse wrote for -R and -p:
// the properties a compromised source would plant are there to be seen.
func TestRealHeaders(t *testing.T) {
	var hdr *Begin
	r := NewReader(bytes.NewReader(realStream(t, "R")), func(b *Begin) error {
		if b.Compound() {
			hdr = b
		}
		return nil
	})
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if hdr == nil || hdr.Payload == nil {
		t.Fatal("no package header")
	}
	if s, _ := hdr.Payload.String("tosnap"); s != "s3" {
		t.Errorf("tosnap = %q, want s3", s)
	}
	fss, ok := hdr.Payload.List("fss")
	if !ok || len(fss.Pairs) != 1 {
		t.Fatalf("fss: %v, %v", fss, ok)
	}
	fs, ok := fss.Pairs[0].Value.(*nvlist.List)
	if !ok {
		t.Fatalf("fss holds %T", fss.Pairs[0].Value)
	}
	props, _ := fs.List("props")
	if mp, _ := props.String("mountpoint"); mp != "/tmp/ss/evil" {
		t.Errorf("the header's mountpoint property is %q", mp)
	}
}

// TestReadShapes: the same bytes come out whatever the sizes of the reads
// on either side.
func TestReadShapes(t *testing.T) {
	stream := realStream(t, "R")
	readers := map[string]func(io.Reader) io.Reader{
		"one byte":  iotest.OneByteReader,
		"half":      iotest.HalfReader,
		"data+EOF":  iotest.DataErrReader,
		"unchanged": func(r io.Reader) io.Reader { return r },
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(wrap(bytes.NewReader(stream)), nil)
			out, err := io.ReadAll(iotest.OneByteReader(r))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, stream) {
				t.Fatalf("%d bytes in, %d out", len(stream), len(out))
			}
			if r.Begins() != 4 {
				t.Errorf("Begins() = %d, want 4", r.Begins())
			}
		})
	}
}

// TestSyntheticStreams covers what zfs-fuse cannot send: OpenZFS's feature
// flags and the records that come with them, big-endian senders, and
// BEGIN payloads of raw streams.
func TestSyntheticStreams(t *testing.T) {
	compressedWrite := func(u []byte, bo binary.ByteOrder) {
		bo.PutUint64(u[24:], 131072) // logical size
		u[42] = 15                   // compression type (zstd)
		bo.PutUint64(u[88:], 4000)   // compressed size: the payload
	}
	tests := []struct {
		name  string
		build func(*builder)
	}{
		{"large blocks", func(b *builder) {
			b.begin(beginSpec{hdr: Substream, features: FeatureLargeBlocks | FeatureLargeDnode, objset: ObjsetFilesystem, to: 1, name: "p/a@x"}).
				write(1 << 20).end()
		}},
		{"compressed", func(b *builder) {
			b.begin(beginSpec{hdr: Substream, features: FeatureCompressed | FeatureLZ4 | FeatureZstd, objset: ObjsetFilesystem, to: 1, name: "p/a@x"}).
				record(RecordWrite, 4000, compressedWrite).end()
		}},
		{"embedded", func(b *builder) {
			b.begin(beginSpec{hdr: Substream, features: FeatureEmbedData, objset: ObjsetFilesystem, to: 1, name: "p/a@x"}).
				record(RecordWriteEmbedded, 48, func(u []byte, bo binary.ByteOrder) { bo.PutUint32(u[44:], 43) }).end()
		}},
		{"raw", func(b *builder) {
			b.begin(beginSpec{hdr: Substream, features: FeatureRaw | FeatureCompressed, objset: ObjsetFilesystem, to: 1, name: "p/a@x", payload: emptyNativeList()}).
				record(RecordObjectRange, 0, nil).
				record(RecordObject, 320, func(u []byte, bo binary.ByteOrder) { bo.PutUint32(u[20:], 264); bo.PutUint32(u[28:], 320) }).
				record(RecordWrite, 4000, compressedWrite).
				record(RecordSpill, 512, func(u []byte, bo binary.ByteOrder) { bo.PutUint64(u[8:], 1024); bo.PutUint64(u[32:], 512) }).end()
		}},
		{"big endian", func(b *builder) {
			b.Order = binary.BigEndian
			b.substream("p/a@x", 1, 0, 0)
		}},
		{"compound of two", func(b *builder) {
			b.begin(beginSpec{hdr: Compound, name: "p/a@y"}).end().
				substream("p/a@x", 1, 9, 0).substream("p/a@y", 2, 1, 0).end()
		}},
		{"empty compound", func(b *builder) {
			b.begin(beginSpec{hdr: Compound, name: "p/a@y"}).end().end()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			tt.build(b)
			stream := b.bytes()
			out, _, err := readAll(stream, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, stream) {
				t.Fatalf("%d bytes in, %d out", len(stream), len(out))
			}
		})
	}
}

// TestMalformed: each broken stream is refused with a FormatError at the
// record that breaks it, and nothing from that record on comes out.
func TestMalformed(t *testing.T) {
	fs := func(b *builder, f Features) *builder {
		return b.begin(beginSpec{hdr: Substream, features: f, objset: ObjsetFilesystem, to: 1, name: "p/a@x"})
	}
	tests := []struct {
		name    string
		build   func(*builder)
		wantMsg string
		wantOut int // bytes that pass before the refusal
	}{
		{"garbage prefix", func(b *builder) { b.Buffer().WriteString("Welcome to host\n"); b.substream("p/a@x", 1, 0, 0) }, "BEGIN", 0},
		{"bad magic", func(b *builder) { b.begin(beginSpec{hdr: Substream, magic: 0x1234, name: "p/a@x"}).end() }, "magic", 0},
		{"empty", func(b *builder) {}, "empty", 0},
		{"truncated header", func(b *builder) { b.Buffer().Write(make([]byte, 100)) }, "ends 100 bytes into a record", 0},
		{"trailing garbage", func(b *builder) { b.substream("p/a@x", 1, 0, 0); b.Buffer().WriteString("extra") }, "after the end", -1},
		{"second stream appended", func(b *builder) { b.substream("p/a@x", 1, 0, 0).substream("p/a@y", 2, 1, 0) }, "after the end", -1},
		{"unknown feature", func(b *builder) { fs(b, 1<<30-1).end() }, "unknown feature", 0},
		{"unknown header type", func(b *builder) { b.begin(beginSpec{hdr: 3, name: "p/a@x"}).end() }, "header type 3", 0},
		{"unknown record", func(b *builder) { fs(b, 0).record(42, 0, nil).end() }, "record type 42", RecordSize},
		{"BEGIN inside a substream", func(b *builder) { fs(b, 0).substream("p/a@y", 2, 0, 0) }, "inside a substream", RecordSize},
		{"nested compound", func(b *builder) {
			b.begin(beginSpec{hdr: Compound, name: "p/a@y"}).end().begin(beginSpec{hdr: Compound, name: "p/a@y"}).end().end()
		}, "nested", 0}, // the header is held back until a substream passes
		{"data record in a header", func(b *builder) { b.begin(beginSpec{hdr: Compound, name: "p/a@y"}).write(512).end() }, "where a BEGIN or END", 0},
		{"huge write", func(b *builder) {
			fs(b, 0).record(RecordWrite, 0, func(u []byte, bo binary.ByteOrder) { bo.PutUint64(u[24:], 1<<40) })
		}, "payload of", RecordSize},
		{"compressed write without the feature", func(b *builder) {
			fs(b, 0).record(RecordWrite, 0, func(u []byte, bo binary.ByteOrder) { u[42] = 2; bo.PutUint64(u[88:], 10) })
		}, "compressed feature", RecordSize},
		{"raw bonus without raw", func(b *builder) {
			fs(b, 0).record(RecordObject, 0, func(u []byte, bo binary.ByteOrder) { bo.PutUint32(u[28:], 100) })
		}, "not raw", RecordSize},
		{"embedded without the feature", func(b *builder) { fs(b, 0).record(RecordWriteEmbedded, 0, nil) }, "embed_data", RecordSize},
		{"byref without dedup", func(b *builder) { fs(b, 0).record(RecordWriteByRef, 0, nil) }, "deduplicated", RecordSize},
		{"redact without the feature", func(b *builder) { fs(b, 0).record(RecordRedact, 0, nil) }, "redacted", RecordSize},
		{"truncated payload", func(b *builder) { fs(b, 0).write(4096); b.Buffer().Truncate(b.Buffer().Len() - 10) }, "10 bytes short", -1},
		{"huge BEGIN payload", func(b *builder) {
			b.begin(beginSpec{hdr: Compound, name: "p/a@y"})
			binary.LittleEndian.PutUint32(b.Buffer().Bytes()[4:], 1<<30)
		}, "payload", 0},
		{"BEGIN payload not an nvlist", func(b *builder) {
			b.begin(beginSpec{hdr: Compound, name: "p/a@y", payload: []byte("not an nvlist at all")}).end().end()
		}, "nvlist", 0},
		{"name not terminated", func(b *builder) {
			fs(b, 0)
			copy(b.Buffer().Bytes()[unionOffset+48:], bytes.Repeat([]byte{'a'}, nameLen))
		}, "not terminated", 0},
		{"bytes after the name", func(b *builder) { fs(b, 0).end(); b.Buffer().Bytes()[unionOffset+48+200] = 'x' }, "after the end of its name", 0},
		{"control character in the name", func(b *builder) { b.begin(beginSpec{hdr: Substream, name: "p/a@x\n"}).end() }, "non-printable", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			tt.build(b)
			stream := b.bytes()
			out, _, err := readAll(stream, nil)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FormatError", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			if tt.wantOut >= 0 && len(out) != tt.wantOut {
				t.Errorf("%d bytes came out before the refusal, want %d", len(out), tt.wantOut)
			}
			if !bytes.Equal(out, stream[:len(out)]) {
				t.Error("what came out is not a prefix of the stream")
			}
		})
	}
}

// TestTruncatedAnywhere: a real stream cut at any byte is an error, never a
// clean end and never a panic.
func TestTruncatedAnywhere(t *testing.T) {
	for _, name := range []string{"incI", "p"} {
		stream := realStream(t, name)
		for cut := 0; cut < len(stream); cut++ {
			out, _, err := readAll(stream[:cut], nil)
			if err == nil {
				t.Fatalf("%s cut at %d of %d: no error", name, cut, len(stream))
			}
			if !bytes.Equal(out, stream[:len(out)]) {
				t.Fatalf("%s cut at %d: output is not a prefix", name, cut)
			}
		}
	}
}

// TestSourceError: the source's own error comes through as it is, after
// the bytes before it.
func TestSourceError(t *testing.T) {
	stream := realStream(t, "full")
	boom := errors.New("connection lost")
	src := io.MultiReader(bytes.NewReader(stream[:5000]), iotest.ErrReader(boom))
	var out bytes.Buffer
	_, err := NewReader(src, nil).WriteTo(&out)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the source's error", err)
	}
	if out.Len() > 5000 || !bytes.Equal(out.Bytes(), stream[:out.Len()]) {
		t.Fatalf("%d bytes out", out.Len())
	}
}

// TestCheckerStopsBeforeTheRecord: a Checker's refusal stops the stream
// exactly at the BEGIN it refused, and its error is returned as it is.
func TestCheckerStopsBeforeTheRecord(t *testing.T) {
	stream := realStream(t, "incI")
	refuse := errors.New("not this one")
	out, seen, err := readAll(stream, func(b *Begin) error {
		if b.ToGUID == guidS3 {
			return refuse
		}
		return nil
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("got %v", err)
	}
	if len(seen) != 3 {
		t.Fatalf("saw %d BEGINs", len(seen))
	}
	// What came out ends just before the refused BEGIN.
	off := findBegin(t, stream, guidS3)
	if len(out) != off {
		t.Fatalf("%d bytes came out, the refused BEGIN is at %d", len(out), off)
	}
}

// findBegin finds the offset of the BEGIN record with toguid in a stream.
func findBegin(t *testing.T, stream []byte, toguid uint64) int {
	t.Helper()
	want := binary.LittleEndian.AppendUint64(nil, toguid)
	for off := 0; off+RecordSize <= len(stream); off++ {
		if binary.LittleEndian.Uint32(stream[off:]) == 0 && binary.LittleEndian.Uint64(stream[off+unionOffset:]) == Magic &&
			bytes.Equal(stream[off+unionOffset+32:off+unionOffset+40], want) {
			return off
		}
	}
	t.Fatalf("no BEGIN of %x", toguid)
	return 0
}
