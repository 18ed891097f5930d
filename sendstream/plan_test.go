package sendstream

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zrep/zrep/nvlist"
)

// Plans of the recorded zfs-fuse streams of sspool/a.
var (
	planFull = Plan{Dataset: "sspool/a", Snapshots: []Snapshot{snapS1}}
	planInc  = Plan{Dataset: "sspool/a", FromGUID: guidS1, FromSnapshot: "s1", Snapshots: []Snapshot{snapS2}}
	planIncI = Plan{Dataset: "sspool/a", FromGUID: guidS1, FromSnapshot: "s1", Snapshots: []Snapshot{snapS2, snapS3}, Intermediates: true}
)

// with returns a copy of p changed by f.
func with(p Plan, f func(*Plan)) Plan {
	p.Snapshots = append([]Snapshot(nil), p.Snapshots...)
	f(&p)
	return p
}

// TestPlanAcceptsWhatWasAskedFor: each real stream passes the plan it was
// sent for, whole.
func TestPlanAcceptsWhatWasAskedFor(t *testing.T) {
	for _, tt := range []struct {
		stream string
		plan   Plan
	}{
		{"full", planFull},
		{"inc", planInc},
		{"incI", planIncI},
		{"full", with(planFull, func(p *Plan) { p.Objset = ObjsetFilesystem })},
	} {
		t.Run(tt.stream, func(t *testing.T) {
			stream := realStream(t, tt.stream)
			exp := tt.plan.Expect()
			out, _, err := readAll(stream, exp.Check)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, stream) {
				t.Fatal("the stream changed")
			}
			if err := exp.Complete(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPlanRefusesWhatWasNotAskedFor is the attack table: a compromised
// source answering a request with another stream. Each is refused before
// the first byte of the offending BEGIN record passes.
func TestPlanRefusesWhatWasNotAskedFor(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		plan   Plan
		want   string
	}{
		{"-R instead of a full stream", realStream(t, "R"), planFull, "compound (package) stream"},
		{"-p instead of a full stream", realStream(t, "p"), planFull, "compound (package) stream"},
		{"-R -I instead of -I", realStream(t, "RI"), planIncI, "header carries fss"},
		{"-D instead of a full stream", realStream(t, "D"), planFull, "features not asked for: dedup,dedupprops"},
		{"-D -i instead of -i", realStream(t, "Di"), planInc, "features not asked for"},
		{"another snapshot", realStream(t, "full"), with(planFull, func(p *Plan) { p.Snapshots[0] = snapS2 }), "sspool/a@s1 where sspool/a@s2 was asked for"},
		{"another dataset", realStream(t, "full"), with(planFull, func(p *Plan) { p.Dataset = "sspool/b" }), "where sspool/b@s1 was asked for"},
		{"same name, another guid", realStream(t, "full"), with(planFull, func(p *Plan) { p.Snapshots[0].GUID = 42 }), "guid 42 was asked for"},
		{"incremental instead of full", realStream(t, "inc"), with(planInc, func(p *Plan) { p.FromGUID = 0 }), "where a full stream was asked for"},
		{"full instead of incremental", realStream(t, "full"), with(planFull, func(p *Plan) { p.FromGUID = 7 }), "a full stream of sspool/a@s1 where an incremental"},
		{"-i from an older base", realStream(t, "inc"), with(planInc, func(p *Plan) { p.FromGUID = 99 }), "incremental from guid"},
		{"-I instead of -i", realStream(t, "incI"), with(planInc, func(p *Plan) { p.Snapshots = []Snapshot{snapS3} }), "compound (package) stream"},
		{"-i instead of -I", realStream(t, "inc"), planIncI, "a plain stream of sspool/a@s2 where a zfs send -I stream"},
		{"-I to another end", realStream(t, "incI"), with(planIncI, func(p *Plan) { p.Snapshots = p.Snapshots[:1] }), "up to sspool/a@s3 where one up to sspool/a@s2"},
		{"a volume for a file system", realStream(t, "full"), with(planFull, func(p *Plan) { p.Objset = ObjsetVolume }), "a filesystem where a volume"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exp := tt.plan.Expect()
			out, _, err := readAll(tt.stream, exp.Check)
			checkRefused(t, err, out, tt.want, 0, 0)
		})
	}
}

// checkRefused checks that err is an UnplannedError saying want about the
// record at offset, and that outLen bytes came out.
func checkRefused(t *testing.T, err error, out []byte, want string, offset, outLen int) {
	t.Helper()
	var ue *UnplannedError
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want an UnplannedError", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if len(out) != outLen || ue.Offset != int64(offset) {
		t.Errorf("%d bytes came out, refusal at byte %d; want %d bytes and byte %d", len(out), ue.Offset, outLen, offset)
	}
}

func abs(n int) int { return max(n, -n) }

// TestPlanSynthetic covers what the recorded streams do not: extra or
// missing substreams, clone, raw and parameterised substreams, and the
// header nvlist an older libzfs wrote for -I.
func TestPlanSynthetic(t *testing.T) {
	plan := Plan{Dataset: "p/a", FromGUID: 9, FromSnapshot: "w", Snapshots: []Snapshot{{"x", 1}, {"y", 2}}, Intermediates: true}
	header := func(b *builder, payload []byte) *builder {
		return b.begin(beginSpec{hdr: Compound, name: "p/a@y", payload: payload}).end()
	}
	xdr := func(pairs ...nvlist.Pair) []byte {
		b, err := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: pairs}, nvlist.XDR)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	str := func(name, v string) nvlist.Pair { return nvlist.Pair{Name: name, Type: nvlist.String, Value: v} }
	notRecursive := nvlist.Pair{Name: "not_recursive", Type: nvlist.Boolean}

	t.Run("older -I header", func(t *testing.T) {
		b := header(newBuilder(), xdr(str("fromsnap", "w"), str("tosnap", "y"), notRecursive))
		b.substream("p/a@x", 1, 9, 0).substream("p/a@y", 2, 1, 0).end()
		exp := plan.Expect()
		if _, _, err := readAll(b.bytes(), exp.Check); err != nil {
			t.Fatal(err)
		}
		if err := exp.Complete(); err != nil {
			t.Fatal(err)
		}
	})

	tests := []struct {
		name  string
		plan  Plan
		build func(*builder) int // returns the offset of the refused BEGIN; negated if nothing may come out
		want  string
	}{
		{"extra substream", plan, func(b *builder) int {
			header(b, nil).substream("p/a@x", 1, 9, 0).substream("p/a@y", 2, 1, 0)
			off := b.Buffer().Len()
			b.substream("p/a@z", 3, 2, 0).end()
			return off
		}, "after the 2 snapshot(s)"},
		{"substream out of order: the header is held back too", plan, func(b *builder) int {
			header(b, nil).substream("p/a@y", 2, 9, 0).end()
			return -2 * RecordSize
		}, "p/a@y where p/a@x was asked for"},
		{"wrong fromsnap in header", plan, func(b *builder) int {
			header(b, xdr(str("fromsnap", "v"), str("tosnap", "y"), notRecursive))
			return 0
		}, "fromsnap is not"},
		{"wrong tosnap in header", plan, func(b *builder) int {
			header(b, xdr(str("tosnap", "z"), notRecursive))
			return 0
		}, "tosnap is not"},
		{"props in header", plan, func(b *builder) int {
			header(b, xdr(str("tosnap", "y"), nvlist.Pair{Name: "props", Type: nvlist.NVList, Value: &nvlist.List{Flags: 1}}))
			return 0
		}, "carries props"},
		{"header keys that are terminal escapes, many of them: named printable, eight at most", plan, func(b *builder) int {
			pairs := []nvlist.Pair{str("tosnap", "y")}
			for i := 0; i < 20; i++ {
				pairs = append(pairs, str(fmt.Sprintf("k%02d\x1b]0;owned\x07\u009b", i), "v"))
			}
			header(b, xdr(pairs...))
			return 0
		}, "k07?]0;owned??, and 12 more: unknown contents"},
		{"holds feature on header", plan, func(b *builder) int {
			b.begin(beginSpec{hdr: Compound, features: FeatureHolds, name: "p/a@y"}).end()
			return 0
		}, "features not asked for: holds"},
		{"guids on header", plan, func(b *builder) int {
			b.begin(beginSpec{hdr: Compound, to: 5, name: "p/a@y"}).end()
			return 0
		}, "header with guids"},
		{"clone", Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}, FromGUID: 9}, func(b *builder) int {
			b.begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, flags: FlagClone, to: 1, from: 9, name: "p/a@x"}).end()
			return 0
		}, "clone stream"},
		{"raw", Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}, func(b *builder) int {
			b.begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, features: FeatureRaw, to: 1, name: "p/a@x", payload: emptyNativeList()}).end()
			return 0
		}, "features not asked for: raw"},
		{"resuming", Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}, func(b *builder) int {
			b.begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, features: FeatureResuming, to: 1, name: "p/a@x"}).end()
			return 0
		}, "features not asked for: resuming"},
		{"parameters on a plain substream", Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}, func(b *builder) int {
			b.begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, to: 1, name: "p/a@x", payload: emptyNativeList()}).end()
			return 0
		}, "parameters after its BEGIN record (to_ivset_guid)"},
		{"objset none in a substream", Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}, func(b *builder) int {
			b.begin(beginSpec{hdr: Substream, to: 1, name: "p/a@x"}).end()
			return 0
		}, "with none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBuilder()
			off, outLen := tt.build(b), 0
			if off > 0 {
				outLen = off
			}
			out, _, err := readAll(b.bytes(), tt.plan.Expect().Check)
			checkRefused(t, err, out, tt.want, abs(off), outLen)
		})
	}

	t.Run("resuming", func(t *testing.T) {
		resume := Plan{Dataset: "p/a", FromGUID: 9, Snapshots: []Snapshot{{"x", 1}}, Resuming: true}
		where := func(extra ...nvlist.Pair) []byte {
			pairs := append([]nvlist.Pair{{Name: "resume_object", Type: nvlist.Uint64, Value: uint64(7)},
				{Name: "resume_offset", Type: nvlist.Uint64, Value: uint64(1 << 20)}}, extra...)
			b, err := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: pairs}, nvlist.Native)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		begin := func(f Features, payload []byte) []byte {
			return newBuilder().begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, features: f, to: 1, from: 9, name: "p/a@x", payload: payload}).end().bytes()
		}
		if _, _, err := readAll(begin(FeatureResuming, where()), resume.Expect().Check); err != nil {
			t.Errorf("a resuming stream: %v", err)
		}
		out, _, err := readAll(begin(0, nil), resume.Expect().Check)
		checkRefused(t, err, out, "from its start where the rest of a cut transfer was asked for", 0, 0)
		out, _, err = readAll(begin(FeatureResuming, where(nvlist.Pair{Name: "crypt_keydata", Type: nvlist.Boolean})), resume.Expect().Check)
		checkRefused(t, err, out, "parameters after its BEGIN record", 0, 0)
	})

	t.Run("raw", func(t *testing.T) {
		raw := Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}, Raw: true}
		keys := func() []byte {
			b, err := nvlist.Pack(&nvlist.List{Flags: 1, Pairs: []nvlist.Pair{{Name: "crypt_keydata", Type: nvlist.NVList,
				Value: &nvlist.List{Flags: 1, Pairs: []nvlist.Pair{{Name: "DSL_CRYPTO_SUITE", Type: nvlist.Uint64, Value: uint64(8)}}}}}}, nvlist.Native)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}()
		begin := func(f Features, payload []byte) []byte {
			return newBuilder().begin(beginSpec{hdr: Substream, objset: ObjsetFilesystem, features: f, to: 1, name: "p/a@x", payload: payload}).end().bytes()
		}
		if _, _, err := readAll(begin(FeatureRaw|FeatureCompressed, keys), raw.Expect().Check); err != nil {
			t.Errorf("a raw stream: %v", err)
		}
		out, _, err := readAll(begin(0, nil), raw.Expect().Check)
		checkRefused(t, err, out, "a plaintext stream of p/a@x where a raw (encrypted) one was asked for", 0, 0)
		plain := Plan{Dataset: "p/a", Snapshots: []Snapshot{{"x", 1}}}
		out, _, err = readAll(begin(FeatureRaw, keys), plain.Expect().Check)
		checkRefused(t, err, out, "features not asked for: raw", 0, 0)
	})

	t.Run("missing substream", func(t *testing.T) {
		b := header(newBuilder(), nil).substream("p/a@x", 1, 9, 0).end()
		exp := plan.Expect()
		if _, _, err := readAll(b.bytes(), exp.Check); err != nil {
			t.Fatal(err)
		}
		if err := exp.Complete(); err == nil || !strings.Contains(err.Error(), "after 1 of the 2") {
			t.Fatalf("Complete: %v", err)
		}
	})
}
