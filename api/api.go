// Package api defines the calls the zrep source endpoint serves: their
// names, request and response types, and the encoding of listing bodies.
// Both the server (handlers) and the client side import it; it imports
// nothing of zrep.
package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/pkg/errors"
)

// Method names served by the endpoint.
const (
	MethodListFilesystems = "ListFilesystems"
	MethodListVersions    = "ListVersions"
	MethodSend            = "Send"
)

// MethodConfirm is served by sources whose policy grants cursor_bookmarks:
// the puller confirms a snapshot it has received and verified, and the
// source keeps a bookmark of it, so that a later incremental can start
// there even when the snapshot itself was pruned. Other sources answer
// unimplemented.
const MethodConfirm = "Confirm"

// ConfirmRequest confirms that the caller holds Snapshot (with GUID) of Dataset.
type ConfirmRequest struct {
	Dataset  string `json:"dataset"`
	Snapshot string `json:"snapshot"`
	GUID     GUID   `json:"guid"`
}

// ConfirmResponse names the bookmark the source keeps for the caller.
type ConfirmResponse struct {
	Bookmark string `json:"bookmark"`
}

// Methods a pushing host serves besides those of the endpoint: the sink
// asks how to run the push, and reports its run's events back.
const (
	MethodPushOptions = "PushOptions"
	MethodReport      = "Report"
)

// PushOptionsRequest asks a pusher how it wants the push run.
type PushOptionsRequest struct{}

// PushOptions is how the pushing host wants the push run.
type PushOptions struct {
	// DryRun: the sink plans and reports, and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Raw: the pusher wants its encrypted datasets received raw.
	Raw bool `json:"raw,omitempty"`
}

// ReportRequest carries one event of the sink's run (a replication event,
// as pull --json prints it) to the pusher.
type ReportRequest struct {
	Event json.RawMessage `json:"event"`
}

// ReportResponse acknowledges a Report.
type ReportResponse struct{}

// ListFilesystemsRequest asks for the filesystems and volumes the caller
// may see.
type ListFilesystemsRequest struct {
	// WithVersions includes each dataset's snapshots (and bookmarks) in the
	// same listing, so that a puller plans a whole run with one call.
	WithVersions bool `json:"with_versions,omitempty"`
}

// ListVersionsRequest asks for the snapshots and bookmarks of one dataset.
type ListVersionsRequest struct {
	Dataset string `json:"dataset"`
}

// ListResponse announces a listing. The records follow in the body as JSON
// lines (see ReadListing); the counts let the client check that it got them all.
type ListResponse struct {
	Filesystems int `json:"filesystems"`
	Versions    int `json:"versions"`
	// Cursor is the short name of the bookmark the source keeps for the
	// caller (MethodConfirm), "zrep_cursor_<identity>"; empty from sources
	// that keep none. It is in the header, which clients read leniently,
	// and not in the listing's records, which they read strictly.
	Cursor string `json:"cursor,omitempty"`
}

// SendRequest asks for a `zfs send` stream of To, incremental from From
// when From is set. Both are full names ("pool/a@s1") of Dataset's
// snapshots (From may also be a bookmark, "pool/a#b1"). The GUIDs, when
// set, must match: they guard against a snapshot destroyed and re-created
// under the same name between listing and sending.
type SendRequest struct {
	Dataset  string `json:"dataset"`
	To       string `json:"to"`
	ToGUID   GUID   `json:"to_guid,omitempty"`
	From     string `json:"from,omitempty"`
	FromGUID GUID   `json:"from_guid,omitempty"`
	// Intermediates sends every snapshot between From and To (zfs send -I)
	// in the one stream, instead of the difference only (-i).
	Intermediates bool `json:"intermediates,omitempty"`
	// ResumeToken resumes a cut transfer: the target's
	// receive_resume_token. It says what to send, so {"dataset": D,
	// "resume_token": T} is a complete request, and To, From and
	// Intermediates must be empty. The source checks every field of the
	// token against its policy and its zfs before anything runs.
	ResumeToken string `json:"resume_token,omitempty"`
	// Raw asks for an encrypted dataset as it is on disk, ciphertext (zfs
	// send -w); the receiver never needs its key. Sources whose policy says
	// raw_only send encrypted datasets only this way.
	Raw bool `json:"raw,omitempty"`
	// LargeBlocks, Embedded and Compressed ask for zfs send -L, -e and -c;
	// a source applies those its zfs has.
	LargeBlocks bool `json:"large_blocks,omitempty"`
	Embedded    bool `json:"embedded,omitempty"`
	Compressed  bool `json:"compressed,omitempty"`
}

// SendResponse describes the stream that follows as the body.
type SendResponse struct {
	To   Version  `json:"to"`
	From *Version `json:"from,omitempty"`
	// EstimatedBytes is the stream's size from a dry run of zfs send, for
	// progress and ETA; 0 when the source's zfs cannot tell.
	EstimatedBytes int64 `json:"estimated_bytes,omitempty"`
}

// Filesystem is a filesystem or volume.
type Filesystem struct {
	Name string `json:"name"`
	Type string `json:"type"` // "filesystem" or "volume"
	// Encrypted: the dataset is encrypted on the source; a receiver that
	// must not see its plaintext asks for it raw.
	Encrypted bool `json:"encrypted,omitempty"`
	// Versions is filled by the client from the listing's version records.
	Versions []Version `json:"versions,omitempty"`
}

// Version is a snapshot or a bookmark.
type Version struct {
	Name      string    `json:"name"` // "pool/a@s1" or "pool/a#b1"
	Type      string    `json:"type"` // "snapshot" or "bookmark"
	GUID      GUID      `json:"guid"`
	CreateTXG uint64    `json:"createtxg"`
	Creation  time.Time `json:"creation"`
	// Cursor: the bookmark is the caller's own cursor (MethodConfirm), so
	// that a puller confirms a snapshot unless its cursor is there already,
	// whatever other bookmarks share the snapshot's guid. Not on the wire:
	// ReadListing sets it from ListResponse.Cursor.
	Cursor bool `json:"-"`
}

// Version types.
const (
	TypeSnapshot = "snapshot"
	TypeBookmark = "bookmark"
)

// GUID is a ZFS guid. It travels as a decimal string: it is a 64-bit
// number, beyond what JSON numbers carry exactly.
type GUID uint64

// String returns the guid in decimal.
func (g GUID) String() string { return strconv.FormatUint(uint64(g), 10) }

// MarshalJSON encodes the guid as a decimal string.
func (g GUID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + g.String() + `"`), nil
}

// UnmarshalJSON decodes a decimal string.
func (g *GUID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.Errorf("guid must be a decimal string, got %.64q", b)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.Errorf("guid %.64q is not a 64-bit decimal number", s)
	}
	*g = GUID(v)
	return nil
}
