package vmlab

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/pkg/errors"
)

// recipe holds everything that decides what an image contains: this file,
// the build code and the files installed into the guest. Their hash is part
// of the cache key, so editing any of them rebuilds the images (and editing
// the code that starts or stops VMs does not).
//
//go:embed recipe.go build.go guest
var recipe embed.FS

// Suite is the Debian release the guest is built from.
const Suite = "bookworm"

// CacheDir holds the built images (one directory per cache key) and the
// downloaded packages shared by all builds.
const CacheDir = "/var/cache/zrep"

// Version is one OpenZFS version the lab can run.
type Version struct {
	Name      string // "2.1"
	Backports bool   // the zfs packages come from bookworm-backports
}

// Versions are the OpenZFS versions Debian offers for bookworm.
var Versions = []Version{
	{Name: "2.1"},                  // bookworm: 2.1.11
	{Name: "2.3", Backports: true}, // bookworm-backports: 2.3.2
}

// LookupVersion returns the Version called name.
func LookupVersion(name string) (Version, error) {
	var names []string
	for _, v := range Versions {
		if v.Name == name {
			return v, nil
		}
		names = append(names, v.Name)
	}
	return Version{}, errors.Errorf("unknown OpenZFS version %q (have %s)", name, strings.Join(names, ", "))
}

// Packages are installed into every guest on top of mmdebstrap's apt
// variant: a kernel with headers for dkms, OpenZFS, OpenSSH, and the tools
// the init script and the tests use.
var Packages = []string{
	"linux-image-amd64", "linux-headers-amd64", "zfs-dkms", "zfsutils-linux",
	"openssh-server", "openssh-client", "mount", "udev", "kmod", "iproute2", "procps", "python3",
}

// zfsSource is the Debian source package of zfs-dkms and zfsutils-linux.
const zfsSource = "zfs-linux"

// keyring is Debian's archive keyring, named in the image's sources when present.
const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// SourceLines are the apt sources of the image for v: the host's Debian
// mirrors (suite, its updates and security) with contrib added, plus
// bookworm-backports when v takes zfs from there.
func (v Version) SourceLines(host []Source) ([]string, error) {
	archive, security, err := Mirrors(host, Suite)
	if err != nil {
		return nil, err
	}
	opts := ""
	if _, err := os.Stat(keyring); err == nil {
		opts = "[signed-by=" + keyring + "] "
	}
	line := func(uri, suite string) string {
		return fmt.Sprintf("deb %s%s %s main contrib", opts, uri, suite)
	}
	lines := []string{line(archive, Suite)}
	for _, s := range host {
		if s.URI != archive {
			continue
		}
		for _, suite := range s.Suites {
			if suite == Suite+"-updates" {
				lines = append(lines, line(archive, suite))
			}
		}
	}
	if security != "" {
		lines = append(lines, line(security, Suite+"-security"))
	}
	if v.Backports {
		lines = append(lines, line(archive, Suite+"-backports"))
	}
	return lines, nil
}

// Preferences is the apt preferences file of the image: the zfs packages
// from backports when v wants them, from the release otherwise.
func (v Version) Preferences() string {
	if !v.Backports {
		return ""
	}
	return fmt.Sprintf("Package: src:%s\nPin: release n=%s-backports\nPin-Priority: 990\n", zfsSource, Suite)
}

// recipeHash is the sha256 of every file of the recipe, in name order.
func recipeHash() (string, error) {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(recipe, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, path)
		}
		return err
	})
	if err != nil {
		return "", errors.Wrap(err, "listing the recipe")
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := recipe.ReadFile(n)
		if err != nil {
			return "", errors.Wrap(err, "reading the recipe")
		}
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CacheKey names an image: a hash of the recipe, the version, the apt
// sources and the exact version of every package the image installs.
func CacheKey(v Version, sources []string, resolved []string) (string, error) {
	rh, err := recipeHash()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nversion %s\n", rh, v.Name)
	for _, s := range sources {
		fmt.Fprintf(h, "source %s\n", s)
	}
	for _, p := range resolved {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}
