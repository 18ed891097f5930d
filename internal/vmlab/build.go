package vmlab

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"
)

// Image is a built guest in the cache.
type Image struct {
	Dir     string // CacheDir/openzfs-VERSION-KEY
	Root    string // ext4 root file system (raw, sparse)
	Kernel  string
	Initrd  string
	Key     string // private ssh key for root in the guest
	Version Version
}

func imageAt(dir string, v Version) *Image {
	return &Image{Dir: dir, Root: filepath.Join(dir, "root.img"), Kernel: filepath.Join(dir, "vmlinuz"),
		Initrd: filepath.Join(dir, "initrd.img"), Key: filepath.Join(dir, "id_ed25519"), Version: v}
}

// Plan is what an image of a version would be built from right now.
type Plan struct {
	Version  Version
	Sources  []string // apt source lines of the image
	Resolved []string // "package=version" of everything installed beyond the apt variant
	CacheKey string
}

// Dir is where the image of the plan is (or will be) cached.
func (p *Plan) Dir() string {
	return filepath.Join(CacheDir, fmt.Sprintf("openzfs-%s-%s", p.Version.Name, p.CacheKey))
}

// Kernel and ZFS are the guest's kernel and OpenZFS package versions.
func (p *Plan) Kernel() string { return p.find("linux-image-", "-amd64") }
func (p *Plan) ZFS() string    { return p.find("zfs-dkms", "") }

func (p *Plan) find(prefix, suffix string) string {
	for _, r := range p.Resolved {
		name, ver, _ := strings.Cut(r, "=")
		if strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix) && name != "linux-image-amd64" {
			return name + " " + ver
		}
	}
	return ""
}

// NewPlan reads the host's apt sources and asks apt, with a private state
// under CacheDir/apt (the host's apt configuration is never changed), which
// version of every package the image would install.
func NewPlan(v Version, log *Log) (*Plan, error) {
	host, err := HostSources("/")
	if err != nil {
		return nil, err
	}
	lines, err := v.SourceLines(host)
	if err != nil {
		return nil, err
	}
	p := &Plan{Version: v, Sources: lines}
	err = log.Phase("resolve package versions for OpenZFS "+v.Name, func() error {
		p.Resolved, err = resolve(v, lines)
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.CacheKey, err = CacheKey(v, lines, p.Resolved); err != nil {
		return nil, err
	}
	log.Printf("guest: %s, %s; %d packages; cache key %s", p.Kernel(), p.ZFS(), len(p.Resolved), p.CacheKey)
	return p, nil
}

// resolve runs `apt-get install --simulate` of the Essential packages, apt
// and Packages against an empty package database with the image's sources,
// and returns the sorted "name=version" of every package it would install.
func resolve(v Version, sources []string) ([]string, error) {
	dir := filepath.Join(CacheDir, "apt", v.Name)
	for _, d := range []string{"lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/preferences.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, errors.Wrap(err, "apt state for resolving")
		}
	}
	files := map[string]string{
		"status":           "",
		"etc/sources.list": strings.Join(sources, "\n") + "\n",
		"etc/preferences":  v.Preferences(),
		"apt.conf": fmt.Sprintf(`APT::Architecture "amd64";
APT::Architectures "amd64";
APT::Install-Recommends "false";
Dir::State::Lists "%[1]s/lists";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Preferences "%[1]s/etc/preferences";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
`, dir),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return nil, errors.Wrap(err, "apt state for resolving")
		}
	}
	env := append(os.Environ(), "APT_CONFIG="+filepath.Join(dir, "apt.conf"), "LC_ALL=C")
	update := exec.Command("apt-get", "-q", "update")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return nil, errors.Wrapf(err, "apt-get update with the image's sources:\n%s", out)
	}
	// mmdebstrap's apt variant is the Essential packages and apt.
	sim := exec.Command("apt-get", "install", "--simulate", "-q", "-y", "--no-install-recommends", "?essential", "apt")
	sim.Args = append(sim.Args, Packages...)
	sim.Env = env
	out, err := sim.CombinedOutput()
	if err != nil {
		return nil, errors.Wrapf(err, "apt-get install --simulate:\n%s", out)
	}
	resolved := parseSimulation(string(out))
	if len(resolved) == 0 {
		return nil, errors.Errorf("apt-get install --simulate installs nothing:\n%s", out)
	}
	return resolved, nil
}

