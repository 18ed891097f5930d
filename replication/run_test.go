package replication

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/errors"

	"github.com/zrep/zrep/api"
	"github.com/zrep/zrep/internal/bwlimit"
	"github.com/zrep/zrep/nvlist"
	"github.com/zrep/zrep/resumetoken"
	"github.com/zrep/zrep/rpc"
	"github.com/zrep/zrep/sendstream"
	"github.com/zrep/zrep/sendstream/streamtest"
	"github.com/zrep/zrep/zfs"
)

// The fakes: a source that lists from a table and sends small synthetic
// send streams (streamtest), and a target that behaves like a tiny
// in-memory zfs. The target reads the BEGIN records of what it received
// when the receive is closed, and applies them only if the whole stream
// arrived.

// streamSnap is a snapshot a received stream carries.
type streamSnap struct {
	Name string // short name, "s1"
	GUID uint64
}

// fakeSource is a Source answering from fss. Behaviours are keyed by the
// requested To snapshot ("tank/a@s3").
type fakeSource struct {
	mu        sync.Mutex
	fss       []api.Filesystem
	listErr   error
	payload   int                 // filler bytes per stream
	sendErr   map[string]error    // Send fails with this error
	cutAfter  map[string]int      // the stream fails after this many bytes...
	cutErr    map[string]error    // ...with this error
	wrongGUID map[string]api.GUID // the response claims this To guid
	forge     map[string][]byte   // the stream sent instead of the one asked for
	cursors   bool                // Confirm is served
	confirms  []string            // "tank/a@s3=13" for each Confirm
	lists     int
	sends     []api.SendRequest
	streams   []*fakeStream
}

func newFakeSource(fss ...api.Filesystem) *fakeSource {
	return &fakeSource{fss: fss, payload: 1000, sendErr: map[string]error{}, cutAfter: map[string]int{},
		cutErr: map[string]error{}, wrongGUID: map[string]api.GUID{}, forge: map[string][]byte{}}
}

func (s *fakeSource) ListFilesystems(ctx context.Context, withVersions bool) ([]api.Filesystem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	if !withVersions {
		return nil, errors.New("fake source: Run must list with versions")
	}
	if s.listErr != nil {
		return nil, s.listErr
	}
	return append([]api.Filesystem(nil), s.fss...), nil
}

func (s *fakeSource) Send(ctx context.Context, req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends = append(s.sends, req)
	if req.ResumeToken != "" {
		return s.resume(req)
	}
	if err := s.sendErr[req.To]; err != nil {
		return nil, nil, err
	}
	var fs *api.Filesystem
	for i := range s.fss {
		if s.fss[i].Name == req.Dataset {
			fs = &s.fss[i]
		}
	}
	if fs == nil {
		return nil, nil, rpc.Errorf(rpc.CodeNotFound, "dataset %q does not exist", req.Dataset)
	}
	find := func(name string, guid api.GUID) (*api.Version, error) {
		for _, v := range fs.Versions {
			if v.Name == name && (guid == 0 || v.GUID == guid) {
				return &v, nil
			}
		}
		return nil, rpc.Errorf(rpc.CodeNotFound, "%s with guid %s does not exist", name, guid)
	}
	to, err := find(req.To, req.ToGUID)
	if err != nil {
		return nil, nil, err
	}
	carried := []api.Version{*to}
	var from *api.Version
	if req.From != "" {
		if from, err = find(req.From, req.FromGUID); err != nil {
			return nil, nil, err
		}
		if req.Intermediates {
			carried = nil
			for _, v := range sourceSnapshots(fs.Versions) {
				if v.CreateTXG > from.CreateTXG && v.CreateTXG <= to.CreateTXG {
					carried = append(carried, v)
				}
			}
		}
	}
	var snaps []streamtest.Snap
	for _, v := range carried {
		snaps = append(snaps, streamtest.Snap{Name: shortName(v.Name), GUID: uint64(v.GUID)})
	}
	var fromGUID uint64
	if from != nil {
		fromGUID = uint64(from.GUID)
	}
	spec := streamtest.Spec{Objset: streamtest.Filesystem, Dataset: req.Dataset, FromGUID: fromGUID, Snaps: snaps,
		Intermediates: req.Intermediates, Size: s.payload}
	if fs.Type == string(zfs.Volume) {
		spec.Objset = streamtest.Volume
	}
	if req.Raw && fs.Encrypted {
		spec.Features, spec.Payload = uint32(sendstream.FeatureRaw), rawKeys
	}
	data := spec.Bytes()
	if forged, ok := s.forge[req.To]; ok {
		data = forged
	}
	st := &fakeStream{to: req.To, data: data, cutAfter: -1}
	if n, ok := s.cutAfter[req.To]; ok {
		st.cutAfter, st.cutErr = n, s.cutErr[req.To]
	}
	s.streams = append(s.streams, st)
	resp := &api.SendResponse{To: *to, From: from, EstimatedBytes: int64(len(data))}
	if g, ok := s.wrongGUID[req.To]; ok {
		resp.To.GUID = g
	}
	return resp, st, nil
}

// rawKeys is the BEGIN payload of a raw substream: the dataset's wrapped keys.
var rawKeys = func() []byte {
	b, err := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: []nvlist.Pair{{Name: "crypt_keydata", Type: nvlist.NVList,
		Value: &nvlist.List{Flags: 1, Pairs: []nvlist.Pair{{Name: "DSL_CRYPTO_SUITE", Type: nvlist.Uint64, Value: uint64(8)}}}}}}, nvlist.Native)
	if err != nil {
		panic(err)
	}
	return b
}()

// Confirm records confirmations; with cursors off it answers as a source
// without cursor_bookmarks does.
func (s *fakeSource) Confirm(ctx context.Context, req api.ConfirmRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.confirms = append(s.confirms, req.Snapshot+"="+req.GUID.String())
	if !s.cursors {
		return rpc.Errorf(rpc.CodeUnimplemented, "unknown method %q", api.MethodConfirm)
	}
	return nil
}

// resume answers a resume request as a source does: the rest of the
// snapshot the token names, if it is there with that guid.
func (s *fakeSource) resume(req api.SendRequest) (*api.SendResponse, io.ReadCloser, error) {
	tok, err := resumetoken.Decode(req.ResumeToken)
	if err != nil {
		return nil, nil, rpc.Errorf(rpc.CodeInvalidArgument, "resume token: %v", err)
	}
	if err := s.sendErr[tok.ToName]; err != nil {
		return nil, nil, err
	}
	for _, fs := range s.fss {
		for _, v := range fs.Versions {
			if v.Name != tok.ToName || uint64(v.GUID) != tok.ToGUID {
				continue
			}
			where, _ := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: []nvlist.Pair{
				{Name: "resume_object", Type: nvlist.Uint64, Value: tok.Object},
				{Name: "resume_offset", Type: nvlist.Uint64, Value: tok.Offset}}}, nvlist.Native)
			data := streamtest.New().Begin(streamtest.Begin{HeaderType: streamtest.Substream, Features: 1 << 20, Objset: streamtest.Filesystem,
				ToGUID: tok.ToGUID, FromGUID: tok.FromGUID, ToName: tok.ToName, Payload: where}).Write(s.payload).End().Bytes()
			st := &fakeStream{to: tok.ToName, data: data, cutAfter: -1}
			s.streams = append(s.streams, st)
			return &api.SendResponse{To: v}, st, nil
		}
	}
	return nil, nil, rpc.Errorf(rpc.CodeNotFound, "%q does not exist", tok.ToName)
}

