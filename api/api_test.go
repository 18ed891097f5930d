package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/api"
)

func TestGUIDJSONRoundTrip(t *testing.T) {
	tests := []struct {
		g    api.GUID
		json string
	}{
		{0, `"0"`},
		{1, `"1"`},
		{1 << 53, `"9007199254740992"`},
		{1<<53 + 1, `"9007199254740993"`}, // not exact as a float64: why guids are strings
		{math.MaxUint64, `"18446744073709551615"`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.g)
		if err != nil {
			t.Fatalf("Marshal(%d): %v", uint64(tt.g), err)
		}
		if string(b) != tt.json {
			t.Errorf("Marshal(%d) = %s; want %s", uint64(tt.g), b, tt.json)
		}
		if got := tt.g.String(); `"`+got+`"` != tt.json {
			t.Errorf("GUID(%d).String() = %q", uint64(tt.g), got)
		}
		var g api.GUID = 42
		if err := json.Unmarshal([]byte(tt.json), &g); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tt.json, err)
		}
		if g != tt.g {
			t.Errorf("Unmarshal(%s) = %d; want %d", tt.json, uint64(g), uint64(tt.g))
		}
	}
}

func TestGUIDInStructs(t *testing.T) {
	// A zero guid in a request means "no check" and is left out; a
	// version's guid is always present.
	b, err := json.Marshal(api.SendRequest{Dataset: "tank/a", To: "tank/a@s2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"dataset":"tank/a","to":"tank/a@s2"}`; string(b) != want {
		t.Errorf("Marshal(SendRequest) = %s; want %s", b, want)
	}
	req := api.SendRequest{Dataset: "tank/a", To: "tank/a@s2", ToGUID: math.MaxUint64, From: "tank/a#b1", FromGUID: 7, Intermediates: true}
	b, err = json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dataset":"tank/a","to":"tank/a@s2","to_guid":"18446744073709551615","from":"tank/a#b1","from_guid":"7","intermediates":true}`
	if string(b) != want {
		t.Errorf("Marshal(SendRequest) = %s; want %s", b, want)
	}
	var back api.SendRequest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != req {
		t.Errorf("round trip: %+v; want %+v", back, req)
	}

	b, err = json.Marshal(api.Version{Name: "tank/a@s1", Type: api.TypeSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"guid":"0"`)) {
		t.Errorf("Marshal(Version) = %s; want a guid of \"0\"", b)
	}
}

func TestGUIDRefused(t *testing.T) {
	for _, in := range []string{
		`18446744073709551615`,   // a JSON number, even a valid one
		`1`,                      //
		`1.5`,                    //
		`-1`,                     //
		`"-1"`,                   // negative
		`"18446744073709551616"`, // max+1
		`"99999999999999999999999"`,
		`""`,
		`" 1"`,
		`"1 "`,
		`"+1"`,
		`"0x10"`,
		`"1e3"`,
		`"1_000"`,
		`"12a"`,
		`"abc"`,
		`"１２"`, // fullwidth digits
		`null`, // a guard that silently became "no check" would be worse than an error
		`true`,
		`{}`,
		`[]`,
	} {
		g := api.GUID(42)
		err := json.Unmarshal([]byte(in), &g)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %d; want an error", in, uint64(g))
			continue
		}
		if g != 42 {
			t.Errorf("Unmarshal(%s) failed but changed the guid to %d", in, uint64(g))
		}
	}
	// Refused inside a request too, not silently zeroed.
	var req api.SendRequest
	if err := json.Unmarshal([]byte(`{"dataset":"a","to":"a@s","to_guid":123}`), &req); err == nil {
		t.Errorf("a numeric to_guid was accepted: %+v", req)
	}
}

// sample is a listing with filesystems (some with versions) and loose versions.
func sample() ([]api.Filesystem, []api.Version) {
	ts := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	filesystems := []api.Filesystem{
		{Name: "tank/data", Type: "filesystem", Versions: []api.Version{
			{Name: "tank/data@s1", Type: api.TypeSnapshot, GUID: 11, CreateTXG: 100, Creation: ts(1700000000)},
			{Name: "tank/data#b1", Type: api.TypeBookmark, GUID: 11, CreateTXG: 100, Creation: ts(1700000000)},
			{Name: "tank/data@s2", Type: api.TypeSnapshot, GUID: math.MaxUint64, CreateTXG: math.MaxUint64, Creation: ts(1700003600)},
		}},
		{Name: "tank/data/empty", Type: "filesystem"},
		{Name: "tank/vm", Type: "volume", Versions: []api.Version{
			{Name: "tank/vm@v1", Type: api.TypeSnapshot, GUID: 0, CreateTXG: 5, Creation: ts(0)},
		}},
		{Name: "pool 2/a b:c.d_e-f", Type: "filesystem"},
	}
	loose := []api.Version{
		{Name: "tank/x@l1", Type: api.TypeSnapshot, GUID: 1, CreateTXG: 1, Creation: ts(1)},
		{Name: "tank/x#l2", Type: api.TypeBookmark, GUID: 2, CreateTXG: 2, Creation: ts(2)},
	}
	return filesystems, loose
}

func TestListingRoundTrip(t *testing.T) {
	allFS, allLoose := sample()
	tests := []struct {
		name        string
		filesystems []api.Filesystem
		loose       []api.Version
		want        api.ListResponse
	}{
		{"empty", nil, nil, api.ListResponse{}},
		{"filesystems and versions", allFS, nil, api.ListResponse{Filesystems: 4, Versions: 4}},
		{"filesystems without versions", []api.Filesystem{allFS[1], allFS[3]}, nil, api.ListResponse{Filesystems: 2}},
		{"loose versions", nil, allLoose, api.ListResponse{Versions: 2}},
		{"filesystems, versions and loose versions", allFS, allLoose, api.ListResponse{Filesystems: 4, Versions: 6}},
		{"loose versions and a filesystem without versions", allFS[1:2], allLoose, api.ListResponse{Filesystems: 1, Versions: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := json.Marshal(tt.filesystems)
			body, resp, err := api.EncodeListing(tt.filesystems, tt.loose)
			if err != nil {
				t.Fatalf("EncodeListing: %v", err)
			}
			if after, _ := json.Marshal(tt.filesystems); !bytes.Equal(before, after) {
				t.Errorf("EncodeListing modified its argument")
			}
			if resp != tt.want {
				t.Errorf("EncodeListing counts %+v; want %+v", resp, tt.want)
			}
			if n := bytes.Count(body, []byte("\n")); n != resp.Filesystems+resp.Versions {
				t.Errorf("body has %d lines; want one per record, %d:\n%s", n, resp.Filesystems+resp.Versions, body)
			}
			fs, loose, err := api.ReadListing(bytes.NewReader(body), resp)
			if err != nil {
				t.Fatalf("ReadListing: %v\n%s", err, body)
			}
			if !listingEqual(fs, tt.filesystems) || !versionsEqual(loose, tt.loose) {
				t.Errorf("ReadListing =\n%+v\n%+v\nwant\n%+v\n%+v\nbody:\n%s", fs, loose, tt.filesystems, tt.loose, body)
			}
		})
	}
}

// listingEqual compares filesystems, treating nil and empty version lists alike.
func listingEqual(a, b []api.Filesystem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Type != b[i].Type || !versionsEqual(a[i].Versions, b[i].Versions) {
			return false
		}
	}
	return true
}

func versionsEqual(a, b []api.Version) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.Type != y.Type || x.GUID != y.GUID || x.CreateTXG != y.CreateTXG || !x.Creation.Equal(y.Creation) {
			return false
		}
	}
	return true
}

func TestListingWireFormat(t *testing.T) {
	fs := []api.Filesystem{{Name: "tank/a", Type: "filesystem", Versions: []api.Version{
		{Name: "tank/a@s1", Type: api.TypeSnapshot, GUID: math.MaxUint64, CreateTXG: 9, Creation: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
	}}}
	body, resp, err := api.EncodeListing(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"filesystem":{"name":"tank/a","type":"filesystem"}}
{"version":{"name":"tank/a@s1","type":"snapshot","guid":"18446744073709551615","createtxg":9,"creation":"2024-05-06T07:08:09Z"}}
`
	if string(body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
	if resp != (api.ListResponse{Filesystems: 1, Versions: 1}) {
		t.Errorf("counts %+v", resp)
	}
}

const (
	fsLine = `{"filesystem":{"name":"tank/a","type":"filesystem"}}`
	vLine  = `{"version":{"name":"tank/a@s1","type":"snapshot","guid":"1","createtxg":1,"creation":"2024-01-01T00:00:00Z"}}`
)

// versionLine is a version record whose line is exactly n bytes long,
// without its newline.
func versionLine(t *testing.T, n int) string {
	t.Helper()
	short := len(`{"version":{"name":"tank/a@","type":"snapshot","guid":"1","createtxg":1,"creation":"2024-01-01T00:00:00Z"}}`)
	if n < short+1 {
		t.Fatalf("versionLine(%d) is too short", n)
	}
	line := `{"version":{"name":"tank/a@` + strings.Repeat("x", n-short) + `","type":"snapshot","guid":"1","createtxg":1,"creation":"2024-01-01T00:00:00Z"}}`
	if len(line) != n {
		t.Fatalf("versionLine: built %d bytes, want %d", len(line), n)
	}
	return line
}

func TestReadListingRefuses(t *testing.T) {
	long := versionLine(t, api.MaxRecordBytes+1)
	tests := []struct {
		name string
		body string
		resp api.ListResponse
		want string // in the error
	}{
		{"truncated listing", fsLine + "\n" + vLine + "\n", api.ListResponse{Filesystems: 1, Versions: 2}, "announced"},
		{"truncated to nothing", "", api.ListResponse{Filesystems: 1}, "announced"},
		{"more filesystems than announced", fsLine + "\n" + fsLine + "\n", api.ListResponse{Filesystems: 1}, "announced"},
		{"more versions than announced", vLine + "\n" + vLine + "\n", api.ListResponse{Versions: 1}, "announced"},
		{"negative count", "", api.ListResponse{Filesystems: -1}, "announced"},
		{"unknown record field", `{"filesystem":{"name":"tank/a","type":"filesystem"},"extra":1}` + "\n", api.ListResponse{Filesystems: 1}, "unknown field"},
		{"unknown filesystem field", `{"filesystem":{"name":"tank/a","type":"filesystem","mountpoint":"/"}}` + "\n", api.ListResponse{Filesystems: 1}, "unknown field"},
		{"unknown version field", `{"version":{"name":"tank/a@s1","type":"snapshot","guid":"1","userrefs":0}}` + "\n", api.ListResponse{Versions: 1}, "unknown field"},
		// Versions travel as their own records, counted; a filesystem
		// record does not carry them.
		{"versions inside a filesystem record", `{"filesystem":{"name":"tank/a","type":"filesystem","versions":[{"name":"tank/a@s1","type":"snapshot","guid":"1"}]}}` + "\n", api.ListResponse{Filesystems: 1}, "unknown field"},
		{"both", `{"filesystem":{"name":"tank/a","type":"filesystem"},"version":{"name":"tank/a@s1","type":"snapshot","guid":"1"}}` + "\n", api.ListResponse{Filesystems: 1, Versions: 1}, "neither one filesystem nor one version"},
		{"neither", `{}` + "\n", api.ListResponse{}, "neither one filesystem nor one version"},
		{"null record", "null\n", api.ListResponse{}, "neither one filesystem nor one version"},
		{"null members", `{"filesystem":null,"version":null}` + "\n", api.ListResponse{}, "neither one filesystem nor one version"},
		{"line over MaxRecordBytes", long + "\n", api.ListResponse{Versions: 1}, "longer than"},
		{"last line over MaxRecordBytes without newline", long, api.ListResponse{Versions: 1}, "longer than"},
		{"two records on one line", fsLine + " " + vLine + "\n", api.ListResponse{Filesystems: 1, Versions: 1}, "line 1"},
		{"garbage after the record", fsLine + "x\n", api.ListResponse{Filesystems: 1}, "line 1"},
		{"empty line", fsLine + "\n\n", api.ListResponse{Filesystems: 1}, "line 2"},
		{"not JSON", "hello\n", api.ListResponse{}, "line 1"},
		{"an array", "[]\n", api.ListResponse{}, "line 1"},
		{"numeric guid", `{"version":{"name":"tank/a@s1","type":"snapshot","guid":1}}` + "\n", api.ListResponse{Versions: 1}, "guid"},
		{"bad creation", `{"version":{"name":"tank/a@s1","type":"snapshot","guid":"1","creation":"yesterday"}}` + "\n", api.ListResponse{Versions: 1}, "line 1"},
		{"bad line after good ones", fsLine + "\n" + vLine + "\n{\n", api.ListResponse{Filesystems: 1, Versions: 2}, "line 3"},
		{"a cursor name with a dataset", fsLine + "\n", api.ListResponse{Filesystems: 1, Cursor: "tank/a#c"}, "cursor"},
		{"a cursor name too long", fsLine + "\n", api.ListResponse{Filesystems: 1, Cursor: strings.Repeat("c", 256)}, "cursor"},
		// A client of the records' first version reads them strictly; the
		// cursor mark is in the header only.
		{"a cursor mark in a record", `{"version":{"name":"tank/a#c","type":"bookmark","guid":"1","createtxg":1,"creation":"2024-01-01T00:00:00Z","cursor":true}}` + "\n", api.ListResponse{Versions: 1}, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, vs, err := api.ReadListing(strings.NewReader(tt.body), tt.resp)
			if err == nil {
				t.Fatalf("ReadListing accepted it: %+v %+v", fs, vs)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if fs != nil || vs != nil {
				t.Errorf("ReadListing returned records with its error: %+v %+v", fs, vs)
			}
		})
	}
}

// TestListingCursor: the header's cursor name marks that bookmark of each
// dataset, and nothing else; the records never carry the mark.
func TestListingCursor(t *testing.T) {
	bm := func(name string) api.Version {
		return api.Version{Name: name, Type: api.TypeBookmark, GUID: 1, CreateTXG: 1}
	}
	fs := []api.Filesystem{{Name: "tank/a", Type: "filesystem", Versions: []api.Version{
		bm("tank/a#zrep_cursor_b"), bm("tank/a#zrep_cursor_b_next"), bm("tank/a#xzrep_cursor_b"),
		{Name: "tank/a@zrep_cursor_b", Type: api.TypeSnapshot, GUID: 2, CreateTXG: 2},
	}}}
	fs[0].Versions[0].Cursor = true // not on the wire
	body, resp, err := api.EncodeListing(fs, []api.Version{bm("tank/b#zrep_cursor_b")})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("cursor\"")) {
		t.Errorf("a record carries the mark:\n%s", body)
	}
	for _, name := range []string{"", "zrep_cursor_b"} {
		resp.Cursor = name
		got, loose, err := api.ReadListing(bytes.NewReader(body), resp)
		if err != nil {
			t.Fatal(err)
		}
		var marked []string
		for _, v := range append(loose, got[0].Versions...) {
			if v.Cursor {
				marked = append(marked, v.Name)
			}
		}
		var want []string
		if name != "" {
			want = []string{"tank/b#zrep_cursor_b", "tank/a#zrep_cursor_b"}
		}
		if !reflect.DeepEqual(marked, want) {
			t.Errorf("cursor %q: marked %q, want %q", name, marked, want)
		}
	}
}

func TestReadListingLineLimit(t *testing.T) {
	// A line of exactly MaxRecordBytes (not counting its newline) is fine,
	// whether or not it is the last one and ends in a newline.
	line := versionLine(t, api.MaxRecordBytes)
	for _, tt := range []struct {
		body string
		resp api.ListResponse
	}{
		{line + "\n", api.ListResponse{Versions: 1}},
		{line, api.ListResponse{Versions: 1}},
		{line + "\r\n", api.ListResponse{Versions: 1}},
		{fsLine + "\n" + line + "\n" + line, api.ListResponse{Filesystems: 1, Versions: 2}},
	} {
		body := tt.body
		if _, _, err := api.ReadListing(strings.NewReader(body), tt.resp); err != nil {
			t.Errorf("ReadListing of a %d-byte body: %v", len(body), err)
		}
	}
}

func TestEncodeListingRefusesLongRecords(t *testing.T) {
	// What ReadListing would refuse, EncodeListing refuses to produce.
	name := "tank/a@" + strings.Repeat("x", api.MaxRecordBytes)
	if _, _, err := api.EncodeListing(nil, []api.Version{{Name: name, Type: api.TypeSnapshot}}); err == nil {
		t.Error("EncodeListing produced a record ReadListing refuses")
	}
	// JSON escaping counts: 11000 '<' are 66000 bytes escaped.
	name = "tank/a@" + strings.Repeat("<", 11000)
	if _, _, err := api.EncodeListing([]api.Filesystem{{Name: name}}, nil); err == nil {
		t.Error("EncodeListing produced a record ReadListing refuses")
	}
}

// errReader fails after its data.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestReadListingReaderError(t *testing.T) {
	boom := fmt.Errorf("connection lost")
	_, _, err := api.ReadListing(&errReader{r: strings.NewReader(fsLine + "\n"), err: boom}, api.ListResponse{Filesystems: 1})
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("ReadListing over a failing reader: %v; want its error", err)
	}
}

func TestReadListingMethodNames(t *testing.T) {
	// The wire names are part of the protocol.
	if api.MethodListFilesystems != "ListFilesystems" || api.MethodListVersions != "ListVersions" || api.MethodSend != "Send" {
		t.Error("method names changed")
	}
	b, _ := json.Marshal(api.ListResponse{Filesystems: 2, Versions: 3})
	if string(b) != `{"filesystems":2,"versions":3}` {
		t.Errorf("ListResponse = %s", b)
	}
	b, _ = json.Marshal(api.ListFilesystemsRequest{WithVersions: true})
	if string(b) != `{"with_versions":true}` {
		t.Errorf("ListFilesystemsRequest = %s", b)
	}
	b, _ = json.Marshal(api.ListVersionsRequest{Dataset: "tank/a"})
	if string(b) != `{"dataset":"tank/a"}` {
		t.Errorf("ListVersionsRequest = %s", b)
	}
	v := api.Version{Name: "tank/a@s2", Type: api.TypeSnapshot, GUID: 5, CreateTXG: 6, Creation: time.Unix(7, 0).UTC()}
	b, _ = json.Marshal(api.SendResponse{To: v})
	if string(b) != `{"to":{"name":"tank/a@s2","type":"snapshot","guid":"5","createtxg":6,"creation":"1970-01-01T00:00:07Z"}}` {
		t.Errorf("SendResponse = %s", b)
	}
	var back api.SendResponse
	if err := json.Unmarshal(b, &back); err != nil || back.From != nil || !reflect.DeepEqual(back.To, v) {
		t.Errorf("SendResponse round trip: %+v, %v", back, err)
	}
}

// FuzzReadListing checks that ReadListing never panics, and that whatever
// it accepts re-encodes to a listing with the same counts that reads back
// to the same records.
func FuzzReadListing(f *testing.F) {
	fs, loose := sample()
	body, resp, err := api.EncodeListing(fs, loose)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, resp.Filesystems, resp.Versions)
	body, resp, _ = api.EncodeListing(fs, nil)
	f.Add(body, resp.Filesystems, resp.Versions)
	body, resp, _ = api.EncodeListing(nil, loose)
	f.Add(body, resp.Filesystems, resp.Versions)
	f.Add([]byte(""), 0, 0)
	f.Add([]byte(fsLine+"\n"+vLine+"\n"), 1, 1)
	f.Add([]byte(fsLine+"\r\n"+vLine), 1, 1)
	f.Add([]byte(fsLine+" "+vLine+"\n"), 1, 1)
	f.Add([]byte(`{"FileSystem":{"NAME":"a","type":"filesystem"}}`+"\n"), 1, 0)
	f.Add([]byte(`{"version":{"name":"a@b","creation":"2024-01-01T00:00:00+14:00","guid":"18446744073709551615"}}`+"\n"), 0, 1)
	f.Add([]byte(`{"version":{"name":"<\u2028>","creation":"0000-01-01T00:00:00-01:00"}}`+"\n"), 0, 1)
	f.Add([]byte(`{"filesystem":{"name":"a","versions":[{}]}}`+"\n"), 1, 0)
	f.Add([]byte("{}\n"), 0, 0)
	f.Fuzz(func(t *testing.T, data []byte, nfs, nvs int) {
		resp := api.ListResponse{Filesystems: nfs, Versions: nvs}
		fs, loose, err := api.ReadListing(bytes.NewReader(data), resp)
		if err != nil {
			if fs != nil || loose != nil {
				t.Fatalf("records returned with an error: %v", err)
			}
			return
		}
		body, resp2, err := api.EncodeListing(fs, loose)
		if err != nil {
			t.Fatalf("ReadListing accepted what EncodeListing cannot encode: %v\n%q", err, data)
		}
		if resp2 != resp {
			t.Fatalf("re-encoded counts %+v; the accepted listing announced %+v\n%q", resp2, resp, data)
		}
		fs2, loose2, err := api.ReadListing(bytes.NewReader(body), resp2)
		if err != nil {
			t.Fatalf("ReadListing refuses the re-encoding of what it accepted: %v\n%q\n%q", err, data, body)
		}
		if !listingEqual(fs, fs2) || !versionsEqual(loose, loose2) {
			t.Fatalf("re-encoding changed the records:\n%+v %+v\n%+v %+v", fs, loose, fs2, loose2)
		}
		body2, resp3, err := api.EncodeListing(fs2, loose2)
		if err != nil || resp3 != resp2 || !bytes.Equal(body, body2) {
			t.Fatalf("encoding is not stable: %v\n%q\n%q", err, body, body2)
		}
	})
}

// A source cannot make the puller hold an unbounded listing.
func TestReadListingRefusesHugeAnnouncements(t *testing.T) {
	_, _, err := api.ReadListing(strings.NewReader(""), api.ListResponse{Filesystems: api.MaxListingRecords, Versions: 1})
	if err == nil || !strings.Contains(err.Error(), "announced") {
		t.Fatalf("ReadListing of %d announced records: %v", api.MaxListingRecords+1, err)
	}
}
