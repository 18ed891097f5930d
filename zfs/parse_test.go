package zfs

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Output of zfs-fuse 0.7: zfs get -H -p -r -o name,property,value type,guid,createtxg,creation
const getOutput = "zrtry\ttype\tfilesystem\n" +
	"zrtry\tguid\t4201802676377525276\n" +
	"zrtry\tcreatetxg\t1\n" +
	"zrtry\tcreation\t1795604900\n" +
	"zrtry/a\ttype\tfilesystem\n" +
	"zrtry/a\tguid\t10843709416477145739\n" +
	"zrtry/a\tcreatetxg\t7\n" +
	"zrtry/a\tcreation\t1795604900\n" +
	"zrtry/a@s2\ttype\tsnapshot\n" +
	"zrtry/a@s2\tguid\t12798537530743906077\n" +
	"zrtry/a@s2\tcreatetxg\t21\n" +
	"zrtry/a@s2\tcreation\t1795604901\n" +
	"zrtry/a@s1\ttype\tsnapshot\n" +
	"zrtry/a@s1\tguid\t11539319276311639020\n" +
	"zrtry/a@s1\tcreatetxg\t16\n" +
	"zrtry/a@s1\tcreation\t1795604900\n" +
	"zrtry/a b\ttype\tfilesystem\n" +
	"zrtry/a b\tguid\t5770623796850594160\n" +
	"zrtry/a b\tcreatetxg\t9\n" +
	"zrtry/a b\tcreation\t1795604900\n" +
	"zrtry/a b@x y\ttype\tsnapshot\n" +
	"zrtry/a b@x y\tguid\t1213452813072585515\n" +
	"zrtry/a b@x y\tcreatetxg\t26\n" +
	"zrtry/a b@x y\tcreation\t1795604900\n" +
	"zrtry/a/c\ttype\tfilesystem\n" +
	"zrtry/a/c\tguid\t17718292436602451551\n" +
	"zrtry/a/c\tcreatetxg\t11\n" +
	"zrtry/a/c\tcreation\t1795604900\n"

// Output of OpenZFS: zfs list -H -p -o name,type,guid,createtxg,creation -t filesystem,volume,snapshot,bookmark -r
const listOutput = "tank\tfilesystem\t4201802676377525276\t1\t1700000000\n" +
	"tank/a\tfilesystem\t10843709416477145739\t7\t1700000001\n" +
	"tank/a@s1\tsnapshot\t11539319276311639020\t16\t1700000002\n" +
	"tank/a#s1\tbookmark\t11539319276311639020\t16\t1700000002\n" +
	"tank/a@s2\tsnapshot\t12798537530743906077\t21\t1700000003\n" +
	"tank/vol\tvolume\t77\t30\t1700000004\n" +
	"tank/vol@v1\tsnapshot\t78\t31\t1700000005\n"

// listOutputEncrypted is listOutput with OpenZFS's encryption and
// encryptionroot columns: tank/a is encrypted, its own encryption root;
// snapshots and bookmarks show their dataset's values.
var listOutputEncrypted = func() string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(listOutput, "\n") {
		if line == "" {
			continue
		}
		value, root := "off", "-"
		if strings.HasPrefix(line, "tank/a") {
			value, root = "aes-256-gcm", "tank/a"
		}
		b.WriteString(strings.TrimSuffix(line, "\n") + "\t" + value + "\t" + root + "\n")
	}
	return b.String()
}()

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }

