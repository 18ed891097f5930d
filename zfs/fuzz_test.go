package zfs

import (
	"strings"
	"testing"
)

func FuzzParseGet(f *testing.F) {
	f.Add(getOutput)
	f.Add("p\ttype\tfilesystem\np@s\ttype\tsnapshot\np@s\tguid\t1\np@s\tcreatetxg\t2\np@s\tcreation\t3\n")
	f.Add("p@\ttype\tsnapshot\n")
	f.Add("#\ttype\tbookmark\n")
	f.Add("\t\t\n")
	f.Fuzz(func(t *testing.T, out string) {
		entries, err := parseGet(strings.NewReader(out))
		if err != nil {
			return
		}
		checkTree(t, entries)
	})
}

func FuzzParseList(f *testing.F) {
	f.Add(listOutput)
	f.Add("p\tfilesystem\t-\t-\t-\np#b\tbookmark\t1\t2\t3\n")
	f.Add("@\tsnapshot\t1\t2\t3\n")
	f.Fuzz(func(t *testing.T, out string) {
		entries, err := parseList(strings.NewReader(out))
		if err != nil {
			return
		}
		checkTree(t, entries)
	})
}

func FuzzParseDatasets(f *testing.F) {
	f.Add("p\tfilesystem\np/v\tvolume\n")
	f.Add("p\tfilesystem\toff\np/v\tvolume\taes-256-gcm\n")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = parseDatasets(strings.NewReader(out), false)
		_, _ = parseDatasets(strings.NewReader(out), true)
	})
}

// checkTree builds trees from parsed entries and checks what callers rely on.
func checkTree(t *testing.T, entries []entry) {
	for _, root := range []string{"", "p", "tank/a"} {
		tree, err := buildTree(entries, root)
		if err != nil {
			continue
		}
		for i, d := range tree {
			if i > 0 && tree[i-1].Name > d.Name {
				t.Fatalf("datasets not sorted: %q > %q", tree[i-1].Name, d.Name)
			}
			if !underRoot(d.Name, root) {
				t.Fatalf("%q listed under root %q", d.Name, root)
			}
			for j, v := range d.Versions {
				if v.Dataset() != d.Name || v.ShortName() == "" {
					t.Fatalf("version %q listed under %q", v.Name, d.Name)
				}
				if j > 0 && compareVersions(d.Versions[j-1], v) > 0 {
					t.Fatalf("versions not sorted")
				}
			}
		}
	}
}

func FuzzValidateNames(f *testing.F) {
	for _, s := range []string{"pool", "pool/a", "pool/a@s", "pool/a#b", "-x", "p/a\n@b", "pool/a b@c d",
		"mirror", "c0", "p/../a", "p//a", "p/a@%", "p@.", "ä/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		check := func(kind string, err error) {
			if err != nil {
				return
			}
			if strings.HasPrefix(name, "-") || strings.ContainsAny(name, "\n\r\t\x00%,;$'\"`\\") {
				t.Fatalf("%s accepted %q", kind, name)
			}
			if len(name) >= maxNameLen || strings.Contains(name, "//") || strings.HasSuffix(name, "/") {
				t.Fatalf("%s accepted %q", kind, name)
			}
			for _, r := range name {
				if r >= 0x80 {
					t.Fatalf("%s accepted non-ASCII %q", kind, name)
				}
			}
		}
		dsErr := ValidateDatasetName(name)
		check("ValidateDatasetName", dsErr)
		if dsErr == nil && strings.ContainsAny(name, "@#") {
			t.Fatalf("dataset name with @ or #: %q", name)
		}
		snapErr := ValidateSnapshotName(name)
		check("ValidateSnapshotName", snapErr)
		bmErr := ValidateBookmarkName(name)
		check("ValidateBookmarkName", bmErr)
		verErr := ValidateVersionName(name)
		check("ValidateVersionName", verErr)
		if (verErr == nil) != (snapErr == nil || bmErr == nil) {
			t.Fatalf("%q: version %v, snapshot %v, bookmark %v", name, verErr, snapErr, bmErr)
		}
		ds, sep, short, err := SplitVersion(name)
		if (err == nil) != (verErr == nil) {
			t.Fatalf("%q: SplitVersion %v, ValidateVersionName %v", name, err, verErr)
		}
		if err == nil {
			if ds+string(sep)+short != name || ValidateDatasetName(ds) != nil {
				t.Fatalf("SplitVersion(%q) = %q %q %q", name, ds, sep, short)
			}
		}
	})
}

func FuzzDetectFeatures(f *testing.F) {
	f.Add(usageOpenZFS08)
	f.Add("\tlist [-Hp]\n\tsend -[")
	f.Fuzz(func(t *testing.T, usage string) {
		_ = DetectFeatures(usage)
		_ = usageLooksValid(usage)
	})
}
