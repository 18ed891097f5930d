package nvlist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"testing"
)

// zstreamdump prints the list in the payload of a stream's BEGIN record
// as libnvpair reads it (nvlist_unpack, then nvlist_print), or ok is false
// if libnvpair refuses it.
func zstreamdump(t *testing.T, bin string, payload []byte) (out string, ok bool) {
	t.Helper()
	// A compound BEGIN record (drr_type 0, hdrtype 2) with the payload,
	// and an END record (drr_type 5 in zfs-fuse).
	begin := make([]byte, 312)
	binary.LittleEndian.PutUint32(begin[4:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(begin[8:], 0x2F5bacbac)
	binary.LittleEndian.PutUint64(begin[16:], 2)
	copy(begin[56:], "p@s")
	end := make([]byte, 312)
	end[0] = 5
	cmd := exec.Command(bin)
	cmd.Stdin = bytes.NewReader(append(append(begin, payload...), end...))
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("zstreamdump: %v", err)
	}
	s := string(b)
	i := strings.Index(s, "\ttoname = p@s\n")
	if i < 0 {
		t.Fatalf("zstreamdump printed %q", s)
	}
	s = s[i+len("\ttoname = p@s\n"):]
	if !strings.HasPrefix(s, "nvlist version: 0\n") {
		return "", false
	}
	for _, stop := range []string{"Expected checksum differs", "SUMMARY:"} {
		if j := strings.Index(s, stop); j >= 0 {
			s = s[:j]
		}
	}
	return s, true
}

// printNV prints l as zfs-fuse's nvlist_print does.
func printNV(l *List) string {
	var b strings.Builder
	var walk func(l *List, depth int)
	walk = func(l *List, depth int) {
		tabs := strings.Repeat("\t", depth)
		fmt.Fprintf(&b, "%snvlist version: 0\n", tabs)
		for _, p := range l.Pairs {
			fmt.Fprintf(&b, "%s\t%s =", tabs, p.Name)
			switch v := p.Value.(type) {
			case nil:
				b.WriteString(" 1")
			case *List:
				b.WriteString(" (embedded nvlist)\n")
				walk(v, depth+1)
				fmt.Fprintf(&b, "%s\t(end %s)\n", tabs, p.Name)
			case []*List:
				b.WriteString(" (array of embedded nvlists)\n")
				for i, sub := range v {
					fmt.Fprintf(&b, "%s\t(start %s[%d])\n", tabs, p.Name, i)
					walk(sub, depth+1)
					fmt.Fprintf(&b, "%s\t(end %s[%d])\n", tabs, p.Name, i)
				}
			case []string:
				for _, s := range v {
					b.WriteString(" " + s)
				}
			case string:
				b.WriteString(" " + v)
			case []byte, []uint64, []int64, []bool:
				elems(v, func(x uint64) { b.WriteString(" " + printScalar(elemType(p.Type), x)) })
			default:
				b.WriteString(" " + printScalar(p.Type, toBits(v)))
			}
			b.WriteString("\n")
		}
	}
	walk(l, 0)
	return b.String()
}

// printScalar formats a scalar as nvlist_print does.
func printScalar(t Type, x uint64) string {
	switch t {
	case Byte:
		return fmt.Sprintf("0x%2.2x", x)
	case Uint8, Uint16, Uint32, Uint64, Hrtime:
		return fmt.Sprintf("0x%x", x)
	case Double:
		f := math.Float64frombits(x)
		switch {
		case math.IsNaN(f) && x>>63 == 1:
			return "0x-nan"
		case math.IsNaN(f):
			return "0xnan"
		case math.IsInf(f, 0):
			return "0x" + strings.ToLower(strings.TrimPrefix(fmt.Sprint(f), "+"))
		}
		return fmt.Sprintf("0x%f", f)
	}
	return fmt.Sprint(int64(x)) // BooleanValue and signed types
}

// TestLibnvpair checks Unpack against zfs-fuse's libnvpair: every sample,
// pack and byte mutation that Unpack accepts, libnvpair reads to the same
// list. It needs zfs-fuse's zstreamdump.
func TestLibnvpair(t *testing.T) {
	bin, err := exec.LookPath("zstreamdump")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/zstreamdump"); err != nil {
			t.Skip("no zstreamdump (zfs-fuse)")
		}
	}
	inputs := samples(t)
	inputs["xdr chain"] = xdrChain(DefaultMaxDepth)
	inputs["native chain"] = nativeChain(DefaultMaxDepth)
	inputs["sign-extended"] = func() []byte {
		b := mustPack(t, one("i", Int8Array, []int64{-1, -128}), XDR)
		copy(b[len(b)-16:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80})
		return b
	}()
	for name, b := range inputs {
		if strings.HasSuffix(name, ".be") {
			continue // libnvpair reads only its host's byte order
		}
		l, _, err := Unpack(b, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, ok := zstreamdump(t, bin, b)
		if want := printNV(l); !ok || got != want {
			t.Errorf("%s: libnvpair read (ok %v)\n%s\nwe read\n%s", name, ok, got, want)
		}
	}

	// Mutations: whatever Unpack accepts, libnvpair reads the same.
	if testing.Short() {
		return
	}
	for _, name := range []string{"zfsfuse-p-header.xdr", "openzfs-14153", "all.xdr", "all.native"} {
		base := inputs[name]
		var accepted, refusedByUs int
		for i := 0; i < len(base); i += max(1, len(base)/400) {
			for _, x := range []byte{0x01, 0xff} {
				b := bytes.Clone(base)
				b[i] ^= x
				l, _, err := Unpack(b, Limits{})
				got, ok := zstreamdump(t, bin, b)
				switch {
				case err == nil && (!ok || got != printNV(l)):
					t.Errorf("%s byte %d ^ %#x: libnvpair read (ok %v)\n%s\nwe read\n%s", name, i, x, ok, got, printNV(l))
				case err == nil:
					accepted++
				case ok:
					refusedByUs++
				}
			}
		}
		t.Logf("%s: %d mutations read alike; %d refused by Unpack only", name, accepted, refusedByUs)
	}
}
