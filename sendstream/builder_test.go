package sendstream

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zrep/zrep/nvlist"
	"github.com/zrep/zrep/sendstream/streamtest"
)

// builder is streamtest.Builder with this package's types: synthetic
// streams of the shapes OpenZFS 2.x writes (raw, compressed, embedded, large
// blocks) that zfs-fuse cannot produce, and malformed ones.
type builder struct{ *streamtest.Builder }

func newBuilder() *builder { return &builder{streamtest.New()} }

// beginSpec is a BEGIN record to write.
type beginSpec struct {
	hdr      HeaderType
	features Features
	objset   ObjsetType
	flags    BeginFlags
	to, from uint64
	name     string
	payload  []byte
	magic    uint64 // 0 means Magic
}

func (b *builder) begin(s beginSpec) *builder {
	b.Begin(streamtest.Begin{HeaderType: uint8(s.hdr), Features: uint32(s.features), Objset: uint32(s.objset),
		Flags: uint32(s.flags), ToGUID: s.to, FromGUID: s.from, ToName: s.name, Payload: s.payload, Magic: s.magic})
	return b
}

func (b *builder) record(typ RecordType, n int, set func(u []byte, bo binary.ByteOrder)) *builder {
	b.Record(uint32(typ), n, set)
	return b
}

func (b *builder) end() *builder        { b.End(); return b }
func (b *builder) write(n int) *builder { b.Write(n); return b }

func (b *builder) substream(name string, to, from uint64, f Features) *builder {
	b.Substream(name, to, from, uint32(f), 4096)
	return b
}

func (b *builder) bytes() []byte { return b.Bytes() }

// realStream loads a stream recorded from zfs-fuse (testdata/zfsfuse-NAME.zs.gz).
func realStream(t testing.TB, name string) []byte {
	t.Helper()
	return loadStream(t, "zfsfuse-"+name)
}

// loadStream loads testdata/NAME.zs.gz.
func loadStream(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+".zs.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The guids of the recorded zfs-fuse streams (from zstreamdump): sspool/a
// with the snapshots s1, s2, s3.
const (
	guidS1 = 0xadd3dea896cfdf9e
	guidS2 = 0xbf078727bb1fed71
	guidS3 = 0xef4dfd90ecff6b7e
)

var (
	snapS1 = Snapshot{Name: "s1", GUID: guidS1}
	snapS2 = Snapshot{Name: "s2", GUID: guidS2}
	snapS3 = Snapshot{Name: "s3", GUID: guidS3}
)

// emptyNativeList is a packed native nvlist with one uint64, like the
// parameters after a raw stream's BEGIN.
func emptyNativeList() []byte {
	b, err := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: []nvlist.Pair{{Name: "to_ivset_guid", Type: nvlist.Uint64, Value: uint64(7)}}}, nvlist.Native)
	if err != nil {
		panic(err)
	}
	return b
}
