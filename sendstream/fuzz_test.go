package sendstream

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReader: whatever the bytes, the Reader never panics, what it hands on
// is a prefix of its input, it ends cleanly only after handing on all of
// it, and reading in one-byte steps gives the same result.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"full", "inc", "incI", "R", "p", "D"} {
		f.Add(realStream(f, name))
	}
	for _, name := range []string{"incI-cLe", "raw", "resume"} {
		f.Add(loadStream(f, "openzfs-2.1-"+name))
	}
	b := newBuilder()
	b.Order = binary.BigEndian
	b.substream("p/a@x", 1, 0, FeatureEmbedData)
	f.Add(b.bytes())
	f.Fuzz(func(t *testing.T, stream []byte) {
		var out bytes.Buffer
		_, err := NewReader(bytes.NewReader(stream), nil).WriteTo(&out)
		if !bytes.HasPrefix(stream, out.Bytes()) {
			t.Fatal("output is not a prefix of the input")
		}
		if err == nil && out.Len() != len(stream) {
			t.Fatalf("clean end after %d of %d bytes", out.Len(), len(stream))
		}
		slow, serr := io.ReadAll(NewReader(iotest.OneByteReader(bytes.NewReader(stream)), nil))
		if (err == nil) != (serr == nil) || !bytes.Equal(slow, out.Bytes()) {
			t.Fatalf("one-byte reads differ: %d bytes, %v; whole: %d bytes, %v", len(slow), serr, out.Len(), err)
		}
	})
}

// BenchmarkInspection measures what the inspection costs on the way to zfs
// receive: a 256 MiB stream of 128 KiB writes passed through Reader, next to
// the same bytes passed through io.Copy. Compare the two MB/s figures.
func BenchmarkInspection(b *testing.B) {
	sb := newBuilder()
	sb.begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, to: 1, name: "p/a@x"})
	for range 2048 {
		sb.write(128 << 10)
	}
	stream := sb.end().bytes()
	b.Run("io.Copy", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		for range b.N {
			if _, err := io.Copy(io.Discard, onlyReader{bytes.NewReader(stream)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Reader", func(b *testing.B) {
		b.SetBytes(int64(len(stream)))
		for range b.N {
			if _, err := NewReader(onlyReader{bytes.NewReader(stream)}, Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}.Expect().Check).WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// onlyReader hides WriterTo, as a stream from the network does.
type onlyReader struct{ io.Reader }