// served is how many bytes the streams of dataset delivered.
func (s *fakeSource) served(dataset string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, st := range s.streams {
		if strings.HasPrefix(st.to, dataset+"@") {
			n += int64(st.off)
		}
	}
	return n
}

// fakeStream is a Send body; with cutAfter >= 0 it fails after that many bytes.
type fakeStream struct {
	to       string
	data     []byte
	off      int
	cutAfter int
	cutErr   error
	closed   int
}

func (s *fakeStream) Read(p []byte) (int, error) {
	end := len(s.data)
	if s.cutAfter >= 0 && s.cutAfter < end {
		end = s.cutAfter
	}
	if s.off >= end {
		if end < len(s.data) {
			return 0, s.cutErr
		}
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:end])
	s.off += n
	return n, nil
}

func (s *fakeStream) Close() error { s.closed++; return nil }

// fakeDataset is a filesystem of the fake target.
type fakeDataset struct {
	mountpoint string // "none" for placeholders
	snaps      []zfs.Version
}

// fakeTarget is a Target keeping datasets in memory.
type fakeTarget struct {
	mu        sync.Mutex
	features  zfs.Features
	ds        map[string]*fakeDataset
	txg       uint64
	closeErr  map[string]error  // target dataset -> what Close (zfs recv) fails with
	writeErr  map[string]error  // target dataset -> what Write (zfs recv exiting early) fails with
	tokens    map[string]string // target dataset -> its receive_resume_token
	encrypted map[string]bool   // target dataset -> listed as encrypted
	keyRoot   map[string]string // target dataset -> its encryption root
	mangle    map[string]uint64 // received snapshot (full name) -> the guid recorded instead
	drop      map[string]bool   // received snapshot (full name) not recorded
	abortErr  error             // what AbortResume (zfs receive -A) fails with
	calls     []string
	recvs     []*fakeRecv
}

// newFakeTarget makes a target holding the given datasets with their
// snapshots (pool included: "backup": nil).
func newFakeTarget(datasets map[string][]zfs.Version) *fakeTarget {
	t := &fakeTarget{features: zfs.Features{RecvUnmounted: true}, ds: map[string]*fakeDataset{}, txg: 1000,
		closeErr: map[string]error{}, writeErr: map[string]error{}, tokens: map[string]string{}, encrypted: map[string]bool{}, keyRoot: map[string]string{}, mangle: map[string]uint64{}, drop: map[string]bool{}}
	for name, snaps := range datasets {
		t.ds[name] = &fakeDataset{snaps: append([]zfs.Version(nil), snaps...)}
	}
	return t
}

func (t *fakeTarget) record(format string, args ...any) {
	t.calls = append(t.calls, fmt.Sprintf(format, args...))
}

func (t *fakeTarget) Features(ctx context.Context) (zfs.Features, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("Features")
	return t.features, nil
}

