package units

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"0": 0, "4096": 4096, "1K": 1024, "1k": 1024, "20M": 20 << 20, "20MiB": 20 << 20, "20MB": 20 << 20,
		"500G": 500 << 30, "1.5T": 3 << 39, "2E": 2 << 60, " 3G ": 3 << 30, "7B": 7, "0.5K": 512,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "1X", "1GG", "1BB", "1BiB", "16E", "99999999999999999999", "1.2.3G", "1 G", "0x10", "1e3"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 29: "1.5 GiB", 500 << 30: "500.0 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