// parseSimulation returns the sorted "name=version" of the "Inst" lines of
// `apt-get install --simulate`: "Inst name (version suite [arch])".
func parseSimulation(out string) []string {
	var pkgs []string
	scanLines(out, func(line string) {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "Inst" || !strings.HasPrefix(f[2], "(") {
			return
		}
		pkgs = append(pkgs, f[1]+"="+strings.TrimPrefix(f[2], "("))
	})
	sort.Strings(pkgs)
	return pkgs
}

// Cached returns the plan's image if it is in the cache.
func (p *Plan) Cached() (*Image, bool) {
	img := imageAt(p.Dir(), p.Version)
	for _, f := range []string{img.Root, img.Kernel, img.Initrd, img.Key} {
		if _, err := os.Stat(f); err != nil {
			return nil, false
		}
	}
	return img, true
}

// debCache holds the downloaded packages, shared by every build so that
// building both versions downloads each package once.
var debCache = filepath.Join(CacheDir, "debs")

// rootImageSize is the apparent size of the guest's root file system; the
// tests' pools are sparse files on it.
const rootImageSize = 8 << 30

// Build builds the plan's image into the cache (unless it is there) and
// returns it: mmdebstrap a root file system, build the zfs module for the
// guest's kernel, install the init script and the lab's ssh key, make an
// ext4 image of it.
func (p *Plan) Build(log *Log) (*Image, error) {
	if img, ok := p.Cached(); ok {
		log.Printf("image cached in %s", img.Dir)
		return img, nil
	}
	for _, tool := range []string{"mmdebstrap", "mkfs.ext4", "ssh-keygen", "qemu-img", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, errors.Errorf("%s is missing (apt-get install mmdebstrap e2fsprogs openssh-client qemu-utils qemu-system-x86)", tool)
		}
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return nil, errors.Wrap(err, "image cache")
	}
	work, err := os.MkdirTemp(CacheDir, fmt.Sprintf("build-%s-", p.Version.Name))
	if err != nil {
		return nil, errors.Wrap(err, "build directory")
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	hooks := filepath.Join(work, "hooks")
	if err := writeRecipeFiles(hooks); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(debCache, 0o755); err != nil {
		return nil, errors.Wrap(err, "package cache")
	}

	args := []string{"--variant=apt", "--mode=root", "--format=directory",
		"--include=" + strings.Join(Packages, ","),
		"--aptopt=APT::Install-Recommends \"false\"",
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--skip=essential/unlink",
		"--setup-hook=" + filepath.Join(hooks, "setup.sh") + ` "$1"`,
		"--setup-hook=sync-in " + debCache + " /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives " + debCache,
		"--customize-hook=" + filepath.Join(hooks, "customize.sh") + ` "$1"`,
		Suite, root}
	args = append(args, p.Sources...)
	err = log.Phase("mmdebstrap "+Suite+" with OpenZFS "+p.Version.Name+" (dkms builds the module)", func() error {
		cmd := exec.Command("mmdebstrap", args...)
		cmd.Env = append(os.Environ(), "ZREP_LAB_PREFERENCES="+p.Version.Preferences(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log.Out, log.Out
		return errors.Wrap(cmd.Run(), "mmdebstrap")
	})
	if err != nil {
		return nil, err
	}

	out := filepath.Join(work, "image")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, errors.Wrap(err, "image directory")
	}
	img := imageAt(out, p.Version)
	err = log.Phase("configure the guest", func() error { return configureGuest(root, img, p) })
	if err != nil {
		return nil, err
	}
	err = log.Phase("make the ext4 root image", func() error {
		if err := sparseFile(img.Root, rootImageSize); err != nil {
			return err
		}
		cmd := exec.Command("mkfs.ext4", "-q", "-F", "-L", "zrep-lab", "-E", "root_owner=0:0", "-d", root, img.Root)
		if b, err := cmd.CombinedOutput(); err != nil {
			return errors.Wrapf(err, "mkfs.ext4 -d: %s", b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := os.Rename(out, p.Dir()); err != nil {
		return nil, errors.Wrap(err, "moving the image into the cache")
	}
	log.Printf("image cached in %s", p.Dir())
	return imageAt(p.Dir(), p.Version), nil
}

// writeRecipeFiles writes the recipe's guest files (hooks, init) into dir.
func writeRecipeFiles(dir string) error {
	return fs.WalkDir(recipe, "guest", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := recipe.ReadFile(path)
		if err != nil {
			return errors.Wrap(err, "reading the recipe")
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, "guest/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return errors.Wrap(err, "writing the recipe")
		}
		return errors.Wrap(os.WriteFile(dst, b, 0o755), "writing the recipe")
	})
}

// configureGuest installs the init script and the lab's key into the root
// file system, takes its kernel and initrd out, and writes a manifest of
// what the image holds; it checks that what got installed is what the
// plan resolved (a package the simulation chose may be left out for another
// that provides it).
func configureGuest(root string, img *Image, p *Plan) error {
	kvers, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil || len(kvers) != 1 {
		return errors.Errorf("expected exactly one kernel in the guest's /lib/modules (%v)", err)
	}
	kver := kvers[0].Name()
	for src, dst := range map[string]string{"boot/vmlinuz-" + kver: img.Kernel, "boot/initrd.img-" + kver: img.Initrd} {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return errors.Wrap(err, "guest kernel")
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return errors.Wrap(err, "guest kernel")
		}
	}
	init, err := recipe.ReadFile("guest/init")
	if err != nil {
		return errors.Wrap(err, "reading the recipe")
	}
	if err := os.WriteFile(filepath.Join(root, "sbin", "zrep-init"), init, 0o755); err != nil {
		return errors.Wrap(err, "installing the init script")
	}
	if b, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zrep-lab", "-f", img.Key).CombinedOutput(); err != nil {
		return errors.Wrapf(err, "ssh-keygen: %s", b)
	}
	pub, err := os.ReadFile(img.Key + ".pub")
	if err != nil {
		return errors.Wrap(err, "lab key")
	}
	sshDir := filepath.Join(root, "root", ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return errors.Wrap(err, "root's .ssh")
	}
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), pub, 0o600); err != nil {
		return errors.Wrap(err, "root's authorized_keys")
	}
	for name, content := range map[string]string{
		"etc/hostname": "zrep-lab\n",
		"etc/hosts":    "127.0.0.1 localhost\n127.0.1.1 zrep-lab\n",
		"etc/fstab":    "/dev/vda / ext4 rw 0 1\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return errors.Wrap(err, "guest configuration")
		}
	}

	q := exec.Command("chroot", root, "dpkg-query", "-W", "-f", "${Package}=${Version}\n")
	installed, err := q.Output()
	if err != nil {
		return errors.Wrap(err, "dpkg-query in the guest")
	}
	have := map[string]string{}
	scanLines(string(installed), func(l string) {
		name, version, _ := strings.Cut(l, "=")
		have[name] = version
	})
	var differ []string
	for _, r := range p.Resolved {
		name, version, _ := strings.Cut(r, "=")
		if v, ok := have[name]; ok && v != version {
			differ = append(differ, fmt.Sprintf("%s %s (resolved %s)", name, v, version))
		}
	}
	if len(differ) > 0 {
		return errors.Errorf("the guest has other package versions than resolved (the mirror changed during the build?): %s", strings.Join(differ, ", "))
	}
	manifest := fmt.Sprintf("built %s\nkernel %s\n%s\n\nsources:\n%s\n\ninstalled:\n%s", time.Now().UTC().Format(time.RFC3339),
		kver, p.ZFS(), strings.Join(p.Sources, "\n"), installed)
	return errors.Wrap(os.WriteFile(filepath.Join(img.Dir, "manifest.txt"), []byte(manifest), 0o644), "manifest")
}