func (t *fakeTarget) ListTree(ctx context.Context, top string) ([]zfs.DatasetVersions, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("ListTree %s", top)
	if t.ds[top] == nil {
		return nil, fmt.Errorf("listing %s: %w", top, zfs.ErrNotFound)
	}
	var out []zfs.DatasetVersions
	for name, d := range t.ds {
		if name == top || strings.HasPrefix(name, top+"/") {
			out = append(out, zfs.DatasetVersions{Dataset: zfs.Dataset{Name: name, Type: zfs.Filesystem, Encrypted: t.encrypted[name], EncryptionRoot: t.keyRoot[name], ResumeToken: t.tokens[name]},
				Versions: append([]zfs.Version(nil), d.snaps...)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *fakeTarget) ListVersions(ctx context.Context, dataset string) ([]zfs.Version, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("ListVersions %s", dataset)
	d := t.ds[dataset]
	if d == nil {
		return nil, fmt.Errorf("listing %s: %w", dataset, zfs.ErrNotFound)
	}
	return append([]zfs.Version(nil), d.snaps...), nil
}

func (t *fakeTarget) Exists(ctx context.Context, name string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("Exists %s", name)
	ds, _, isSnap := strings.Cut(name, "@")
	d := t.ds[ds]
	if d == nil || !isSnap {
		return d != nil, nil
	}
	return t.snapIndex(d, name) >= 0, nil
}

func (t *fakeTarget) CreatePlaceholder(ctx context.Context, dataset string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("CreatePlaceholder %s", dataset)
	if t.ds[dataset] != nil {
		return fmt.Errorf("fake zfs: %s already exists", dataset)
	}
	if i := strings.LastIndexByte(dataset, '/'); i < 0 || t.ds[dataset[:i]] == nil {
		return fmt.Errorf("fake zfs: the parent of %s does not exist", dataset)
	}
	t.ds[dataset] = &fakeDataset{mountpoint: "none"}
	return nil
}

func (t *fakeTarget) Recv(ctx context.Context, o zfs.RecvOptions) (zfs.InputStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("Recv %s force=%v unmounted=%v", o.Target, o.Force, o.Unmounted)
	if o.Unmounted && !t.features.RecvUnmounted {
		return nil, errors.Wrap(zfs.ErrUnsupported, "zfs receive -u")
	}
	r := &fakeRecv{t: t, opts: o}
	t.recvs = append(t.recvs, r)
	return r, nil
}

// AbortResume drops the token, and a partly received new dataset with it.
func (t *fakeTarget) AbortResume(ctx context.Context, dataset string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("AbortResume %s", dataset)
	if t.abortErr != nil {
		return t.abortErr
	}
	if _, ok := t.tokens[dataset]; !ok {
		return fmt.Errorf("fake zfs: %s has no resume token", dataset)
	}
	delete(t.tokens, dataset)
	if d := t.ds[dataset]; d != nil && t.snapCount(d) == 0 {
		delete(t.ds, dataset)
	}
	return nil
}

func (t *fakeTarget) Rollback(ctx context.Context, snapshot string, destroyNewer bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("Rollback %s %v", snapshot, destroyNewer)
	ds, _, _ := strings.Cut(snapshot, "@")
	d := t.ds[ds]
	if d == nil || t.snapIndex(d, snapshot) < 0 {
		return fmt.Errorf("fake zfs: %s: %w", snapshot, zfs.ErrNotFound)
	}
	i := t.snapIndex(d, snapshot)
	if i < len(d.snaps)-1 && !destroyNewer {
		return fmt.Errorf("fake zfs: %s is not the most recent snapshot", snapshot)
	}
	d.snaps = d.snaps[:i+1]
	return nil
}

func (t *fakeTarget) DestroySnapshot(ctx context.Context, snapshot string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record("DestroySnapshot %s", snapshot)
	ds, _, _ := strings.Cut(snapshot, "@")
	d := t.ds[ds]
	if d == nil || t.snapIndex(d, snapshot) < 0 {
		return fmt.Errorf("fake zfs: %s: %w", snapshot, zfs.ErrNotFound)
	}
	i := t.snapIndex(d, snapshot)
	d.snaps = append(d.snaps[:i:i], d.snaps[i+1:]...)
	return nil
}

func (t *fakeTarget) snapIndex(d *fakeDataset, name string) int {
	for i, s := range d.snaps {
		if s.Name == name && s.Type == zfs.Snapshot {
			return i
		}
	}
	return -1
}

func (t *fakeTarget) snapCount(d *fakeDataset) int {
	n := 0
	for _, s := range d.snaps {
		if s.Type == zfs.Snapshot {
			n++
		}
	}
	return n
}

// receive applies a whole stream to o.Target, like zfs recv.
func (t *fakeTarget) receive(o zfs.RecvOptions, stream []byte) error {
	fail := func(format string, args ...any) error {
		return &zfs.CommandError{Args: []string{"receive", o.Target}, ExitCode: 1, Stderr: fmt.Sprintf(format, args...)}
	}
	var hdr struct {
		FromGUID uint64 // of the first substream: 0 for a full stream
		Snaps    []streamSnap
		Resuming bool
	}
	rd := sendstream.NewReader(bytes.NewReader(stream), func(b *sendstream.Begin) error {
		if !b.Compound() {
			if len(hdr.Snaps) == 0 {
				hdr.FromGUID = b.FromGUID
				hdr.Resuming = b.Features&sendstream.FeatureResuming != 0
			}
			hdr.Snaps = append(hdr.Snaps, streamSnap{Name: b.Snapshot(), GUID: b.ToGUID})
		}
		return nil
	})
	if _, err := io.Copy(io.Discard, rd); err != nil || len(hdr.Snaps) == 0 {
		return fail("cannot receive: invalid stream")
	}
	d := t.ds[o.Target]
	if hdr.Resuming {
		if _, ok := t.tokens[o.Target]; !ok {
			return fail("cannot resume: %s has no partially received state", o.Target)
		}
		delete(t.tokens, o.Target)
		if hdr.FromGUID == 0 && d != nil { // the partly received new dataset, now whole
			for _, sn := range hdr.Snaps {
				t.txg++
				d.snaps = append(d.snaps, zfs.Version{Name: o.Target + "@" + sn.Name, Type: zfs.Snapshot, GUID: sn.GUID, CreateTXG: t.txg})
			}
			return nil
		}
	}
	switch {
	case hdr.FromGUID == 0 && d == nil:
		if i := strings.LastIndexByte(o.Target, '/'); i < 0 || t.ds[o.Target[:i]] == nil {
			return fail("cannot receive new filesystem stream: parent of %s does not exist", o.Target)
		}
		d = &fakeDataset{}
		t.ds[o.Target] = d
	case hdr.FromGUID == 0 && !o.Force:
		return fail("cannot receive new filesystem stream: destination '%s' exists\nmust specify -F to overwrite it", o.Target)
	case hdr.FromGUID == 0 && t.snapCount(d) > 0:
		return fail("cannot receive new filesystem stream: destination has snapshots")
	case hdr.FromGUID == 0:
		// -F into an existing dataset without snapshots: overwritten.
	case d == nil:
		return fail("cannot receive incremental stream: destination '%s' does not exist", o.Target)
	default:
		base, newest := -1, -1
		for i, s := range d.snaps {
			if s.Type == zfs.Snapshot {
				newest = i
				if s.GUID == hdr.FromGUID {
					base = i
				}
			}
		}
		if base < 0 || (base != newest && !o.Force) {
			return fail("cannot receive incremental stream: most recent snapshot of %s does not match incremental source", o.Target)
		}
		// -F rolls back to the base: later snapshots go, bookmarks stay.
		kept := d.snaps[: base+1 : base+1]
		for _, s := range d.snaps[base+1:] {
			if s.Type != zfs.Snapshot {
				kept = append(kept, s)
			}
		}
		d.snaps = kept
	}
	for _, s := range hdr.Snaps {
		name := o.Target + "@" + s.Name
		if t.drop[name] {
			continue
		}
		guid := s.GUID
		if g, ok := t.mangle[name]; ok {
			guid = g
		}
		t.txg++
		d.snaps = append(d.snaps, zfs.Version{Name: name, Type: zfs.Snapshot, GUID: guid, CreateTXG: t.txg})
	}
	return nil
}

// state describes the target: every dataset with its snapshots, e.g.
// "backup/host1/tank/a: s1=11 s2=12", and " (mountpoint=none)" for placeholders.
func (t *fakeTarget) state() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var names []string
	for name := range t.ds {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, name := range names {
		d := t.ds[name]
		s := name + ":"
		for _, v := range d.snaps {
			s += fmt.Sprintf(" %s=%d", v.ShortName(), v.GUID)
		}
		if d.mountpoint != "" {
			s += " (mountpoint=" + d.mountpoint + ")"
		}
		out = append(out, s)
	}
	return out
}

// callsTo returns the recorded calls of one method, e.g. "Recv".
func (t *fakeTarget) callsTo(method string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, c := range t.calls {
		if c == method || strings.HasPrefix(c, method+" ") {
			out = append(out, c)
		}
	}
	return out
}

// fakeRecv is a zfs recv's stdin: it buffers, and receives on Close.
type fakeRecv struct {
	t        *fakeTarget
	opts     zfs.RecvOptions
	buf      bytes.Buffer
	closed   int
	aborted  int
	received bool // Close succeeded
}

func (r *fakeRecv) Write(p []byte) (int, error) {
	if r.closed > 0 || r.aborted > 0 {
		return 0, errors.New("fake recv: write after Close or Abort")
	}
	if err := r.t.writeErr[r.opts.Target]; err != nil {
		return 0, err
	}
	return r.buf.Write(p)
}

func (r *fakeRecv) Close() error {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	r.closed++
	if r.aborted > 0 {
		return errors.New("fake recv: Close after Abort")
	}
	if err := r.t.closeErr[r.opts.Target]; err != nil {
		return err
	}
	if err := r.t.receive(r.opts, r.buf.Bytes()); err != nil {
		return err
	}
	r.received = true
	return nil
}

func (r *fakeRecv) Abort() error {
	r.t.mu.Lock()
	defer r.t.mu.Unlock()
	r.aborted++
	r.buf.Reset()
	return nil
}

// eventLog is a Reporter keeping every event.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) Report(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// types lists the event types in order, without progress events.
func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		if ev.Type == EventProgress {
			continue
		}
		s := string(ev.Type)
		if ev.Dataset != "" {
			s += " " + ev.Dataset
		}
		out = append(out, s)
	}
	return out
}

func (l *eventLog) count(typ EventType) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// sendString describes a Send request compactly: "tank/a @s1=11" for a
// full stream, "tank/a @s1=11 -I @s3=13" for an incremental one. Names
// outside the dataset are printed in full, so that they show as a mismatch.
func sendString(req api.SendRequest) string {
	name := func(n string) string {
		if strings.HasPrefix(n, req.Dataset+"@") || strings.HasPrefix(n, req.Dataset+"#") {
			return short(n)
		}
		return n
	}
	if req.From == "" {
		if req.Intermediates {
			return fmt.Sprintf("%s -I %s=%d (no From)", req.Dataset, name(req.To), req.ToGUID)
		}
		return fmt.Sprintf("%s %s=%d", req.Dataset, name(req.To), req.ToGUID)
	}
	flag := "-i"
	if req.Intermediates {
		flag = "-I"
	}
	return fmt.Sprintf("%s %s=%d %s %s=%d", req.Dataset, name(req.From), req.FromGUID, flag, name(req.To), req.ToGUID)
}

func fsys(name string, versions ...api.Version) api.Filesystem {
	return api.Filesystem{Name: name, Type: "filesystem", Versions: versions}
}

// wantResult is a Result as the tables write it; Target is Root/Dataset.
type wantResult struct {
	dataset   string
	outcome   Outcome
	snapshots int
	errs      []string // substrings of Result.Error; none means no error
}

// runRoot is the Root of the runs under test.
const runRoot = "backup/host1"

func TestRun(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	b1, b2 := snap("tank/b", "s1", 21, 10), snap("tank/b", "s2", 22, 20)
	const ta, tb = runRoot + "/tank/a", runRoot + "/tank/b"
	peerGone := errors.New("peer closed the connection")
	recvErr := &zfs.CommandError{Args: []string{"receive", "-u", ta}, ExitCode: 1,
		Stderr: "cannot receive incremental stream: destination " + ta + " has been modified since most recent snapshot"}

	tests := []struct {
		name   string
		source []api.Filesystem
		target map[string][]zfs.Version
		opts   Options // Root defaults to runRoot
		setup  func(*fakeSource, *fakeTarget)

		results      []wantResult
		sends        []string // sendString of every Send request, in order
		placeholders []string // CreatePlaceholder calls, in order
		after        []string // fakeTarget.state() after the run; nil: not checked
		check        func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary)
	}{
		{
			name:   "new targets: placeholders for the missing ancestors, full then -I",
			source: []api.Filesystem{fsys("tank/b", b1, b2), fsys("tank/a", a3, a1, a2)},
			target: map[string][]zfs.Version{"backup": nil},
			results: []wantResult{
				{dataset: "tank/a", outcome: OutcomeReplicated, snapshots: 3},
				{dataset: "tank/b", outcome: OutcomeReplicated, snapshots: 2},
			},
			sends:        []string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13", "tank/b @s1=21", "tank/b @s1=21 -I @s2=22"},
			placeholders: []string{"CreatePlaceholder backup/host1", "CreatePlaceholder backup/host1/tank"},
			after: []string{
				"backup:",
				"backup/host1: (mountpoint=none)",
				"backup/host1/tank: (mountpoint=none)",
				"backup/host1/tank/a: s1=11 s2=12 s3=13",
				"backup/host1/tank/b: s1=21 s2=22",
			},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				// The pool is looked up (it must exist), never created; the
				// received datasets are not created as placeholders.
				if got := dst.callsTo("Exists"); len(got) == 0 || got[0] != "Exists backup" {
					t.Errorf("Exists calls = %q, want the pool checked first", got)
				}
				for _, r := range sum.Results {
					if r.Bytes <= int64(2*src.payload) || r.Duration <= 0 {
						t.Errorf("%s: bytes %d duration %v, want two streams' bytes and a duration", r.Dataset, r.Bytes, r.Duration)
					}
				}
			},
		},
		{
			name:   "new target under an existing root: only the missing levels become placeholders",
			source: []api.Filesystem{fsys("tank/a/deep", snap("tank/a/deep", "s1", 31, 10))},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil},
			results: []wantResult{
				{dataset: "tank/a/deep", outcome: OutcomeReplicated, snapshots: 1},
			},
			sends:        []string{"tank/a/deep @s1=31"},
			placeholders: []string{"CreatePlaceholder backup/host1/tank", "CreatePlaceholder backup/host1/tank/a"},
			after: []string{
				"backup:",
				"backup/host1:",
				"backup/host1/tank: (mountpoint=none)",
				"backup/host1/tank/a: (mountpoint=none)",
				"backup/host1/tank/a/deep: s1=31",
			},
		},
		{
			name:    "up to date: no Send",
			source:  []api.Filesystem{fsys("tank/a", a1, a2)},
			target:  map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6)}},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeUpToDate}},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if got := dst.callsTo("ListVersions"); len(got) != 0 {
					t.Errorf("nothing received, yet verified: %q", got)
				}
			},
		},
		{
			name:    "no snapshots on the source: nothing sent, no placeholder",
			source:  []api.Filesystem{fsys("tank/a")},
			target:  map[string][]zfs.Version{"backup": nil},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeNoSnapshots}},
			after:   []string{"backup:"},
		},
		{
			name:    "one new snapshot: -i from the newest common",
			source:  []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target:  map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6)}},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeReplicated, snapshots: 1}},
			sends:   []string{"tank/a @s2=12 -i @s3=13"},
			after:   []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11 s2=12 s3=13"},
		},
		{
			name:   "stream cut mid-way: aborted, target unchanged, the other dataset replicated",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3), fsys("tank/b", b1, b2)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}},
			setup: func(src *fakeSource, dst *fakeTarget) {
				// Inside the first substream's data: zfs receive has started.
				src.cutAfter["tank/a@s3"], src.cutErr["tank/a@s3"] = 2500, peerGone
			},
			results: []wantResult{
				{dataset: "tank/a", outcome: OutcomeFailed, errs: []string{
					"tank/a: incremental @s1 -> @s3 (2 snapshots) into " + ta, "stream cut after 2.4 KiB", "peer closed the connection"}},
				{dataset: "tank/b", outcome: OutcomeReplicated, snapshots: 2},
			},
			sends: []string{"tank/a @s1=11 -I @s3=13", "tank/b @s1=21", "tank/b @s1=21 -I @s2=22"},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11", "backup/host1/tank/b: s1=21 s2=22"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				r := dst.recvs[0]
				if r.opts.Target != ta || r.aborted != 1 || r.closed != 0 {
					t.Errorf("first receive %s: aborted %d times, closed %d times; want aborted once, never closed", r.opts.Target, r.aborted, r.closed)
				}
				if sum.Results[0].Bytes != 2500 {
					t.Errorf("bytes = %d, want the 2500 that arrived", sum.Results[0].Bytes)
				}
			},
		},
		{
			name:   "full received, then the -I stream cut: the full stream's snapshot counts",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil},
			setup: func(src *fakeSource, dst *fakeTarget) {
				src.cutAfter["tank/a@s3"], src.cutErr["tank/a@s3"] = 2500, peerGone
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, snapshots: 1, errs: []string{
				"tank/a: incremental @s1 -> @s3 (2 snapshots) into " + ta, "stream cut after 2.4 KiB", "peer closed the connection"}}},
			sends:        []string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13"},
			placeholders: []string{"CreatePlaceholder backup/host1", "CreatePlaceholder backup/host1/tank"},
			after:        []string{"backup:", "backup/host1: (mountpoint=none)", "backup/host1/tank: (mountpoint=none)", "backup/host1/tank/a: s1=11"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				// What arrived is verified even though a later step failed.
				if got := dst.callsTo("ListVersions"); !reflect.DeepEqual(got, []string{"ListVersions " + ta}) {
					t.Errorf("ListVersions calls = %q", got)
				}
			},
		},
		{
			name:   "the source refuses the Send with an rpc error: no Recv, the others go on",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3), fsys("tank/b", b1)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}},
			setup: func(src *fakeSource, dst *fakeTarget) {
				src.sendErr["tank/a@s3"] = rpc.Errorf(rpc.CodeNotFound, "snapshot tank/a@s3 does not exist")
			},
			results: []wantResult{
				{dataset: "tank/a", outcome: OutcomeFailed, errs: []string{
					"tank/a: incremental @s1 -> @s3 (2 snapshots) into " + ta, "source: snapshot tank/a@s3 does not exist (not_found)"}},
				{dataset: "tank/b", outcome: OutcomeReplicated, snapshots: 1},
			},
			sends: []string{"tank/a @s1=11 -I @s3=13", "tank/b @s1=21"},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11", "backup/host1/tank/b: s1=21"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if got := dst.callsTo("Recv"); !reflect.DeepEqual(got, []string{"Recv " + tb + " force=false unmounted=true"}) {
					t.Errorf("Recv calls = %q, want only tank/b's", got)
				}
			},
		},
		{
			name:   "zfs recv fails on Close: the error carries zfs's stderr",
			source: []api.Filesystem{fsys("tank/a", a1, a2)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}},
			setup: func(src *fakeSource, dst *fakeTarget) {
				dst.closeErr[ta] = recvErr
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, errs: []string{
				"tank/a: incremental @s1 -> @s2 (1 snapshot) into " + ta, "exit status 1", recvErr.Stderr}}},
			sends: []string{"tank/a @s1=11 -i @s2=12"},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if r := dst.recvs[0]; r.closed != 1 {
					t.Errorf("receive closed %d times, want once", r.closed)
				}
			},
		},
		{
			name:   "zfs recv runs out of space: the error says what is full",
			source: []api.Filesystem{fsys("tank/a", a1, a2)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}},
			setup: func(src *fakeSource, dst *fakeTarget) {
				dst.writeErr[ta] = &zfs.CommandError{Args: []string{"receive", ta}, ExitCode: 1, Stderr: "cannot receive incremental stream: out of space"}
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, errs: []string{
				"zfs receive failed after", "out of space", "the target pool, or a quota on the target or its parents, is full"}}},
			sends: []string{"tank/a @s1=11 -i @s2=12"},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11"},
		},
		{
			name:   "verification: the target records another guid",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil},
			setup: func(src *fakeSource, dst *fakeTarget) {
				dst.mangle[ta+"@s3"] = 999
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, snapshots: 3, errs: []string{
				"verification failed", ta + "@s3 has guid 999 on the target, 13 on the source"}}},
			sends:        []string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13"},
			placeholders: []string{"CreatePlaceholder backup/host1", "CreatePlaceholder backup/host1/tank"},
		},
		{
			name:   "verification: a snapshot missing after the receive",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil},
			setup: func(src *fakeSource, dst *fakeTarget) {
				dst.drop[ta+"@s2"] = true
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, snapshots: 3, errs: []string{
				"verification failed", ta + "@s2 is missing on the target"}}},
			sends:        []string{"tank/a @s1=11", "tank/a @s1=11 -I @s3=13"},
			placeholders: []string{"CreatePlaceholder backup/host1", "CreatePlaceholder backup/host1/tank"},
		},
		{
			name:   "the source sends another To guid than planned: no Recv",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, ta: {tsnap(ta, "s1", 11, 5)}},
			setup: func(src *fakeSource, dst *fakeTarget) {
				src.wrongGUID["tank/a@s3"] = 777
			},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeFailed, errs: []string{
				"the source sends tank/a@s3 with guid 777, planned 13"}}},
			sends: []string{"tank/a @s1=11 -I @s3=13"},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if got := dst.callsTo("Recv"); len(got) != 0 {
					t.Errorf("Recv started: %q", got)
				}
			},
		},
		{
			name:   "diverged target: refused, the target only listed",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
				ta: {tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6), tsnap(ta, "local", 99, 7)}},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeDiverged, errs: []string{
				"target " + ta + " has diverged from source tank/a", "@local", "nothing was changed"}}},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11 s2=12 local=99"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if want := []string{"Features", "ListTree " + runRoot}; !reflect.DeepEqual(dst.calls, want) {
					t.Errorf("target calls = %q, want only %q", dst.calls, want)
				}
			},
		},
		{
			name:   "diverged target with ForceRollback: roll back to the common snapshot, receive with -F",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
				ta: {tsnap(ta, "s1", 11, 5), tsnap(ta, "s2", 12, 6), tsnap(ta, "local", 99, 7)}},
			opts:    Options{ForceRollback: true},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeReplicated, snapshots: 1}},
			sends:   []string{"tank/a @s2=12 -i @s3=13"},
			after:   []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11 s2=12 s3=13"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				want := []string{"Features", "ListTree " + runRoot, "Rollback " + ta + "@s2 true",
					"Recv " + ta + " force=true unmounted=true", "ListVersions " + ta}
				if !reflect.DeepEqual(dst.calls, want) {
					t.Errorf("target calls =\n%q\nwant\n%q", dst.calls, want)
				}
			},
		},
		{
			name:   "no common snapshot with ForceRollback: the target's snapshots destroyed, full receive with -F",
			source: []api.Filesystem{fsys("tank/a", a1, a2)},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
				ta: {tsnap(ta, "old", 5, 5), tsnap(ta, "s1", 12345, 6)}},
			opts:    Options{ForceRollback: true},
			results: []wantResult{{dataset: "tank/a", outcome: OutcomeReplicated, snapshots: 2}},
			sends:   []string{"tank/a @s1=11", "tank/a @s1=11 -I @s2=12"},
			after:   []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/a: s1=11 s2=12"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if got, want := dst.callsTo("DestroySnapshot"), []string{"DestroySnapshot " + ta + "@old", "DestroySnapshot " + ta + "@s1"}; !reflect.DeepEqual(got, want) {
					t.Errorf("DestroySnapshot calls = %q, want %q", got, want)
				}
				for _, c := range dst.callsTo("Recv") {
					if !strings.Contains(c, "force=true") {
						t.Errorf("%s: want force", c)
					}
				}
			},
		},
		{
			name:   "DryRun: planned with the snapshot count, nothing sent or changed",
			source: []api.Filesystem{fsys("tank/a", a1, a2, a3), fsys("tank/b", b1, b2), fsys("tank/c", snap("tank/c", "s1", 41, 10))},
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil, tb: {tsnap(tb, "s1", 21, 5)},
				runRoot + "/tank/c": {tsnap(runRoot+"/tank/c", "s1", 41, 5), tsnap(runRoot+"/tank/c", "mine", 42, 6)}},
			opts: Options{DryRun: true, ForceRollback: true},
			results: []wantResult{
				{dataset: "tank/a", outcome: OutcomePlanned, snapshots: 3},
				{dataset: "tank/b", outcome: OutcomePlanned, snapshots: 1},
				{dataset: "tank/c", outcome: OutcomePlanned}, // a rollback only
			},
			after: []string{"backup:", "backup/host1:", "backup/host1/tank:", "backup/host1/tank/b: s1=21", "backup/host1/tank/c: s1=41 mine=42"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if want := []string{"Features", "ListTree " + runRoot}; !reflect.DeepEqual(dst.calls, want) {
					t.Errorf("target calls = %q, want only %q", dst.calls, want)
				}
			},
		},
		{
			name:   "DryRun into a new root: the pool is checked, no placeholder",
			source: []api.Filesystem{fsys("tank/a", a1, a2)},
			target: map[string][]zfs.Version{"backup": nil},
			opts:   Options{DryRun: true},
			results: []wantResult{
				{dataset: "tank/a", outcome: OutcomePlanned, snapshots: 2},
			},
			after: []string{"backup:"},
			check: func(t *testing.T, src *fakeSource, dst *fakeTarget, sum *Summary) {
				if want := []string{"Features", "ListTree " + runRoot, "Exists backup"}; !reflect.DeepEqual(dst.calls, want) {
					t.Errorf("target calls = %q, want %q", dst.calls, want)
				}
			},
		},
		{
			name:   "Datasets: a name the source lacks fails, duplicates ignored, the rest untouched",
			source: []api.Filesystem{fsys("tank/a", a1, a2), fsys("tank/b", b1, b2), fsys("tank/c", snap("tank/c", "s1", 41, 10))},
			target: map[string][]zfs.Version{"backup": nil},
			opts:   Options{Datasets: []string{"tank/b", "tank/nope", "tank/b"}},
			results: []wantResult{
				{dataset: "tank/b", outcome: OutcomeReplicated, snapshots: 2},
				{dataset: "tank/nope", outcome: OutcomeFailed, errs: []string{"not on the source"}},
			},
			sends:        []string{"tank/b @s1=21", "tank/b @s1=21 -I @s2=22"},
			placeholders: []string{"CreatePlaceholder backup/host1", "CreatePlaceholder backup/host1/tank"},
			after:        []string{"backup:", "backup/host1: (mountpoint=none)", "backup/host1/tank: (mountpoint=none)", "backup/host1/tank/b: s1=21 s2=22"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFakeSource(tt.source...), newFakeTarget(tt.target)
			if tt.setup != nil {
				tt.setup(src, dst)
			}
			log := &eventLog{}
			o := tt.opts
			o.Root, o.Reporter = runRoot, log
			sum, err := Run(context.Background(), src, dst, o)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}

			checkResults(t, sum, tt.results)
			var sends []string
			for _, req := range src.sends {
				sends = append(sends, sendString(req))
			}
			if !reflect.DeepEqual(sends, tt.sends) {
				t.Errorf("Send requests =\n%q\nwant\n%q", sends, tt.sends)
			}
			if got := dst.callsTo("CreatePlaceholder"); !reflect.DeepEqual(got, tt.placeholders) {
				t.Errorf("placeholders = %q, want %q", got, tt.placeholders)
			}
			if tt.after != nil {
				if got := dst.state(); !reflect.DeepEqual(got, tt.after) {
					t.Errorf("target after the run =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.after, "\n"))
				}
			}

			// Bytes are what the source's streams delivered to zfs receive:
			// all of it, unless the receive failed first.
			for _, r := range sum.Results {
				if want := src.served(r.Dataset); r.Bytes != want && (r.Outcome != OutcomeFailed || r.Bytes > want) {
					t.Errorf("%s: Bytes = %d, the source delivered %d", r.Dataset, r.Bytes, want)
				}
			}
			// No stream is leaked, and every receive is either closed or aborted.
			for _, st := range src.streams {
				if st.closed != 1 {
					t.Errorf("stream of %s closed %d times, want once", st.to, st.closed)
				}
			}
			for _, r := range dst.recvs {
				if (r.closed == 1) == (r.aborted == 1) || r.closed > 1 || r.aborted > 1 {
					t.Errorf("receive into %s: closed %d, aborted %d; want exactly one of them, once", r.opts.Target, r.closed, r.aborted)
				}
			}
			if src.lists != 1 {
				t.Errorf("the source was listed %d times, want once", src.lists)
			}
			// Nothing changes the target in a dry run, or before a run starts.
			if o.DryRun {
				for _, m := range []string{"CreatePlaceholder", "Recv", "Rollback", "DestroySnapshot"} {
					if got := dst.callsTo(m); len(got) != 0 {
						t.Errorf("dry run called %q", got)
					}
				}
				if len(src.sends) != 0 {
					t.Errorf("dry run sent %d streams", len(src.sends))
				}
			}

			checkEventsAgree(t, log, sum, len(src.sends), dst)
			if tt.check != nil {
				tt.check(t, src, dst, sum)
			}
		})
	}
}

