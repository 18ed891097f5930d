package zfs

import (
	"cmp"
	"strings"
	"time"
)

// DatasetType is the value of zfs's "type" property.
type DatasetType string

// The dataset types zrep deals with.
const (
	Filesystem DatasetType = "filesystem"
	Volume     DatasetType = "volume"
	Snapshot   DatasetType = "snapshot"
	Bookmark   DatasetType = "bookmark"
)

// Dataset is a filesystem or volume.
type Dataset struct {
	Name string
	Type DatasetType // Filesystem or Volume
	// Encrypted: the dataset is encrypted (known from ListTree where zfs
	// has encryption; false otherwise).
	Encrypted bool
	// EncryptionRoot names the dataset whose key unlocks this one, itself
	// or an ancestor ("" when it is not encrypted; known from ListTree where
	// zfs has encryption). A dataset received raw is its own, until
	// zfs change-key -i makes it inherit its parent's; one received
	// decrypted into an encrypted parent has the parent's.
	EncryptionRoot string
	// ResumeToken is the receive_resume_token a cut resumable receive
	// left (known from ListTree where zfs has resumable receives; "" if
	// none).
	ResumeToken string
}

// Version is a snapshot or bookmark: a point in a dataset's history.
type Version struct {
	Name      string      // full name, "pool/a@s1" or "pool/a#b1"
	Type      DatasetType // Snapshot or Bookmark
	GUID      uint64
	CreateTXG uint64
	Creation  time.Time // UTC, second precision
}

// Dataset returns the name of the dataset the version belongs to, "pool/a".
func (v Version) Dataset() string {
	ds, _ := splitVersionName(v.Name)
	return ds
}

// ShortName returns the part after '@' or '#', "s1".
func (v Version) ShortName() string {
	_, short := splitVersionName(v.Name)
	return short
}

// DatasetVersions is a dataset with its versions, sorted by CreateTXG, then name.
type DatasetVersions struct {
	Dataset
	Versions []Version
}

// compareVersions orders versions by CreateTXG, then name.
func compareVersions(a, b Version) int {
	if c := cmp.Compare(a.CreateTXG, b.CreateTXG); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}
