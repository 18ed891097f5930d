// Package units parses and prints sizes the way operators write them for
// ZFS: "500G", "1.5T", "20MiB", "4096".
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// multipliers maps a unit's letter to its power of 1024, as zfs reads them
// (zfs_nicestrtonum: K, M, G… are binary; "B" and "iB" may follow).
var multipliers = map[byte]int{'B': 0, 'K': 1, 'M': 2, 'G': 3, 'T': 4, 'P': 5, 'E': 6}

// ParseSize reads a byte count: a number (decimals allowed) followed by an
// optional unit K, M, G, T, P or E (powers of 1024, any case), which may
// end in "B" or "iB". It refuses negative, empty and overflowing sizes.
func ParseSize(s string) (uint64, error) {
	num := strings.TrimSpace(s)
	unit := strings.TrimLeft(num, "0123456789.")
	num = num[:len(num)-len(unit)]
	if num == "" {
		return 0, errors.Errorf("size %q: no number", s)
	}
	power := 0
	if unit != "" {
		u := strings.ToUpper(unit)
		p, ok := multipliers[u[0]]
		rest := u[1:]
		if !ok || !(rest == "" || rest == "B" && u[0] != 'B' || rest == "IB" && u[0] != 'B') {
			return 0, errors.Errorf("size %q: unknown unit %q (use K, M, G, T, P or E, optionally with B or iB)", s, unit)
		}
		power = p
	}
	if strings.Contains(num, ".") {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, errors.Errorf("size %q: %q is not a number", s, num)
		}
		v := f * math.Pow(1024, float64(power))
		if v >= math.MaxUint64 {
			return 0, errors.Errorf("size %q is too large", s)
		}
		return uint64(v), nil
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, errors.Errorf("size %q: %q is not a number", s, num)
	}
	for range power {
		if n > math.MaxUint64/1024 {
			return 0, errors.Errorf("size %q is too large", s)
		}
		n *= 1024
	}
	return n, nil
}

// FormatSize prints n bytes with a binary unit, "1.5 GiB", or "512 B".
func FormatSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