// checkResults compares the summary with the table's results.
func checkResults(t *testing.T, sum *Summary, want []wantResult) {
	t.Helper()
	if sum == nil {
		t.Fatal("no summary")
	}
	var got []wantResult
	failed := 0
	for _, r := range sum.Results {
		got = append(got, wantResult{dataset: r.Dataset, outcome: r.Outcome, snapshots: r.Snapshots})
		if r.Target != runRoot+"/"+r.Dataset {
			t.Errorf("%s: Target = %q", r.Dataset, r.Target)
		}
	}
	var wantShort []wantResult
	for _, w := range want {
		wantShort = append(wantShort, wantResult{dataset: w.dataset, outcome: w.outcome, snapshots: w.snapshots})
		if w.outcome == OutcomeFailed || w.outcome == OutcomeDiverged {
			failed++
		}
	}
	if !reflect.DeepEqual(got, wantShort) {
		t.Fatalf("results =\n%+v\nwant\n%+v\n(errors: %s)", got, wantShort, resultErrors(sum))
	}
	for i, w := range want {
		msg := sum.Results[i].Error
		if len(w.errs) == 0 && msg != "" {
			t.Errorf("%s: unexpected error %q", w.dataset, msg)
		}
		for _, s := range w.errs {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: error %q lacks %q", w.dataset, msg, s)
			}
		}
	}
	if sum.Failed != failed {
		t.Errorf("Summary.Failed = %d, want %d", sum.Failed, failed)
	}
}

