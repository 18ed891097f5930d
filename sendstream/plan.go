package sendstream

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/internal/printable"
)

// Plan describes the stream a receiver asked a sender for: the snapshots it
// must create, in order, and nothing else. Plan.Expect returns the Checker
// that holds a stream to it.
type Plan struct {
	// Dataset is the sending dataset; each substream's name must be
	// Dataset@snapshot.
	Dataset string
	// Objset is the dataset's type; ObjsetNone accepts a file system or a volume.
	Objset ObjsetType
	// FromGUID is the guid of the incremental base (a snapshot or a
	// bookmark); 0 for a full stream.
	FromGUID uint64
	// FromSnapshot is the base's short name ("s1"), which a compound
	// header may name as its fromsnap.
	FromSnapshot string
	// Snapshots are the snapshots the stream creates, oldest first. A plain
	// stream (full or zfs send -i) creates one.
	Snapshots []Snapshot
	// Intermediates: the stream is a zfs send -I stream, a compound stream
	// whose header carries no more than the names of both ends.
	Intermediates bool
	// Resuming: the stream continues a cut transfer (zfs send -t). Its one
	// substream must have the resuming feature, and its BEGIN payload may
	// say where it resumes, and nothing else.
	Resuming bool
	// Raw: the stream is an encrypted dataset sent raw (zfs send -w): each
	// substream must have the raw feature, and may carry its keys
	// (crypt_keydata, still wrapped) in its BEGIN payload. Without Raw, a
	// raw stream is refused.
	Raw bool
}

// Snapshot is a snapshot a stream creates.
type Snapshot struct {
	Name string // the short name, after the "@"
	GUID uint64
}

// UnplannedError says that a stream is well-formed but is not the stream
// the receiver asked for.
type UnplannedError struct {
	Offset int64 // where the record that differs starts
	Msg    string
}

func (e *UnplannedError) Error() string {
	return fmt.Sprintf("%s (at byte %d of the stream)", e.Msg, e.Offset)
}

func unplanned(b *Begin, format string, args ...any) error {
	return &UnplannedError{Offset: b.Offset, Msg: fmt.Sprintf(format, args...)}
}

// substreamFeatures are the feature flags a planned substream may carry:
// those any zfs send may set by itself or with -L, -e, -c. Dedup
// (WRITE_BYREF records, removed from OpenZFS 2.0), raw, resuming, redacted
// and holds streams are only ever sent when asked for, and zrep does not
// ask for them here.
const substreamFeatures = FeatureSASpill | FeatureEmbedData | FeatureLZ4 | FeatureLargeBlocks |
	FeatureCompressed | FeatureLargeDnode | FeatureZstd | FeatureSwitchToLargeBlocks |
	FeatureLongName | FeatureLargeMicrozap

// resumePayloadKeys are the names a resuming substream's BEGIN payload may
// hold: where the stream resumes (BEGINNV_RESUME_OBJECT and _OFFSET).
var resumePayloadKeys = map[string]bool{"resume_object": true, "resume_offset": true}

// headerFeatures are those a -I stream's compound header may carry.
const headerFeatures = FeatureSASpill

// headerKeys are the names a -I stream's header nvlist may hold (OpenZFS and
// zfs-fuse send none for -I without -R or -p; they are what an older libzfs
// wrote). "fss", the file systems with their properties, snapshots and
// holds, is what makes zfs receive set properties, rename, promote and
// destroy: never accepted.
var headerKeys = map[string]bool{"fromsnap": true, "tosnap": true, "not_recursive": true}

// Expectation checks a stream against a Plan, one BEGIN record at a time.
type Expectation struct {
	plan   Plan
	header bool // the compound header was seen
	next   int  // index of the next substream in plan.Snapshots
}

// Expect returns a fresh Expectation of p; its Check method is the Checker.
func (p Plan) Expect() *Expectation { return &Expectation{plan: p} }

// Check accepts b only if it is the next BEGIN the plan expects.
func (e *Expectation) Check(b *Begin) error {
	p := &e.plan
	if b.Compound() {
		return e.checkHeader(b)
	}
	if p.Intermediates && !e.header {
		return unplanned(b, "a plain stream of %s where a zfs send -I stream was asked for", b.ToName)
	}
	if e.next >= len(p.Snapshots) {
		return unplanned(b, "a stream of %s after the %d snapshot(s) asked for", b.ToName, len(p.Snapshots))
	}
	want := p.Snapshots[e.next]
	from := p.FromGUID
	if e.next > 0 {
		from = p.Snapshots[e.next-1].GUID
	}
	wantName := p.Dataset + "@" + want.Name
	switch {
	case b.ToName != wantName:
		return unplanned(b, "a stream of %s where %s was asked for", b.ToName, wantName)
	case b.ToGUID != want.GUID:
		return unplanned(b, "a stream of %s with guid %d where guid %d was asked for", b.ToName, b.ToGUID, want.GUID)
	case b.FromGUID != from && from == 0:
		return unplanned(b, "an incremental stream of %s (from guid %d) where a full stream was asked for", b.ToName, b.FromGUID)
	case b.FromGUID != from && b.FromGUID == 0:
		return unplanned(b, "a full stream of %s where an incremental one from guid %d was asked for", b.ToName, from)
	case b.FromGUID != from:
		return unplanned(b, "a stream of %s incremental from guid %d where the base asked for has guid %d", b.ToName, b.FromGUID, from)
	case b.Flags&FlagClone != 0:
		return unplanned(b, "a clone stream of %s (incremental from another dataset)", b.ToName)
	case p.Objset != ObjsetNone && b.ObjsetType != p.Objset:
		return unplanned(b, "a stream of a %s where a %s was asked for", b.ObjsetType, p.Objset)
	case b.ObjsetType != ObjsetFilesystem && b.ObjsetType != ObjsetVolume:
		return unplanned(b, "a stream of %s with %s", b.ToName, b.ObjsetType)
	}
	if err := e.checkFeatures(b); err != nil {
		return err
	}
	e.next++
	return nil
}

