package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/pkg/errors"
)

// MaxRecordBytes bounds one line of a listing body, not counting its
// newline.
const MaxRecordBytes = 64 << 10

// MaxListingRecords bounds the records one listing may announce, so that a
// source cannot make a puller hold an unbounded listing in memory (the
// puller does not trust the source). Ten million snapshots is far beyond
// what zfs itself handles well.
const MaxListingRecords = 10_000_000

// maxCursorName bounds ListResponse.Cursor: a bookmark's short name is
// shorter than a dataset name (255 bytes).
const maxCursorName = 255

// record is one line of a listing body: a filesystem, or a version of the
// filesystem on the line before it (ListFilesystems), or, before the first
// filesystem, a loose version (ListVersions: of the requested dataset).
type record struct {
	Filesystem *fsRecord `json:"filesystem,omitempty"`
	Version    *Version  `json:"version,omitempty"`
}

// fsRecord is a Filesystem on the wire. Its versions are records of their
// own, counted in ListResponse.Versions, so it has no Versions field: a
// filesystem record carrying versions is an unknown field, not a way around
// the counts.
type fsRecord struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Encrypted bool   `json:"encrypted,omitempty"`
}

// EncodeListing renders filesystems (with their versions) and loose
// versions as a listing body, and the counts for its ListResponse. Loose
// versions come first, so that they do not read as versions of the last
// filesystem. A record longer than MaxRecordBytes, which ReadListing would
// refuse, is an error.
func EncodeListing(filesystems []Filesystem, versions []Version) ([]byte, ListResponse, error) {
	var buf bytes.Buffer
	resp := ListResponse{Filesystems: len(filesystems), Versions: len(versions)}
	put := func(rec record, name string) error {
		b, err := json.Marshal(rec)
		if err != nil {
			return errors.Wrapf(err, "encoding %s", name)
		}
		if len(b) > MaxRecordBytes {
			return errors.Errorf("encoding %.64q...: record of %d bytes exceeds the limit of %d", name, len(b), MaxRecordBytes)
		}
		buf.Write(b)
		buf.WriteByte('\n')
		return nil
	}
	for i := range versions {
		if err := put(record{Version: &versions[i]}, versions[i].Name); err != nil {
			return nil, resp, err
		}
	}
	for i := range filesystems {
		fs := &filesystems[i]
		if err := put(record{Filesystem: &fsRecord{Name: fs.Name, Type: fs.Type, Encrypted: fs.Encrypted}}, fs.Name); err != nil {
			return nil, resp, err
		}
		for j := range fs.Versions {
			if err := put(record{Version: &fs.Versions[j]}, fs.Versions[j].Name); err != nil {
				return nil, resp, err
			}
		}
		resp.Versions += len(fs.Versions)
	}
	return buf.Bytes(), resp, nil
}

// ReadListing decodes a listing body: versions that follow no filesystem
// (ListVersions), and filesystems with the versions that follow each. It
// checks the counts announced in resp, so a listing cut short (or too long)
// is an error, and bounds every line to MaxRecordBytes. Each line holds
// exactly one JSON object, with no unknown fields.
func ReadListing(r io.Reader, resp ListResponse) ([]Filesystem, []Version, error) {
	if resp.Filesystems < 0 || resp.Versions < 0 || resp.Filesystems+resp.Versions > MaxListingRecords {
		return nil, nil, errors.Errorf("the server announced %d filesystems and %d versions: a listing holds 0 to %d records",
			resp.Filesystems, resp.Versions, MaxListingRecords)
	}
	if len(resp.Cursor) > maxCursorName || strings.ContainsAny(resp.Cursor, "/@#") {
		return nil, nil, errors.Errorf("the server announced the cursor bookmark %.64q, not a bookmark's short name", resp.Cursor)
	}
	cursorSuffix := "#" + resp.Cursor
	sc := bufio.NewScanner(r)
	// Room for a line of MaxRecordBytes with its "\r\n"; a longer line is
	// refused below, or by the scanner.
	sc.Buffer(make([]byte, 0, 4096), MaxRecordBytes+2)
	var (
		filesystems []Filesystem
		loose       []Version
		nVersions   int
	)
	counts := func() error {
		return errors.Errorf("listing has %d filesystems and %d versions, the server announced %d and %d",
			len(filesystems), nVersions, resp.Filesystems, resp.Versions)
	}
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) > MaxRecordBytes {
			return nil, nil, errors.Errorf("listing line %d is longer than %d bytes", line, MaxRecordBytes)
		}
		var rec record
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, nil, errors.Wrapf(err, "listing line %d", line)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, nil, errors.Errorf("listing line %d holds more than one JSON value", line)
		}
		switch {
		case rec.Filesystem != nil && rec.Version == nil:
			filesystems = append(filesystems, Filesystem{Name: rec.Filesystem.Name, Type: rec.Filesystem.Type, Encrypted: rec.Filesystem.Encrypted})
			if len(filesystems) > resp.Filesystems {
				return nil, nil, counts()
			}
		case rec.Version != nil && rec.Filesystem == nil:
			rec.Version.Cursor = resp.Cursor != "" && rec.Version.Type == TypeBookmark && strings.HasSuffix(rec.Version.Name, cursorSuffix)
			nVersions++
			if nVersions > resp.Versions {
				return nil, nil, counts()
			}
			if n := len(filesystems); n > 0 {
				filesystems[n-1].Versions = append(filesystems[n-1].Versions, *rec.Version)
			} else {
				loose = append(loose, *rec.Version)
			}
		default:
			return nil, nil, errors.Errorf("listing line %d holds neither one filesystem nor one version", line)
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, nil, errors.Errorf("listing line %d is longer than %d bytes", line+1, MaxRecordBytes)
		}
		return nil, nil, errors.Wrapf(err, "listing after line %d", line)
	}
	if len(filesystems) != resp.Filesystems || nVersions != resp.Versions {
		return nil, nil, counts()
	}
	return filesystems, loose, nil
}