func resultErrors(sum *Summary) string {
	var out []string
	for _, r := range sum.Results {
		if r.Error != "" {
			out = append(out, r.Dataset+": "+r.Error)
		}
	}
	return strings.Join(out, "; ")
}

// checkEventsAgree checks what every run's events must satisfy: plan first
// and summary last (the returned summary), a time on every event, one
// step_start per Send, one step_done per accepted receive, one error per
// failed dataset, one dataset_done per dataset (planned, or asked for and
// missing on the source).
func checkEventsAgree(t *testing.T, log *eventLog, sum *Summary, sends int, dst *fakeTarget) {
	t.Helper()
	log.mu.Lock()
	events := append([]Event(nil), log.events...)
	log.mu.Unlock()
	if len(events) < 2 || events[0].Type != EventPlan || events[len(events)-1].Type != EventSummary {
		t.Fatalf("events %q: want plan first and summary last", log.types())
	}
	if events[len(events)-1].Summary != sum {
		t.Errorf("the summary event does not carry the returned summary")
	}
	for i, ev := range events {
		if ev.Time.IsZero() {
			t.Errorf("event %d (%s) has no time", i, ev.Type)
		}
		if ev.Time.Location() != time.UTC {
			t.Errorf("event %d (%s): time %v is not in UTC", i, ev.Type, ev.Time)
		}
	}
	accepted := 0
	for _, r := range dst.recvs {
		if r.received {
			accepted++
		}
	}
	failed := 0
	for _, r := range sum.Results {
		if r.Outcome.Failed() {
			failed++
		}
	}
	for _, c := range []struct {
		typ  EventType
		want int
	}{
		{EventStepStart, sends},
		{EventStepDone, accepted},
		{EventError, failed},
		{EventDatasetDone, len(sum.Results)},
	} {
		if got := log.count(c.typ); got != c.want {
			t.Errorf("%d %s events, want %d (events %q)", got, c.typ, c.want, log.types())
		}
	}
}

