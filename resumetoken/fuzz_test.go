package resumetoken

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zrep/zrep/nvlist"
)

// checkToken is the property of every input: Decode and Inspect refuse
// it with one of this package's errors, Inspect accepting exactly what
// Decode refuses for its fields; or Decode accepts it, and then the
// token's nvlist is byte for byte the one the kernel writes for the
// decoded fields, and Encode gives a token that decodes to the same
// Token.
func checkToken(s string) error {
	tok, err := Decode(s)
	l, ierr := Inspect(s)
	if ierr != nil && !isKnownError(ierr) {
		return fmt.Errorf("Inspect: unexpected error %T %v", ierr, ierr)
	}
	if err != nil {
		if !isKnownError(err) {
			return fmt.Errorf("unexpected error %T %v", err, err)
		}
		if errors.Is(err, ErrRefused) != (ierr == nil) {
			return fmt.Errorf("Decode: %v; Inspect: %v", err, ierr)
		}
		if ierr != nil && ierr.Error() != err.Error() {
			return fmt.Errorf("Decode: %v; Inspect: %v", err, ierr)
		}
		return nil
	}
	if ierr != nil {
		return fmt.Errorf("Decode accepts, Inspect: %v", ierr)
	}
	raw, err := unwrap(s)
	if err != nil {
		return fmt.Errorf("unwrap: %v", err)
	}
	want, err := nvlist.Pack(tok.list(), nvlist.Native)
	if err != nil {
		return fmt.Errorf("pack %+v: %v", *tok, err)
	}
	if !bytes.Equal(raw, want) || !sameList(l, tok.list()) {
		return fmt.Errorf("list is not the kernel's for %+v:\n%x\n%x", *tok, raw, want)
	}
	enc := tok.Encode()
	tok2, err := Decode(enc)
	if err != nil || *tok2 != *tok {
		return fmt.Errorf("%+v re-encodes to %s, which decodes to %+v, %v", *tok, enc, tok2, err)
	}
	return nil
}

// fuzzSeeds are real and forged tokens.
func fuzzSeeds(t testing.TB) []string {
	var seeds []string
	for _, rt := range readTokens(t) {
		seeds = append(seeds, rt.token, strings.ToUpper(rt.token))
	}
	base := baseToken()
	packed, _ := nvlist.Pack(base.list(), nvlist.Native)
	seeds = append(seeds,
		base.Encode(),
		(&Token{ToName: "p@s", ToGUID: 1}).Encode(),
		forge(func(l *nvlist.List) {
			l.Pairs = append(l.Pairs, nvlist.Pair{Name: "savedok", Type: nvlist.Boolean})
		}),
		forge(func(l *nvlist.List) { setPair(l, "rawok", nvlist.Uint64, uint64(1)) }),
		forge(func(l *nvlist.List) { setPair(l, "toname", nvlist.String, "pool/fs") }),
		encodePacked(toBigEndian(packed)),
		withPayload(bomb(1<<20), MaxPackedLen),
		"1-0-1-00",
	)
	return seeds
}

func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := checkToken(s); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeList wraps arbitrary bytes as the packed list of a token
// with a right checksum and length, to reach the nvlist and field rules.
func FuzzDecodeList(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if raw, err := unwrap(s); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, packed []byte) {
		s := encodePacked(packed)
		if len(s) > MaxLen {
			return
		}
		if err := checkToken(s); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeCompressed wraps arbitrary bytes as the compressed payload of
// a token with a right checksum, to reach the zlib layer.
func FuzzDecodeCompressed(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		if fs := strings.SplitN(s, "-", 4); len(fs) == 4 {
			if comp, err := hex.DecodeString(fs[3]); err == nil {
				if raw, err := unwrap(s); err == nil {
					f.Add(comp, uint32(len(raw)))
				} else {
					f.Add(comp, uint32(len(comp)))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, comp []byte, plen uint32) {
		s := withPayload(comp, int(plen))
		if len(s) > MaxLen {
			return
		}
		if err := checkToken(s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFuzzSeeds runs the property on the seeds without -fuzz.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		if err := checkToken(s); err != nil {
			t.Error(err)
		}
	}
}
