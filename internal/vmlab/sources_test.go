package vmlab

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
URIs: http://sec.example.org/debian-security
  http://sec2.example.org/debian-security
Suites: bookworm-security
Components: main
`

func TestParseDeb822(t *testing.T) {
	got := ParseDeb822(deb822)
	want := []Source{
		{URI: "http://deb.example.org/debian", Suites: []string{"bookworm", "bookworm-updates"}},
		{URI: "http://sec.example.org/debian-security", Suites: []string{"bookworm-security"}},
		{URI: "http://sec2.example.org/debian-security", Suites: []string{"bookworm-security"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestParseOneLine(t *testing.T) {
	text := `# a comment
deb http://deb.example.org/debian bookworm main contrib
deb-src http://deb.example.org/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://sec.example.org/debian-security bookworm-security main # trailing
deb [trusted=yes] http://local.example.org/ ./
deb http://broken.example.org/
`
	got := ParseOneLine(text)
	want := []Source{
		{URI: "http://deb.example.org/debian", Suites: []string{"bookworm"}},
		{URI: "http://sec.example.org/debian-security", Suites: []string{"bookworm-security"}},
		{URI: "http://local.example.org/", Suites: []string{"./"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestHostSourcesReadsBothFormats(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc", "apt", "sources.list.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "etc", "apt", "sources.list"), "deb http://one.example.org/debian bookworm main\n")
	write(filepath.Join(d, "debian.sources"), deb822)
	write(filepath.Join(d, "ignored.list.save"), "deb http://no.example.org/debian bookworm main\n")
	got, err := HostSources(root)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, s := range got {
		uris = append(uris, s.URI)
	}
	want := "http://one.example.org/debian http://deb.example.org/debian http://sec.example.org/debian-security http://sec2.example.org/debian-security"
	if strings.Join(uris, " ") != want {
		t.Fatalf("got %v, want %s", uris, want)
	}
}

func TestMirrors(t *testing.T) {
	archive, security, err := Mirrors(ParseDeb822(deb822), "bookworm")
	if err != nil || archive != "http://deb.example.org/debian" || security != "http://sec.example.org/debian-security" {
		t.Fatalf("got %q %q %v", archive, security, err)
	}
	if _, _, err := Mirrors(ParseDeb822(deb822), "trixie"); err == nil {
		t.Fatal("a suite no source carries gave no error")
	}
}

func TestSourceLines(t *testing.T) {
	host := ParseDeb822(deb822)
	v21, _ := LookupVersion("2.1")
	v23, _ := LookupVersion("2.3")
	strip := func(lines []string) string { // the signed-by option depends on the host
		return strings.ReplaceAll(strings.Join(lines, "\n"), "[signed-by="+keyring+"] ", "")
	}
	lines, err := v21.SourceLines(host)
	if err != nil {
		t.Fatal(err)
	}
	want := `deb http://deb.example.org/debian bookworm main contrib
deb http://deb.example.org/debian bookworm-updates main contrib
deb http://sec.example.org/debian-security bookworm-security main contrib`
	if strip(lines) != want {
		t.Fatalf("2.1:\n%s\nwant\n%s", strip(lines), want)
	}
	lines, err = v23.SourceLines(host)
	if err != nil {
		t.Fatal(err)
	}
	if got := strip(lines); got != want+"\ndeb http://deb.example.org/debian bookworm-backports main contrib" {
		t.Fatalf("2.3:\n%s", got)
	}
	if v21.Preferences() != "" || !strings.Contains(v23.Preferences(), "Pin: release n=bookworm-backports") {
		t.Fatalf("preferences: %q / %q", v21.Preferences(), v23.Preferences())
	}
}
