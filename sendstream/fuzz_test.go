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
