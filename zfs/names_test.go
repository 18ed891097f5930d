package zfs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pkg/errors"
)

func TestValidateDatasetName(t *testing.T) {
	long := "pool/" + strings.Repeat("a", 250) // 255 bytes: the longest allowed
	tests := []struct {
		name    string
		wantErr string // substring of the error, "" for valid
	}{
		{"pool", ""},
		{"pool/a", ""},
		{"pool/a/b/c", ""},
		{"tank/with space", ""},
		{"p/a-b_c.d:e", ""},
		{"Pool9/x", ""},
		{"mirrorless", "reserved"},
		{"pool/.hidden", ""},
		{"pool/..x", ""},
		{long, ""},
		{long + "a", "must be shorter than 256"},
		{"", "empty name"},
		{"-pool", "starts with '-'"},
		{"-", "starts with '-'"},
		{"/pool", "leading '/'"},
		{"pool/", "trailing '/'"},
		{"pool//a", `empty component`},
		{"pool/./a", `component "."`},
		{"pool/..", `component ".."`},
		{"pool/a@s", "'@' is not allowed"},
		{"pool/a#b", "'#' is not allowed"},
		{"pool/a%b", "'%' is not allowed"},
		{"pool/a\nb", `invalid character '\n'`},
		{"pool/a\tb", `invalid character '\t'`},
		{"pool/a\x00", `invalid character '\x00'`},
		{"pool/ä", "invalid character"},
		{"pool/a;rm -rf", "invalid character ';'"},
		{"pool/$x", "invalid character '$'"},
		{"pool/a'b", "invalid character"},
		{"pool/a,b", "invalid character ','"},
		{"1pool/a", "must start with a letter"},
		{"_pool", "must start with a letter"},
		{"mirror", "reserved"},
		{"mirror/a", "reserved"},
		{"raidz", "reserved"},
		{"raidz2/a", "reserved"},
		{"draid1", "reserved"},
		{"spare", "reserved"},
		{"log", "reserved"},
		{"c0t0d0/a", "disk name"},
		{"c9", "disk name"},
		{"c", ""},
		{"logs", ""},
		{strings.Repeat("p", maxPoolNameLen), "pool name is"},
		{strings.Repeat("p", maxPoolNameLen-1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateDatasetName(tt.name)
			checkNameErr(t, tt.name, err, tt.wantErr)
		})
	}
}

func checkNameErr(t *testing.T, name string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("%q: unexpected error %v", name, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("%q: no error, want one containing %q", name, want)
	}
	if !errors.Is(err, ErrInvalidName) {
		t.Errorf("%q: error %v does not wrap ErrInvalidName", name, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%q: error %q does not contain %q", name, err, want)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
		t.Errorf("%q: error %q does not quote the name", name, err)
	}
}

func TestValidateSnapshotName(t *testing.T) {
	tests := []struct {
		name, wantErr string
	}{
		{"pool@s", ""},
		{"pool/a@s1", ""},
		{"pool/a b@snap 1", ""},
		{"pool/a@zrep_2024-01-01T00:00:00.000Z", ""},
		{"pool/a@.x", ""},
		{"pool/a", "no '@'"},
		{"pool/a#b", "no '@'"},
		{"pool/a@", "empty snapshot name"},
		{"@s", "empty dataset name"},
		{"pool/a@s@t", "'@' is not allowed in a snapshot name"},
		{"pool/a@s#t", "'#' is not allowed in a snapshot name"},
		{"pool/a@s/t", "'/' is not allowed in a snapshot name"},
		{"pool/a@s%t", "'%' is not allowed"},
		{"pool/a@s1,s2", "invalid character ','"},
		{"pool/a@.", `snapshot name "." is not allowed`},
		{"pool/a@..", `snapshot name ".." is not allowed`},
		{"pool/a@s\n", `invalid character '\n'`},
		{"pool/a@ß", "invalid character"},
		{"-pool/a@s", "starts with '-'"},
		{"pool//a@s", "empty component"},
		{"pool/a/@s", "trailing '/'"},
		{"mirror/a@s", "reserved"},
		{"pool/a@" + strings.Repeat("s", 248), ""},
		{"pool/a@" + strings.Repeat("s", 249), "must be shorter than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNameErr(t, tt.name, ValidateSnapshotName(tt.name), tt.wantErr)
		})
	}
}

func TestValidateBookmarkName(t *testing.T) {
	tests := []struct {
		name, wantErr string
	}{
		{"pool/a#b1", ""},
		{"pool/a#b 1", ""},
		{"pool/a@s1", "no '#'"},
		{"pool/a#", "empty bookmark name"},
		{"pool/a#b#c", "'#' is not allowed in a bookmark name"},
		{"pool/a#b@c", "'@' is not allowed in a bookmark name"},
		{"pool/a@s#b", "'@' is not allowed in a dataset name"},
		{"pool/a#..", `bookmark name ".." is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNameErr(t, tt.name, ValidateBookmarkName(tt.name), tt.wantErr)
		})
	}
}

func TestSplitVersion(t *testing.T) {
	tests := []struct {
		name      string
		ds        string
		sep       byte
		short     string
		wantError string
	}{
		{"pool/a@s1", "pool/a", '@', "s1", ""},
		{"pool/a#b1", "pool/a", '#', "b1", ""},
		{"pool@x y", "pool", '@', "x y", ""},
		{"pool/a", "", 0, "", "neither a snapshot"},
		{"", "", 0, "", "empty name"},
		{"-x@y", "", 0, "", "starts with '-'"},
		{"pool/a@", "", 0, "", "empty snapshot name"},
		{"pool/a#", "", 0, "", "empty bookmark name"},
		{"pool/a@s#b", "", 0, "", "'#' is not allowed in a snapshot name"},
		{"pool/a#b@s", "", 0, "", "'@' is not allowed in a bookmark name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, sep, short, err := SplitVersion(tt.name)
			checkNameErr(t, tt.name, err, tt.wantError)
			if ds != tt.ds || sep != tt.sep || short != tt.short {
				t.Errorf("SplitVersion(%q) = %q, %q, %q; want %q, %q, %q", tt.name, ds, sep, short, tt.ds, tt.sep, tt.short)
			}
			if err == nil {
				if verr := ValidateVersionName(tt.name); verr != nil {
					t.Errorf("ValidateVersionName(%q) = %v", tt.name, verr)
				}
				v := Version{Name: tt.name}
				if v.Dataset() != tt.ds || v.ShortName() != tt.short {
					t.Errorf("Version{%q}: Dataset %q ShortName %q", tt.name, v.Dataset(), v.ShortName())
				}
			} else if ValidateVersionName(tt.name) == nil {
				t.Errorf("ValidateVersionName(%q) accepted it", tt.name)
			}
		})
	}
}

func TestNameErrorMessage(t *testing.T) {
	err := ValidateSnapshotName("pool/a@s\nx")
	want := `invalid name "pool/a@s\nx": invalid character '\n' in a snapshot name`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}
