// Package sendstream reads a ZFS send stream as it flows from `zfs send` to
// `zfs receive`, so that a receiver can check what the stream will do before
// zfs sees it.
//
// A send stream is a sequence of 312-byte records (dmu_replay_record_t in
// OpenZFS's zfs_ioctl.h), some followed by a payload. A plain stream (a full
// or `-i` send) is one substream: BEGIN, object and data records, END. A
// compound stream (`-I`, `-R`, `-p`, …) starts with a BEGIN of header type
// "compound" whose payload is a packed nvlist (the "package" header that can
// carry properties, holds and a list of file systems), then an END, then one
// substream per snapshot, then a final END.
//
// Reader passes every byte through unchanged, and holds back each BEGIN
// record (with its payload) until a Checker has accepted it: the receiving
// side can refuse a stream it did not ask for before zfs receive reads a
// byte of it. Reader only parses record headers; it never allocates for
// data payloads, and a BEGIN payload larger than its limit is an error.
package sendstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/nvlist"
)

// RecordSize is the size of every record header (sizeof dmu_replay_record_t).
const RecordSize = 312

// Magic is drr_magic of a BEGIN record (DMU_BACKUP_MAGIC), in the sender's byte order.
const Magic = 0x2F5bacbac

// beginPayloadOffset is where a record's type-specific part (drr_u) starts.
const unionOffset = 8

// nameLen is the size of drr_toname (MAXNAMELEN).
const nameLen = 256

// RecordType is drr_type.
type RecordType uint32

// Record types (the enum in dmu_replay_record_t).
const (
	RecordBegin RecordType = iota
	RecordObject
	RecordFreeObjects
	RecordWrite
	RecordFree
	RecordEnd
	RecordWriteByRef
	RecordSpill
	RecordWriteEmbedded
	RecordObjectRange
	RecordRedact
	numRecordTypes
)

var recordNames = [...]string{"BEGIN", "OBJECT", "FREEOBJECTS", "WRITE", "FREE", "END", "WRITE_BYREF", "SPILL",
	"WRITE_EMBEDDED", "OBJECT_RANGE", "REDACT"}

func (t RecordType) String() string {
	if t < numRecordTypes {
		return recordNames[t]
	}
	return fmt.Sprintf("record type %d", uint32(t))
}

// HeaderType is the stream header type in the low two bits of drr_versioninfo.
type HeaderType uint8

// Header types.
const (
	Substream HeaderType = 1 // DMU_SUBSTREAM: one snapshot's records
	Compound  HeaderType = 2 // DMU_COMPOUNDSTREAM: a package header, then substreams
)

func (h HeaderType) String() string {
	switch h {
	case Substream:
		return "substream"
	case Compound:
		return "compound"
	}
	return fmt.Sprintf("header type %d", uint8(h))
}

// Features are the feature flags of a stream (bits 2-31 of drr_versioninfo,
// DMU_BACKUP_FEATURE_* shifted down).
type Features uint32

// Feature flags.
const (
	FeatureDedup               Features = 1 << 0
	FeatureDedupProps          Features = 1 << 1
	FeatureSASpill             Features = 1 << 2
	FeatureEmbedData           Features = 1 << 16
	FeatureLZ4                 Features = 1 << 17
	FeatureLargeBlocks         Features = 1 << 19
	FeatureResuming            Features = 1 << 20
	FeatureRedacted            Features = 1 << 21
	FeatureCompressed          Features = 1 << 22
	FeatureLargeDnode          Features = 1 << 23
	FeatureRaw                 Features = 1 << 24
	FeatureZstd                Features = 1 << 25
	FeatureHolds               Features = 1 << 26
	FeatureSwitchToLargeBlocks Features = 1 << 27
	FeatureLongName            Features = 1 << 28
	FeatureLargeMicrozap       Features = 1 << 29
	knownFeatures                       = FeatureDedup | FeatureDedupProps | FeatureSASpill | FeatureEmbedData | FeatureLZ4 | FeatureLargeBlocks | FeatureResuming | FeatureRedacted | FeatureCompressed | FeatureLargeDnode | FeatureRaw | FeatureZstd | FeatureHolds | FeatureSwitchToLargeBlocks | FeatureLongName | FeatureLargeMicrozap
	featureFlagsShift                   = 2
	featureFlagsMask                    = 1<<30 - 1
)