func TestRunEvents(t *testing.T) {
	a1, a2, a3 := snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)
	const ta = runRoot + "/tank/a"
	tests := []struct {
		name   string
		target map[string][]zfs.Version
		setup  func(*fakeSource, *fakeTarget)
		want   []string // event types without progress, with the dataset
	}{
		{
			name:   "new target: two steps",
			target: map[string][]zfs.Version{"backup": nil},
			want: []string{"plan", "step_start tank/a", "step_done tank/a", "step_start tank/a", "step_done tank/a",
				"dataset_done tank/a", "summary"},
		},
		{
			name:   "up to date",
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, ta: {tsnap(ta, "s1", 11, 1), tsnap(ta, "s2", 12, 2), tsnap(ta, "s3", 13, 3)}},
			want:   []string{"plan", "dataset_done tank/a", "summary"},
		},
		{
			name:   "stream cut in the second step",
			target: map[string][]zfs.Version{"backup": nil},
			setup: func(src *fakeSource, dst *fakeTarget) {
				src.cutAfter["tank/a@s3"], src.cutErr["tank/a@s3"] = 10, io.ErrUnexpectedEOF
			},
			want: []string{"plan", "step_start tank/a", "step_done tank/a", "step_start tank/a", "error tank/a",
				"dataset_done tank/a", "summary"},
		},
		{
			name:   "diverged",
			target: map[string][]zfs.Version{"backup": nil, runRoot: nil, ta: {tsnap(ta, "s1", 11, 1), tsnap(ta, "x", 5, 2)}},
			want:   []string{"plan", "error tank/a", "dataset_done tank/a", "summary"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFakeSource(fsys("tank/a", a1, a2, a3)), newFakeTarget(tt.target)
			if tt.setup != nil {
				tt.setup(src, dst)
			}
			log := &eventLog{}
			sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, Reporter: log})
			if err != nil {
				t.Fatal(err)
			}
			if got := log.types(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events =\n%q\nwant\n%q", got, tt.want)
			}
			var step *Step
			var last int64 // the last progress count of the current step
			for _, ev := range log.events {
				if ev.Time.IsZero() {
					t.Errorf("%s event without a time", ev.Type)
				}
				switch ev.Type {
				case EventPlan:
					if len(ev.Plan) != 1 || ev.Plan[0].Dataset != "tank/a" {
						t.Errorf("plan event = %+v", ev.Plan)
					}
				case EventStepStart:
					step, last = ev.Step, -1
					if ev.Step == nil || ev.StepIndex < 1 || ev.StepIndex > ev.StepCount {
						t.Errorf("step_start: step %v, %d of %d", ev.Step, ev.StepIndex, ev.StepCount)
					}
				case EventProgress:
					if step == nil || ev.Step == nil || ev.Step.To != step.To {
						t.Errorf("progress outside its step: %+v", ev)
					}
					if ev.Bytes < last || ev.EstimatedBytes <= 0 {
						t.Errorf("progress %d after %d, estimate %d", ev.Bytes, last, ev.EstimatedBytes)
					}
					last = ev.Bytes
				case EventStepDone:
					if step == nil || ev.Step == nil || ev.Step.To != step.To || ev.Bytes <= 0 {
						t.Errorf("step_done %+v does not match step_start %+v", ev.Step, step)
					}
					if last >= 0 && last != ev.Bytes {
						t.Errorf("the last progress says %d bytes, step_done %d", last, ev.Bytes)
					}
					step = nil
				case EventError:
					if !strings.Contains(ev.Error, "tank/a") || ev.Target != ta {
						t.Errorf("error event %+v", ev)
					}
				case EventDatasetDone:
					if ev.Result == nil || !reflect.DeepEqual(*ev.Result, sum.Results[0]) {
						t.Errorf("dataset_done carries %+v, the summary %+v", ev.Result, sum.Results[0])
					}
				}
			}
		})
	}
}