// checkFeatures checks a substream's feature flags and BEGIN payload.
func (e *Expectation) checkFeatures(b *Begin) error {
	allowed, payloadKeys := substreamFeatures, map[string]bool{}
	if e.plan.Resuming {
		if b.Features&FeatureResuming == 0 {
			return unplanned(b, "a stream of %s from its start where the rest of a cut transfer was asked for", b.ToName)
		}
		allowed |= FeatureResuming
		for k := range resumePayloadKeys {
			payloadKeys[k] = true
		}
	}
	if e.plan.Raw {
		if b.Features&FeatureRaw == 0 {
			return unplanned(b, "a plaintext stream of %s where a raw (encrypted) one was asked for", b.ToName)
		}
		allowed |= FeatureRaw
		payloadKeys["crypt_keydata"] = true
	}
	if extra := b.Features &^ allowed; extra != 0 {
		return unplanned(b, "a stream of %s with features not asked for: %s", b.ToName, extra)
	}
	if b.Payload != nil {
		for _, name := range b.Payload.Names() {
			if !payloadKeys[name] {
				return unplanned(b, "a stream of %s with parameters after its BEGIN record (%s)", b.ToName, keyList(b.Payload.Names()))
			}
		}
	}
	return nil
}

// checkHeader checks the header of a compound stream.
func (e *Expectation) checkHeader(b *Begin) error {
	p := &e.plan
	if !p.Intermediates {
		return unplanned(b, "a compound (package) stream of %s, which can carry properties, holds and other file systems, where a plain stream was asked for", b.ToName)
	}
	if len(p.Snapshots) == 0 {
		return unplanned(b, "a stream where none was asked for")
	}
	last := p.Snapshots[len(p.Snapshots)-1].Name
	wantName := p.Dataset + "@" + last
	switch {
	case b.ToName != wantName:
		return unplanned(b, "a compound stream up to %s where one up to %s was asked for", b.ToName, wantName)
	case b.ToGUID != 0 || b.FromGUID != 0:
		return unplanned(b, "a compound stream header with guids (to %d, from %d)", b.ToGUID, b.FromGUID)
	case b.Features&^headerFeatures != 0:
		return unplanned(b, "a compound stream header with features not asked for: %s", b.Features&^headerFeatures)
	}
	if b.Payload != nil {
		var extra []string
		for _, name := range b.Payload.Names() {
			if !headerKeys[name] {
				extra = append(extra, name)
			}
		}
		if len(extra) > 0 {
			return unplanned(b, "a compound stream whose header carries %s: %s", keyList(extra), describeHeader(extra))
		}
		if s, ok := b.Payload.String("tosnap"); !ok || s != last {
			return unplanned(b, "a compound stream header whose tosnap is not %q", last)
		}
		if s, ok := b.Payload.String("fromsnap"); b.Payload.Has("fromsnap") && (!ok || s != p.FromSnapshot) {
			return unplanned(b, "a compound stream header whose fromsnap is not %q", p.FromSnapshot)
		}
	}
	e.header = true
	return nil
}

// keyList names an nvlist's keys in an error. The stream chose them (any
// bytes but NUL): each is made printable and bounded, and so is the list.
func keyList(keys []string) string {
	const most = 8
	out := make([]string, 0, most+1)
	for i, k := range keys {
		if i == most {
			out = append(out, fmt.Sprintf("and %d more", len(keys)-most))
			break
		}
		out = append(out, printable.Bounded(k, 64))
	}
	return strings.Join(out, ", ")
}

// describeHeader says what the unexpected keys of a compound header do.
func describeHeader(keys []string) string {
	for _, k := range keys {
		if k == "fss" {
			return "a list of file systems with their properties, snapshots and holds (zfs send -R, -p, -h or -b), which makes zfs receive set properties, rename, promote and destroy"
		}
	}
	return "unknown contents"
}

// Complete reports an error if the stream ended before every planned
// snapshot's substream began.
func (e *Expectation) Complete() error {
	if n := len(e.plan.Snapshots); e.next < n {
		return errors.Errorf("the stream ended after %d of the %d snapshots asked for", e.next, n)
	}
	return nil
}
