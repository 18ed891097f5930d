// Package streamtest writes ZFS send streams for tests: well-formed ones of
// shapes the local zfs cannot send (OpenZFS feature flags, big-endian
// senders, -I streams of any length) and broken ones. It knows the record
// layout of OpenZFS's zfs_ioctl.h on its own, independently of the reader
// in package sendstream, so that tests of that reader do not share its
// mistakes.
package streamtest

import (
	"bytes"
	"encoding/binary"
)

// RecordSize is the size of a record header (dmu_replay_record_t).
const RecordSize = 312

// Magic is DMU_BACKUP_MAGIC.
const Magic = 0x2F5bacbac

// Record types used here (drr_type).
const (
	TypeBegin       = 0
	TypeObject      = 1
	TypeFreeObjects = 2
	TypeWrite       = 3
	TypeFree        = 4
	TypeEnd         = 5
)

// Header types (the low bits of drr_versioninfo).
const (
	Substream = 1
	Compound  = 2
)

// DMU_OST_ZFS and DMU_OST_ZVOL.
const (
	Filesystem = 2
	Volume     = 3
)

// Begin is a BEGIN record to write; zero fields are written as zero.
type Begin struct {
	HeaderType uint8
	Features   uint32 // feature flags, not yet shifted into drr_versioninfo
	Objset     uint32
	Flags      uint32
	ToGUID     uint64
	FromGUID   uint64
	ToName     string
	Payload    []byte // a packed nvlist after the record
	Magic      uint64 // 0 writes Magic
}

// Builder writes a stream record by record.
type Builder struct {
	// Order is the sender's byte order (little-endian by default).
	Order binary.ByteOrder
	buf   bytes.Buffer
}

// New returns an empty little-endian Builder.
func New() *Builder { return &Builder{Order: binary.LittleEndian} }

// Begin writes a BEGIN record and its payload.
func (b *Builder) Begin(s Begin) *Builder {
	rec := make([]byte, RecordSize)
	bo := b.Order
	bo.PutUint32(rec[0:], TypeBegin)
	bo.PutUint32(rec[4:], uint32(len(s.Payload)))
	u := rec[8:]
	magic := s.Magic
	if magic == 0 {
		magic = Magic
	}
	bo.PutUint64(u[0:], magic)
	bo.PutUint64(u[8:], uint64(s.HeaderType)|uint64(s.Features)<<2)
	bo.PutUint64(u[16:], 1700000000)
	bo.PutUint32(u[24:], s.Objset)
	bo.PutUint32(u[28:], s.Flags)
	bo.PutUint64(u[32:], s.ToGUID)
	bo.PutUint64(u[40:], s.FromGUID)
	copy(u[48:48+255], s.ToName)
	b.buf.Write(rec)
	b.buf.Write(s.Payload)
	return b
}

// Record writes a record of type typ, whose type-specific part (drr_u) set
// fills in, followed by n payload bytes.
func (b *Builder) Record(typ uint32, n int, set func(u []byte, bo binary.ByteOrder)) *Builder {
	rec := make([]byte, RecordSize)
	b.Order.PutUint32(rec[0:], typ)
	if set != nil {
		set(rec[8:], b.Order)
	}
	b.buf.Write(rec)
	b.buf.Write(bytes.Repeat([]byte{0xa5}, n))
	return b
}

// End writes an END record.
func (b *Builder) End() *Builder { return b.Record(TypeEnd, 0, nil) }

// Write writes an uncompressed WRITE record of size bytes.
func (b *Builder) Write(size int) *Builder {
	return b.Record(TypeWrite, size, func(u []byte, bo binary.ByteOrder) { bo.PutUint64(u[24:], uint64(size)) })
}

// Object writes an OBJECT record with a bonus buffer of bonus bytes.
func (b *Builder) Object(bonus uint32) *Builder {
	return b.Record(TypeObject, int(bonus+7)&^7, func(u []byte, bo binary.ByteOrder) { bo.PutUint32(u[20:], bonus) })
}

// Substream writes a whole substream of a file system ("pool/fs@snap")
// whose data is one WRITE of size bytes.
func (b *Builder) Substream(name string, to, from uint64, features uint32, size int) *Builder {
	return b.SubstreamOf(Filesystem, name, to, from, features, size)
}

// SubstreamOf is Substream for a dataset of type objset (Filesystem or Volume).
func (b *Builder) SubstreamOf(objset uint32, name string, to, from uint64, features uint32, size int) *Builder {
	return b.Begin(Begin{HeaderType: Substream, Features: features, Objset: objset, ToGUID: to, FromGUID: from, ToName: name}).
		Record(TypeFreeObjects, 0, nil).Object(264).Write(size).Record(TypeFree, 0, nil).End()
}

// Bytes returns a copy of the stream so far.
func (b *Builder) Bytes() []byte { return bytes.Clone(b.buf.Bytes()) }

// Len is the length of the stream so far.
func (b *Builder) Len() int { return b.buf.Len() }

// Buffer is the stream being written, for tests that break it by hand.
func (b *Builder) Buffer() *bytes.Buffer { return &b.buf }

// Snap is a snapshot a stream carries.
type Snap struct {
	Name string // short name, after the "@"
	GUID uint64
}

// Stream returns what zfs send writes for dataset: a plain stream of
// snaps[0] (full when fromGUID is 0, else incremental, as -i) when
// intermediates is false, and a -I stream (compound, with an empty header)
// of every snapshot in snaps otherwise. Each snapshot's data is size bytes.
func Stream(dataset string, fromGUID uint64, snaps []Snap, intermediates bool, size int) []byte {
	return StreamOf(Filesystem, dataset, fromGUID, snaps, intermediates, size)
}

// StreamOf is Stream for a dataset of type objset (Filesystem or Volume).
func StreamOf(objset uint32, dataset string, fromGUID uint64, snaps []Snap, intermediates bool, size int) []byte {
	return Spec{Objset: objset, Dataset: dataset, FromGUID: fromGUID, Snaps: snaps, Intermediates: intermediates, Size: size}.Bytes()
}

// Spec is a stream as zfs send writes it, with every knob: see Stream.
type Spec struct {
	Objset        uint32 // Filesystem or Volume
	Dataset       string
	FromGUID      uint64
	Snaps         []Snap
	Intermediates bool
	Size          int    // data bytes of each snapshot
	Features      uint32 // of each substream, e.g. raw (1<<24)
	Payload       []byte // after each substream's BEGIN, e.g. a raw stream's keys
}

// Bytes writes the stream s describes.
func (s Spec) Bytes() []byte {
	b := New()
	snaps := s.Snaps
	if s.Intermediates {
		b.Begin(Begin{HeaderType: Compound, ToName: s.Dataset + "@" + snaps[len(snaps)-1].Name}).End()
	} else {
		snaps = snaps[:1]
	}
	from := s.FromGUID
	for _, sn := range snaps {
		b.Begin(Begin{HeaderType: Substream, Features: s.Features, Objset: s.Objset, ToGUID: sn.GUID, FromGUID: from,
			ToName: s.Dataset + "@" + sn.Name, Payload: s.Payload}).
			Record(TypeFreeObjects, 0, nil).Object(264).Write(s.Size).Record(TypeFree, 0, nil).End()
		from = sn.GUID
	}
	if s.Intermediates {
		b.End()
	}
	return b.Bytes()
}