func TestRunFailsAsAWhole(t *testing.T) {
	a1 := snap("tank/a", "s1", 11, 10)
	tests := []struct {
		name     string
		root     string
		listErr  error
		errs     []string
		listings int // how many times the source is listed
	}{
		{name: "empty root", root: "", errs: []string{"--root"}},
		{name: "trailing slash", root: "backup/host1/", errs: []string{"--root"}},
		{name: "leading slash", root: "/backup", errs: []string{"--root"}},
		{name: "a snapshot", root: "backup@s1", errs: []string{"--root"}},
		{name: "an option", root: "-backup", errs: []string{"--root"}},
		{name: "missing pool", root: "nopool/host1", errs: []string{"nopool", "does not exist"}, listings: 1},
		{name: "missing pool as the root", root: "nopool", errs: []string{"the pool nopool does not exist"}, listings: 1},
		{name: "the source's listing fails", root: runRoot, listErr: rpc.Errorf(rpc.CodePermissionDenied, "no"),
			errs: []string{"listing the source's datasets", "no (permission_denied)"}, listings: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := newFakeSource(fsys("tank/a", a1)), newFakeTarget(map[string][]zfs.Version{"backup": nil})
			src.listErr = tt.listErr
			log := &eventLog{}
			sum, err := Run(context.Background(), src, dst, Options{Root: tt.root, Reporter: log})
			if err == nil {
				t.Fatalf("Run succeeded: %+v", sum)
			}
			if sum != nil {
				t.Errorf("a summary with the error: %+v", sum)
			}
			for _, s := range tt.errs {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if src.lists != tt.listings {
				t.Errorf("the source was listed %d times, want %d", src.lists, tt.listings)
			}
			if tt.listings == 0 && len(dst.calls) != 0 {
				t.Errorf("the target was asked %q before the root was checked", dst.calls)
			}
			if len(src.sends) != 0 || len(dst.callsTo("CreatePlaceholder")) != 0 || len(dst.recvs) != 0 {
				t.Errorf("work done after a failure of the run: sends %v, target calls %q", src.sends, dst.calls)
			}
			if len(log.events) != 0 {
				t.Errorf("events reported: %q", log.types())
			}
		})
	}
}

