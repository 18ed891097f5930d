package replication

import (
	"slices"
	"strings"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/printable"
	"github.com/zrep/zrep/sendstream"
	"github.com/zrep/zrep/zfs"
)

// What the backup host does not take from the source's stream. Every
// stream is inspected before zfs receive sees it (sendstream.Plan): it must
// be exactly the plain or -I stream asked for, so no properties, holds or
// file system lists arrive. Where the local zfs has receive -x (OpenZFS),
// the properties that could mount, share or execute something on the
// backup host are also forced to inherit, should a stream ever carry them.

// untrustedFilesystemProps are excluded (zfs receive -x) when receiving a file system.
var untrustedFilesystemProps = []string{
	"mountpoint", "canmount", "overlay", "sharenfs", "sharesmb", "exec", "setuid", "devices", "keylocation",
}

// untrustedVolumeProps are those of untrustedFilesystemProps that apply to
// volumes: zfs receive refuses -x of a property a volume does not have.
var untrustedVolumeProps = []string{"keylocation"}

// excludedProps returns the -x list for a dataset of type typ ("volume" or
// "filesystem"), or nil where the local zfs has no receive -x. A raw
// receive keeps the keys' properties as they are (zfs refuses -x of them).
// A delegated user gets none: the kernel already refuses each property it
// has no permission for, and -x would only print a warning for each.
func excludedProps(f zfs.Features, typ string, raw bool) []string {
	props := untrustedFilesystemProps
	switch {
	case !f.RecvExclude, f.Delegated:
		return nil
	case typ == string(zfs.Volume):
		props = untrustedVolumeProps
	}
	if raw {
		props = slices.DeleteFunc(slices.Clone(props), func(p string) bool { return p == "keylocation" })
	}
	if len(props) == 0 {
		return nil
	}
	return props
}

// streamPlan is the stream the step asks the source for, for sendstream to
// hold the source's answer to.
func streamPlan(dataset, typ string, raw bool, step Step) sendstream.Plan {
	p := sendstream.Plan{Dataset: dataset, Intermediates: step.Intermediates, Resuming: step.Resumed, Raw: raw}
	switch typ {
	case string(zfs.Filesystem):
		p.Objset = sendstream.ObjsetFilesystem
	case string(zfs.Volume):
		p.Objset = sendstream.ObjsetVolume
	}
	if step.From != nil {
		p.FromGUID = uint64(step.From.GUID)
		p.FromSnapshot = shortName(step.From.Name)
	}
	for _, s := range step.Snapshots {
		p.Snapshots = append(p.Snapshots, sendstream.Snapshot{Name: shortName(s.Name), GUID: uint64(s.GUID)})
	}
	return p
}

// shortName turns "pool/a@s1" into "s1" (and "pool/a#b1" into "b1").
func shortName(name string) string {
	if i := strings.IndexAny(name, "@#"); i >= 0 {
		return name[i+1:]
	}
	return name
}

// refused explains a stream the inspection stopped. received says whether
// zfs receive had already been given the part of the stream before it.
func refused(err error, received bool) error {
	what := "the source sent a stream it was not asked for"
	var fe *sendstream.FormatError
	if errors.As(err, &fe) {
		what = "the source sent a malformed stream"
	}
	leaves := "it was refused before zfs receive saw a byte of it; the target is unchanged"
	if received {
		leaves = "zfs receive was stopped before that point; snapshots of this stream received before it, each as planned, stay"
	}
	return errors.Errorf("%s: %v; %s. A source that does this is broken or compromised", what, err, leaves)
}

// isRefusal reports whether err comes from the stream inspection.
func isRefusal(err error) bool {
	var fe *sendstream.FormatError
	var ue *sendstream.UnplannedError
	return errors.As(err, &fe) || errors.As(err, &ue)
}

// lazyReceive starts zfs receive when the first byte of the stream has
// passed the inspection, so that a stream refused at its first record never
// reaches zfs at all.
type lazyReceive struct {
	start    func() (zfs.InputStream, error)
	in       zfs.InputStream
	startErr error
}

func (l *lazyReceive) Write(p []byte) (int, error) {
	if l.in == nil {
		if l.startErr != nil {
			return 0, l.startErr
		}
		if l.in, l.startErr = l.start(); l.startErr != nil {
			return 0, l.startErr
		}
	}
	return l.in.Write(p)
}

// started reports whether zfs receive was started.
func (l *lazyReceive) started() bool { return l.in != nil }

// Abort kills zfs receive, if it was started.
func (l *lazyReceive) Abort() {
	if l.in != nil {
		_ = l.in.Abort()
	}
}

// Close finishes the receive; its error says whether zfs accepted the stream.
func (l *lazyReceive) Close() error {
	if l.in == nil {
		return errors.New("the source sent an empty stream")
	}
	return l.in.Close()
}

// checkListing keeps the source's datasets whose names, types and versions
// are well-formed, and fails the others: a source (or a pusher) names what
// it has, and a name that is not a plain dataset name, or a version that is
// not of its dataset, must never reach a target's name or zfs.
func checkListing(remote []api.Filesystem) ([]api.Filesystem, []Result) {
	var ok []api.Filesystem
	var bad []Result
	for _, fs := range remote {
		if err := checkFilesystem(fs); err != nil {
			// The name is the source's and may be anything: kept printable.
			bad = append(bad, Result{Dataset: printable.Bounded(fs.Name, 300), Outcome: OutcomeFailed,
				Error: "the source listed it wrongly, and it was skipped: " + err.Error()})
			continue
		}
		ok = append(ok, fs)
	}
	return ok, bad
}

func checkFilesystem(fs api.Filesystem) error {
	if err := zfs.ValidateDatasetName(fs.Name); err != nil {
		return err
	}
	if fs.Type != string(zfs.Filesystem) && fs.Type != string(zfs.Volume) {
		return errors.Errorf("%s has type %q, neither filesystem nor volume", fs.Name, fs.Type)
	}
	for _, v := range fs.Versions {
		ds, sep, _, err := zfs.SplitVersion(v.Name)
		switch {
		case err != nil:
			return err
		case ds != fs.Name:
			return errors.Errorf("version %q listed under %s", v.Name, fs.Name)
		case sep == '@' && v.Type != api.TypeSnapshot, sep == '#' && v.Type != api.TypeBookmark:
			return errors.Errorf("version %q listed as a %s", v.Name, v.Type)
		case v.Cursor && v.Type != api.TypeBookmark:
			return errors.Errorf("snapshot %q listed as a cursor", v.Name)
		}
	}
	return nil
}