func TestParseGetTree(t *testing.T) {
	entries, err := parseGet(strings.NewReader(getOutput))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := buildTree(entries, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []DatasetVersions{
		{Dataset: Dataset{Name: "zrtry", Type: Filesystem}},
		{Dataset: Dataset{Name: "zrtry/a", Type: Filesystem}, Versions: []Version{
			{"zrtry/a@s1", Snapshot, 11539319276311639020, 16, unixTime(1795604900)},
			{"zrtry/a@s2", Snapshot, 12798537530743906077, 21, unixTime(1795604901)},
		}},
		{Dataset: Dataset{Name: "zrtry/a b", Type: Filesystem}, Versions: []Version{
			{"zrtry/a b@x y", Snapshot, 1213452813072585515, 26, unixTime(1795604900)},
		}},
		{Dataset: Dataset{Name: "zrtry/a/c", Type: Filesystem}},
	}
	if !reflect.DeepEqual(tree, want) {
		t.Errorf("tree =\n%+v\nwant\n%+v", tree, want)
	}
	if loc := tree[1].Versions[0].Creation.Location(); loc != time.UTC {
		t.Errorf("creation location %v, want UTC", loc)
	}

	sub, err := buildTree(entries, "zrtry/a")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range sub {
		names = append(names, d.Name)
	}
	if !reflect.DeepEqual(names, []string{"zrtry/a", "zrtry/a/c"}) {
		t.Errorf("subtree of zrtry/a = %q", names)
	}
}

func TestParseListTree(t *testing.T) {
	entries, err := parseList(strings.NewReader(listOutput))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := buildTree(entries, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []DatasetVersions{
		{Dataset: Dataset{Name: "tank", Type: Filesystem}},
		{Dataset: Dataset{Name: "tank/a", Type: Filesystem}, Versions: []Version{
			{"tank/a#s1", Bookmark, 11539319276311639020, 16, unixTime(1700000002)},
			{"tank/a@s1", Snapshot, 11539319276311639020, 16, unixTime(1700000002)},
			{"tank/a@s2", Snapshot, 12798537530743906077, 21, unixTime(1700000003)},
		}},
		{Dataset: Dataset{Name: "tank/vol", Type: Volume}, Versions: []Version{
			{"tank/vol@v1", Snapshot, 78, 31, unixTime(1700000005)},
		}},
	}
	if !reflect.DeepEqual(tree, want) {
		t.Errorf("tree =\n%+v\nwant\n%+v", tree, want)
	}
}

// TestParseEncryptionRoots: an encrypted dataset's encryptionroot, itself
// or an ancestor; none for an unencrypted dataset whatever the column says,
// nor for a value that is no dataset name.
func TestParseEncryptionRoots(t *testing.T) {
	out := "p\tfilesystem\t1\t1\t1700000000\toff\t-\n" +
		"p/raw\tfilesystem\t2\t2\t1700000000\taes-256-gcm\tp/raw\n" +
		"p/raw/child\tfilesystem\t3\t3\t1700000000\taes-256-gcm\tp/raw\n" +
		"p/odd\tfilesystem\t4\t4\t1700000000\toff\tp/odd\n" +
		"p/bad\tfilesystem\t5\t5\t1700000000\taes-256-gcm\t../x\n"
	entries, err := parseListOf(strings.NewReader(out), append(slices.Clone(listColumns), haveEncryption, haveEncryptionRoot))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := buildTree(entries, "p")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range tree {
		got[d.Name] = d.EncryptionRoot
	}
	want := map[string]string{"p": "", "p/raw": "p/raw", "p/raw/child": "p/raw", "p/odd": "", "p/bad": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("encryption roots %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, get, list, wantErr string
	}{
		{name: "get: one field", get: "pool/a\n", wantErr: "expected name<TAB>property<TAB>value"},
		{name: "get: two fields", get: "pool/a\ttype\n", wantErr: "expected name<TAB>property<TAB>value"},
		{name: "get: bad guid", get: "pool/a@s\ttype\tsnapshot\npool/a@s\tguid\t3.26E\n", wantErr: `bad guid "3.26E"`},
		{name: "get: negative txg", get: "pool/a@s\tcreatetxg\t-1\n", wantErr: "bad createtxg"},
		{name: "get: guid overflow", get: "pool/a@s\tguid\t18446744073709551616\n", wantErr: "bad guid"},
		{name: "get: missing guid", get: "pool/a\ttype\tfilesystem\npool/a@s\ttype\tsnapshot\npool/a@s\tcreatetxg\t1\npool/a@s\tcreation\t1\n", wantErr: "lacks guid"},
		{name: "get: no type", get: "pool/a\tguid\t1\n", wantErr: "no type"},
		{name: "get: orphan snapshot", get: "pool/b@s\ttype\tsnapshot\npool/b@s\tguid\t1\npool/b@s\tcreatetxg\t1\npool/b@s\tcreation\t1\n", wantErr: "but not its dataset"},
		{name: "get: snapshot without @", get: "pool/b\ttype\tsnapshot\n", wantErr: `lists snapshot "pool/b"`},
		{name: "get: filesystem with @", get: "pool/b@x\ttype\tfilesystem\n", wantErr: `lists filesystem "pool/b@x"`},
		{name: "get: bookmark with @", get: "pool/b@x\ttype\tbookmark\n", wantErr: `lists bookmark`},
		{name: "list: four fields", list: "pool/a\tfilesystem\t1\t2\n", wantErr: "expected 5 tab-separated fields"},
		{name: "list: six fields", list: "pool/a\tfilesystem\t1\t2\t3\t4\n", wantErr: "expected 5 tab-separated fields"},
		{name: "list: unparsable guid of snapshot", list: "pool/a\tfilesystem\t1\t2\t3\npool/a@s\tsnapshot\t3.26E\t2\t3\n", wantErr: "bad guid"},
		{name: "list: empty name", list: "\tfilesystem\t1\t2\t3\n", wantErr: "expected 5 tab-separated fields"},
		{name: "long line", get: strings.Repeat("x", maxLine+10), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var entries []entry
			var err error
			if tt.list != "" {
				entries, err = parseList(strings.NewReader(tt.list))
			} else {
				entries, err = parseGet(strings.NewReader(tt.get))
			}
			if err == nil {
				_, err = buildTree(entries, "")
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseTolerates(t *testing.T) {
	// "-" values of filesystems, unknown types and properties, CRLF and blank lines.
	get := "pool/a\ttype\tfilesystem\r\n\npool/a\tguid\t-\npool/a\tused\t123\n" +
		"pool/a@s\ttype\tsnapshot\npool/a@s\tguid\t5\npool/a@s\tcreatetxg\t9\npool/a@s\tcreation\t100\n" +
		"pool/a%recv\ttype\tfuturetype\n" +
		"pool/a@s\tcreation\t100\n" // repeated, out of order
	entries, err := parseGet(strings.NewReader(get))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := buildTree(entries, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []DatasetVersions{{Dataset: Dataset{Name: "pool/a", Type: Filesystem}, Versions: []Version{{"pool/a@s", Snapshot, 5, 9, unixTime(100)}}}}
	if !reflect.DeepEqual(tree, want) {
		t.Errorf("tree = %+v", tree)
	}
	list := "pool/a\tfilesystem\t-\t-\t-\n"
	entries, err = parseList(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	if tree, err = buildTree(entries, ""); err != nil || len(tree) != 1 {
		t.Errorf("tree %+v, err %v", tree, err)
	}
}

func TestParseDatasets(t *testing.T) {
	out := "zrtry\tfilesystem\nzrtry/a/c\tfilesystem\nzrtry/a b\tfilesystem\nzrtry/a\tfilesystem\nzrtry/v\tvolume\nzrtry/a@s\tsnapshot\n"
	got, err := parseDatasets(strings.NewReader(out), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Dataset{{Name: "zrtry", Type: Filesystem}, {Name: "zrtry/a", Type: Filesystem}, {Name: "zrtry/a b", Type: Filesystem}, {Name: "zrtry/a/c", Type: Filesystem}, {Name: "zrtry/v", Type: Volume}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	if _, err := parseDatasets(strings.NewReader("zrtry\n"), false); err == nil {
		t.Error("no error for a line without a type")
	}
	got, err = parseDatasets(strings.NewReader("p\tfilesystem\toff\np/e\tfilesystem\taes-256-gcm\np/e@s\tsnapshot\taes-256-gcm\n"), true)
	want = []Dataset{{Name: "p", Type: Filesystem}, {Name: "p/e", Type: Filesystem, Encrypted: true}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("with encryption: %+v, %v", got, err)
	}
	if _, err := parseDatasets(strings.NewReader("p\tfilesystem\n"), true); err == nil {
		t.Error("no error for a line without the encryption column")
	}
}

func TestUnderRoot(t *testing.T) {
	tests := []struct {
		name, root string
		want       bool
	}{
		{"pool/a", "", true},
		{"pool/a", "pool/a", true},
		{"pool/a/b", "pool/a", true},
		{"pool/ab", "pool/a", false},
		{"pool/a b", "pool/a", false},
		{"pool", "pool/a", false},
	}
	for _, tt := range tests {
		if got := underRoot(tt.name, tt.root); got != tt.want {
			t.Errorf("underRoot(%q, %q) = %v", tt.name, tt.root, got)
		}
	}
}

// bigGetOutput builds zfs get output for nds datasets with nsnap snapshots each.
func bigGetOutput(nds, nsnap int) string {
	var b strings.Builder
	b.Grow(nds * nsnap * 200)
	txg := 1
	for d := 0; d < nds; d++ {
		ds := fmt.Sprintf("tank/data/set%03d", d)
		fmt.Fprintf(&b, "%s\ttype\tfilesystem\n%s\tguid\t%d\n%s\tcreatetxg\t%d\n%s\tcreation\t1700000000\n", ds, ds, 1000+d, ds, txg, ds)
		for s := nsnap - 1; s >= 0; s-- {
			name := fmt.Sprintf("%s@zrep_%06d", ds, s)
			txg++
			fmt.Fprintf(&b, "%s\ttype\tsnapshot\n%s\tguid\t%d\n%s\tcreatetxg\t%d\n%s\tcreation\t%d\n",
				name, name, uint64(d)<<32|uint64(s), name, 100000+s, name, 1700000000+s)
		}
	}
	return b.String()
}

func TestParseLargeTree(t *testing.T) {
	out := bigGetOutput(200, 2000)
	start := time.Now()
	entries, err := parseGet(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := buildTree(entries, "")
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	t.Logf("parsed %d MB, %d datasets x %d versions in %v", len(out)>>20, len(tree), len(tree[0].Versions), elapsed)
	if len(tree) != 200 || len(tree[199].Versions) != 2000 {
		t.Fatalf("got %d datasets, %d versions", len(tree), len(tree[199].Versions))
	}
	for _, d := range tree {
		for i := 1; i < len(d.Versions); i++ {
			if d.Versions[i-1].CreateTXG >= d.Versions[i].CreateTXG {
				t.Fatalf("%s: versions not sorted", d.Name)
			}
		}
	}
	if elapsed > 20*time.Second {
		t.Errorf("parsing took %v", elapsed)
	}
}

func BenchmarkParseGetTree(b *testing.B) {
	out := bigGetOutput(200, 2000)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		entries, err := parseGet(strings.NewReader(out))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := buildTree(entries, ""); err != nil {
			b.Fatal(err)
		}
	}
}
