package sendstream

import (
	"bytes"
	"testing"
)

// Streams recorded in zrep's OpenZFS lab (Debian's OpenZFS 2.1.11; see
// testdata/README.md): sspool/a (lz4, recordsize 1M, a tiny file that -e
// embeds) with @s1, @s2, @s3, and the encrypted sspool/e with @e1.
const (
	ozS1 = 0x929cd29266d10bc5
	ozS2 = 0xb255042369295a93
	ozS3 = 0xe022343e3af37f53
	ozE1 = 0x8a47687bd3cc0171
)

// TestOpenZFSStreams: OpenZFS's streams with large blocks, embedded data,
// compressed records, raw encryption and resuming pass whole when asked
// for, with the features OpenZFS sets, and are refused when not.
func TestOpenZFSStreams(t *testing.T) {
	a := func(p Plan) Plan { p.Dataset = "sspool/a"; return p }
	cle := FeatureSASpill | FeatureEmbedData | FeatureLZ4 | FeatureLargeBlocks | FeatureCompressed
	tests := []struct {
		stream   string
		plan     Plan
		features Features // of the (first) substream
		payload  []string // of its BEGIN
		refuse   Plan     // a plan the stream does not fit
		why      string
	}{
		{"full", a(Plan{Snapshots: []Snapshot{{"s1", ozS1}}}), FeatureSASpill, nil,
			a(Plan{Snapshots: []Snapshot{{"s1", ozS2}}}), "guid"},
		{"full-cLe", a(Plan{Snapshots: []Snapshot{{"s1", ozS1}}}), cle, nil,
			a(Plan{Snapshots: []Snapshot{{"s1", ozS1}}, Raw: true}), "a plaintext stream of sspool/a@s1 where a raw (encrypted) one was asked for"},
		{"incI-cLe", a(Plan{FromGUID: ozS1, FromSnapshot: "s1", Snapshots: []Snapshot{{"s2", ozS2}, {"s3", ozS3}}, Intermediates: true}), cle, nil,
			a(Plan{FromGUID: ozS1, Snapshots: []Snapshot{{"s3", ozS3}}}), "compound (package) stream"},
		{"raw", Plan{Dataset: "sspool/e", Snapshots: []Snapshot{{"e1", ozE1}}, Raw: true}, FeatureSASpill | FeatureLZ4 | FeatureCompressed | FeatureRaw, []string{"crypt_keydata"},
			Plan{Dataset: "sspool/e", Snapshots: []Snapshot{{"e1", ozE1}}}, "features not asked for: raw"},
		{"resume", a(Plan{Snapshots: []Snapshot{{"s1", ozS1}}, Resuming: true}), cle | FeatureResuming, []string{"resume_object", "resume_offset"},
			a(Plan{Snapshots: []Snapshot{{"s1", ozS1}}}), "features not asked for: resuming"},
		{"R", Plan{}, 0, nil, a(Plan{FromGUID: ozS1, Snapshots: []Snapshot{{"s2", ozS2}, {"s3", ozS3}}, Intermediates: true}), "header carries fss"},
	}
	for _, tt := range tests {
		t.Run(tt.stream, func(t *testing.T) {
			stream := loadStream(t, "openzfs-2.1-"+tt.stream)
			if tt.plan.Dataset != "" {
				exp := tt.plan.Expect()
				var first *Begin
				out, _, err := readAll(stream, func(b *Begin) error {
					if first == nil && !b.Compound() {
						first = b
					}
					return exp.Check(b)
				})
				if err != nil || !bytes.Equal(out, stream) {
					t.Fatalf("asked for: %v (%d of %d bytes)", err, len(out), len(stream))
				}
				if err := exp.Complete(); err != nil {
					t.Fatal(err)
				}
				if first.Features != tt.features {
					t.Errorf("features %s, want %s", first.Features, tt.features)
				}
				var names []string
				if first.Payload != nil {
					names = first.Payload.Names()
				}
				if len(names) != len(tt.payload) || len(names) > 0 && names[0] != tt.payload[0] {
					t.Errorf("payload %q, want %q", names, tt.payload)
				}
			}
			out, _, err := readAll(stream, tt.refuse.Expect().Check)
			checkRefused(t, err, out, tt.why, 0, 0)
		})
	}
}