var featureNames = []struct {
	f    Features
	name string
}{
	{FeatureDedup, "dedup"}, {FeatureDedupProps, "dedupprops"}, {FeatureSASpill, "sa_spill"},
	{FeatureEmbedData, "embed_data"}, {FeatureLZ4, "lz4"}, {FeatureLargeBlocks, "large_blocks"},
	{FeatureResuming, "resuming"}, {FeatureRedacted, "redacted"}, {FeatureCompressed, "compressed"},
	{FeatureLargeDnode, "large_dnode"}, {FeatureRaw, "raw"}, {FeatureZstd, "zstd"}, {FeatureHolds, "holds"},
	{FeatureSwitchToLargeBlocks, "switch_to_large_blocks"}, {FeatureLongName, "longname"},
	{FeatureLargeMicrozap, "large_microzap"},
}

// String lists the flags by name ("lz4,embed_data"); unknown bits as hex.
func (f Features) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for _, fn := range featureNames {
		if f&fn.f != 0 {
			names = append(names, fn.name)
			f &^= fn.f
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(names, ",")
}

// ObjsetType is drr_type of a BEGIN record (dmu_objset_type_t).
type ObjsetType uint32

// Objset types a stream can carry.
const (
	ObjsetNone       ObjsetType = 0 // in a compound stream's header
	ObjsetFilesystem ObjsetType = 2 // DMU_OST_ZFS
	ObjsetVolume     ObjsetType = 3 // DMU_OST_ZVOL
)

func (o ObjsetType) String() string {
	switch o {
	case ObjsetNone:
		return "none"
	case ObjsetFilesystem:
		return "filesystem"
	case ObjsetVolume:
		return "volume"
	}
	return fmt.Sprintf("objset type %d", uint32(o))
}

// BeginFlags are drr_flags of a BEGIN record.
type BeginFlags uint32

// BEGIN flags.
const (
	FlagClone       BeginFlags = 1 << 0 // an incremental from another dataset (a clone's origin)
	FlagCIData      BeginFlags = 1 << 1
	FlagFreeRecords BeginFlags = 1 << 2
	FlagSpillBlock  BeginFlags = 1 << 3
)

// Begin is a BEGIN record with its payload.
type Begin struct {
	// Offset is where the record starts in the whole stream.
	Offset int64
	// BigEndian: the sender wrote the stream in big-endian byte order.
	BigEndian    bool
	HeaderType   HeaderType
	Features     Features
	CreationTime uint64 // seconds since the epoch; 0 in a compound header
	ObjsetType   ObjsetType
	Flags        BeginFlags
	ToGUID       uint64
	FromGUID     uint64 // 0 for a full stream
	ToName       string // "pool/fs@snap" on the sending side
	// PayloadLen is the length of the packed nvlist that follows the record.
	PayloadLen uint32
	// Payload is that nvlist decoded: the package header of a compound
	// stream, or a substream's resume or encryption parameters; nil if none.
	Payload *nvlist.List
}

// Compound reports whether b starts a compound stream.
func (b *Begin) Compound() bool { return b.HeaderType == Compound }

// Snapshot is the part of ToName after the "@".
func (b *Begin) Snapshot() string {
	if _, snap, ok := strings.Cut(b.ToName, "@"); ok {
		return snap
	}
	return ""
}

// Dataset is the part of ToName before the "@".
func (b *Begin) Dataset() string {
	ds, _, _ := strings.Cut(b.ToName, "@")
	return ds
}

// byteOrder detects the sender's byte order from a BEGIN record's magic.
func byteOrder(rec []byte) (binary.ByteOrder, bool) {
	switch {
	case binary.LittleEndian.Uint64(rec[unionOffset:]) == Magic:
		return binary.LittleEndian, true
	case binary.BigEndian.Uint64(rec[unionOffset:]) == Magic:
		return binary.BigEndian, true
	}
	return nil, false
}

// parseBegin decodes the fixed part of a BEGIN record (not its payload).
func parseBegin(rec []byte, off int64) (*Begin, binary.ByteOrder, error) {
	bo, ok := byteOrder(rec)
	if !ok {
		return nil, nil, formatErr(off, "BEGIN record without the send stream magic (not a zfs send stream)")
	}
	u := rec[unionOffset:]
	vi := bo.Uint64(u[8:])
	b := &Begin{
		Offset:       off,
		BigEndian:    bo == binary.ByteOrder(binary.BigEndian),
		HeaderType:   HeaderType(vi & 3),
		Features:     Features(vi >> featureFlagsShift & featureFlagsMask),
		CreationTime: bo.Uint64(u[16:]),
		ObjsetType:   ObjsetType(bo.Uint32(u[24:])),
		Flags:        BeginFlags(bo.Uint32(u[28:])),
		ToGUID:       bo.Uint64(u[32:]),
		FromGUID:     bo.Uint64(u[40:]),
		PayloadLen:   bo.Uint32(rec[4:]),
	}
	if vi>>32 != 0 {
		return nil, nil, formatErr(off, "BEGIN record with reserved bits set in its version field (%#x)", vi)
	}
	switch b.HeaderType {
	case Substream, Compound:
	default:
		return nil, nil, formatErr(off, "BEGIN record with unknown %s", b.HeaderType)
	}
	if unknown := b.Features &^ knownFeatures; unknown != 0 {
		return nil, nil, formatErr(off, "stream with unknown feature flags %#x", uint32(unknown))
	}
	name := u[48 : 48+nameLen]
	end := bytes.IndexByte(name, 0)
	switch {
	case end < 0:
		return nil, nil, formatErr(off, "BEGIN record whose name is not terminated")
	case bytes.ContainsFunc(name[end:], func(r rune) bool { return r != 0 }):
		return nil, nil, formatErr(off, "BEGIN record with bytes after the end of its name")
	}
	b.ToName = string(name[:end])
	for _, c := range b.ToName {
		if c < 0x20 || c > 0x7e {
			return nil, nil, formatErr(off, "BEGIN record whose name %q has a non-printable character", b.ToName)
		}
	}
	return b, bo, nil
}

// maxDataPayload bounds a data record's payload (SPA_MAXBLOCKSIZE, 16 MiB).
const maxDataPayload = 16 << 20

// payloadSize returns the length of the payload that follows a record other
// than BEGIN, as zfs receive computes it (DRR_*_PAYLOAD_SIZE), and checks the
// record against the stream's features: fields that only some features give a
// meaning to must be zero without them, so that every zfs, old or new, frames
// the stream exactly as this reader does.
func payloadSize(typ RecordType, u []byte, bo binary.ByteOrder, f Features) (int64, error) {
	var n uint64
	switch typ {
	case RecordFreeObjects, RecordFree, RecordEnd:
		return 0, nil
	case RecordObject:
		bonus, rawBonus := uint64(bo.Uint32(u[20:])), uint64(bo.Uint32(u[28:]))
		n = roundUp8(bonus)
		if rawBonus != 0 {
			if f&FeatureRaw == 0 {
				return 0, errors.New("OBJECT record with a raw bonus length in a stream that is not raw")
			}
			n = rawBonus
		}
	case RecordWrite:
		n = bo.Uint64(u[24:]) // drr_logical_size
		if u[42] != 0 {       // drr_compressiontype
			if f&(FeatureCompressed|FeatureRaw) == 0 {
				return 0, errors.New("compressed WRITE record in a stream without the compressed feature")
			}
			n = bo.Uint64(u[88:]) // drr_compressed_size
		}
	case RecordWriteByRef:
		if f&FeatureDedup == 0 {
			return 0, errors.New("WRITE_BYREF record in a stream that is not deduplicated")
		}
		return 0, nil
	case RecordSpill:
		n = bo.Uint64(u[8:]) // drr_length
		if c := bo.Uint64(u[32:]); c != 0 {
			if f&(FeatureCompressed|FeatureRaw) == 0 {
				return 0, errors.New("compressed SPILL record in a stream without the compressed feature")
			}
			n = c
		}
	case RecordWriteEmbedded:
		if f&FeatureEmbedData == 0 {
			return 0, errors.New("WRITE_EMBEDDED record in a stream without the embed_data feature")
		}
		n = roundUp8(uint64(bo.Uint32(u[44:])))
	case RecordObjectRange:
		if f&FeatureRaw == 0 {
			return 0, errors.New("OBJECT_RANGE record in a stream that is not raw")
		}
		return 0, nil
	case RecordRedact:
		if f&FeatureRedacted == 0 {
			return 0, errors.New("REDACT record in a stream that is not redacted")
		}
		return 0, nil
	default:
		return 0, errors.Errorf("unknown %s", typ)
	}
	if n > maxDataPayload {
		return 0, errors.Errorf("%s record with a payload of %d bytes (at most %d)", typ, n, maxDataPayload)
	}
	return int64(n), nil
}

func roundUp8(n uint64) uint64 { return (n + 7) &^ 7 }