func TestRunRecvUnmounted(t *testing.T) {
	for _, unmounted := range []bool{true, false} {
		t.Run(fmt.Sprint("RecvUnmounted=", unmounted), func(t *testing.T) {
			src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20)))
			dst := newFakeTarget(map[string][]zfs.Version{"backup": nil})
			dst.features.RecvUnmounted = unmounted
			sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Failed != 0 {
				t.Fatalf("failed: %s", resultErrors(sum))
			}
			if len(dst.recvs) != 2 {
				t.Fatalf("%d receives, want 2", len(dst.recvs))
			}
			for _, r := range dst.recvs {
				if r.opts.Unmounted != unmounted || r.opts.Force {
					t.Errorf("Recv options %+v, want Unmounted %v and no Force", r.opts, unmounted)
				}
			}
		})
	}
}

// A parent dataset whose receive fails must not be replaced by a
// placeholder for its child: the next run would find an existing target
// without snapshots and refuse the parent as diverged for good.
func TestRunFailedParentIsNotReplacedByAPlaceholder(t *testing.T) {
	const tt = runRoot + "/tank"
	src := newFakeSource(fsys("tank", snap("tank", "s1", 1, 10)), fsys("tank/a", snap("tank/a", "s1", 11, 10)))
	src.cutAfter["tank@s1"], src.cutErr["tank@s1"] = 10, io.ErrUnexpectedEOF
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil})
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if got := dst.callsTo("CreatePlaceholder"); len(got) != 0 {
		t.Errorf("placeholders %q: %s was to be received, not created empty", got, tt)
	}
	if sum.Results[0].Outcome != OutcomeFailed || sum.Results[1].Outcome != OutcomeFailed {
		t.Errorf("outcomes %s, %s; want the child to fail with its parent", sum.Results[0].Outcome, sum.Results[1].Outcome)
	}

	// The next run, with the network back, must receive tank.
	delete(src.cutAfter, "tank@s1")
	sum, err = Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Results[0]; r.Dataset != "tank" || r.Outcome != OutcomeReplicated {
		t.Errorf("second run: %s %s: %s", r.Dataset, r.Outcome, r.Error)
	}
}

// verify must find the received snapshot, not a bookmark of the same name.
func TestRunVerifyIgnoresBookmarks(t *testing.T) {
	const ta = runRoot + "/tank/a"
	src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20), snap("tank/a", "s3", 13, 30)))
	// The target had @s2 once; an operator kept a bookmark of it and destroyed it.
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
		ta: {tsnap(ta, "s1", 11, 5), {Name: ta + "#s2", Type: zfs.Bookmark, GUID: 12, CreateTXG: 6}}})
	dst.drop[ta+"@s2"] = true // and the receive loses @s2
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot})
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Results[0]; r.Outcome != OutcomeFailed || !strings.Contains(r.Error, "@s2 is missing") {
		t.Errorf("outcome %s %q; want failed: @s2 is missing", r.Outcome, r.Error)
	}
}

// A bandwidth limit paces every stream of the run, together: the fake
// clock slept for what the bytes beyond the first bucket cost.
func TestRunBandwidthLimit(t *testing.T) {
	src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10), snap("tank/a", "s2", 12, 20)))
	dst := newFakeTarget(map[string][]zfs.Version{"backup": nil})
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	const rate = 1 << 10
	sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, BandwidthLimit: bwlimit.New(rate, clock)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 || sum.Results[0].Bytes == 0 {
		t.Fatalf("results %+v", sum.Results)
	}
	sent := sum.Results[0].Bytes
	// The bucket holds 4 KiB at this rate and starts full.
	if want := time.Duration(max(sent-4<<10, 0)) * time.Second / rate; clock.slept != want {
		t.Fatalf("slept %s for %d bytes at %d B/s, want %s", clock.slept, sent, rate, want)
	}
	if clock.slept == 0 {
		t.Fatalf("%d bytes sent: too few for the test to see the limit", sent)
	}
}

type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept += d
	return ctx.Err()
}

// A listing of the target started ahead (while ssh connects) is used, not
// made again; one of another root is not.
func TestRunTargetListedAhead(t *testing.T) {
	for _, root := range []string{runRoot, "backup/other"} {
		src := newFakeSource(fsys("tank/a", snap("tank/a", "s1", 11, 10)))
		dst := newFakeTarget(map[string][]zfs.Version{"backup": nil, runRoot: nil, runRoot + "/tank": nil,
			runRoot + "/tank/a": {tsnap(runRoot+"/tank/a", "s1", 11, 5)}})
		ahead := ListTarget(context.Background(), dst, root)
		sum, err := Run(context.Background(), src, dst, Options{Root: runRoot, TargetListing: ahead})
		if err != nil {
			t.Fatal(err)
		}
		if r := sum.Results[0]; r.Outcome != OutcomeUpToDate {
			t.Errorf("listed ahead under %s: outcome %s %s", root, r.Outcome, r.Error)
		}
		<-ahead.done // a listing of another root is not waited for by Run
		want := 1
		if root != runRoot {
			want = 2
		}
		if got := len(dst.callsTo("ListTree")); got != want {
			t.Errorf("listed ahead under %s: %d listings, want %d", root, got, want)
		}
	}
}

// racingTarget is a fakeTarget where another pull (pull --config runs
// sources at once) creates the parent race between the check and the
// create.
type racingTarget struct {
	*fakeTarget
	parent string
	raced  bool
}

func (r *racingTarget) Exists(ctx context.Context, name string) (bool, error) {
	ok, err := r.fakeTarget.Exists(ctx, name)
	if name == r.parent && !ok && !r.raced {
		r.raced = true
		r.mu.Lock()
		r.ds[name] = &fakeDataset{mountpoint: "none"}
		r.mu.Unlock()
	}
	return ok, err
}

// A parent created by someone else between the check and the create is
// there: the child is received all the same.
func TestRunParentCreatedConcurrently(t *testing.T) {
	src := newFakeSource(fsys("tank", snap("tank", "s1", 1, 10)))
	dst := &racingTarget{fakeTarget: newFakeTarget(map[string][]zfs.Version{"backup": nil}), parent: "backup/host1"}
	sum, err := Run(context.Background(), src, dst, Options{Root: "backup/host1"})
	if err != nil {
		t.Fatal(err)
	}
	if !dst.raced || sum.Failed != 0 || sum.Results[0].Outcome != OutcomeReplicated {
		t.Errorf("raced %t, results %+v", dst.raced, sum.Results)
	}
}
