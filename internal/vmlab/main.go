package vmlab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"golang.org/x/term"
)

const usage = `usage: openzfs-vm VERSION {build|start|ssh [CMD...]|stop|shell|test [PKG...]}
VERSION is 2.1 or 2.3; "all build" builds both images in one pass.`

// exitError carries an exit status other than 1 out of Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// ExitCode is the process exit status for an error returned by Main.
func ExitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// Main runs the openzfs-vm command line.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		return &exitError{2, errors.New(usage)}
	}
	log := &Log{Out: stderr}
	versions := Versions
	if args[0] == "all" {
		if args[1] != "build" {
			return &exitError{2, errors.New(`"all" works with build only`)}
		}
	} else {
		v, err := LookupVersion(args[0])
		if err != nil {
			return &exitError{2, err}
		}
		versions = []Version{v}
	}
	if args[1] == "build" {
		return buildAll(versions, log)
	}
	vm := NewVM(versions[0])
	switch args[1] {
	case "start":
		if len(args) != 2 {
			break
		}
		if err := start(vm, log); err != nil {
			return err
		}
		log.Printf("stop it with: scripts/openzfs-vm %s stop", vm.Version.Name)
		port, _ := vm.Port()
		fmt.Fprintf(stdout, "SSH_PORT=%d\nSSH_KEY=%s\n", port, vm.KeyPath())
		return nil
	case "ssh":
		return sshExec(vm, args[2:], stdin)
	case "stop":
		if len(args) != 2 {
			break
		}
		return vm.Stop(log)
	case "shell":
		if len(args) != 2 {
			break
		}
		return shell(vm, log)
	case "test":
		return test(vm, args[2:], stdout, log)
	}
	return &exitError{2, errors.Errorf("unknown command %q\n%s", strings.Join(args[1:], " "), usage)}
}

// buildAll builds the images of versions one after the other; they share
// the downloaded packages.
func buildAll(versions []Version, log *Log) error {
	for _, v := range versions {
		var img *Image
		err := log.Phase("build the OpenZFS "+v.Name+" image", func() (err error) {
			img, err = CachedImage(v, log)
			return err
		})
		if err != nil {
			return err
		}
		log.Printf("OpenZFS %s image: %s", v.Name, img.Dir)
	}
	return nil
}

// moduleRoot is the root of the zrep module the command runs in.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", errors.Wrap(err, "go env GOMOD")
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run openzfs-vm inside the zrep module (scripts/openzfs-vm does)")
	}
	return filepath.Dir(mod), nil
}

// start finds or builds the image, builds a static zrep-stdinserver and
// boots the VM with it installed.
func start(vm *VM, log *Log) error {
	total := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	img, err := CachedImage(vm.Version, log)
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "zrep-openzfs-vm-")
	if err != nil {
		return errors.Wrap(err, "temporary directory")
	}
	defer os.RemoveAll(bin)
	binary := filepath.Join(bin, "zrep-stdinserver")
	err = log.Phase("build a static zrep-stdinserver", func() error { return buildStatic(root, binary) })
	if err != nil {
		return err
	}
	if err := vm.Start(img, binary, log); err != nil {
		return err
	}
	log.Printf("OpenZFS %s VM up in %s", vm.Version.Name, time.Since(total).Round(100*time.Millisecond))
	return nil
}

// sshExec replaces the process with ssh into the guest: a shell (with a
// terminal when there is one), or the command, with stdin passed through.
func sshExec(vm *VM, command []string, stdin io.Reader) error {
	var extra []string
	if f, ok := stdin.(*os.File); ok && len(command) == 0 && term.IsTerminal(int(f.Fd())) {
		extra = append(extra, "-t")
	}
	args, err := vm.sshArgs(extra...)
	if err != nil {
		return err
	}
	if len(command) > 0 {
		args = append(args, "--")
		args = append(args, command...)
	}
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		return errors.Wrap(err, "ssh")
	}
	return errors.Wrap(syscall.Exec(ssh, append([]string{"ssh"}, args...), os.Environ()), "exec ssh")
}

// shell opens a root shell in the VM, starting it first and stopping it
// after the shell unless it was already running.
func shell(vm *VM, log *Log) error {
	if !vm.Running() {
		if err := start(vm, log); err != nil {
			return err
		}
		defer func() { _ = vm.Stop(log) }()
	}
	args, err := vm.sshArgs("-t")
	if err != nil {
		return err
	}
	cmd := exec.Command("ssh", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // the shell's own status
	}
	return errors.Wrap(err, "ssh")
}

// test runs the lab's test packages (all, or those named) in the VM,
// starting it first and stopping it after unless it was already running.
func test(vm *VM, only []string, stdout io.Writer, log *Log) error {
	total := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	pkgs, err := LabPackages(root)
	if err != nil {
		return err
	}
	if len(only) > 0 {
		var picked []TestPackage
		for _, p := range pkgs {
			for _, o := range only {
				if p.ImportPath == o || p.Dir == strings.TrimPrefix(strings.TrimSuffix(o, "/"), "./") {
					picked = append(picked, p)
				}
			}
		}
		if len(picked) != len(only) {
			return &exitError{2, errors.Errorf("test packages: %v; the lab's are %v", only, pkgs)}
		}
		pkgs = picked
	}
	stage, err := os.MkdirTemp("", "zrep-openzfs-tests-")
	if err != nil {
		return errors.Wrap(err, "temporary directory")
	}
	defer os.RemoveAll(stage)
	err = log.Phase(fmt.Sprintf("build zrep-stdinserver and %d test binaries (static, no cgo)", len(pkgs)), func() error {
		return BuildTests(root, stage, pkgs)
	})
	if err != nil {
		return err
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if !vm.Running() {
		img, err := CachedImage(vm.Version, log)
		if err != nil {
			return err
		}
		if err := vm.Start(img, "", log); err != nil {
			return err
		}
		defer func() { _ = vm.Stop(log) }()
	} else {
		log.Printf("using the running OpenZFS %s VM", vm.Version.Name)
	}
	err = log.Phase("copy the binaries into the guest", func() error {
		if err := vm.CopyIn(stage, guestTestDir); err != nil {
			return err
		}
		_, err := vm.Run("install -m 755 " + guestTestDir + "/zrep-stdinserver /usr/local/bin/zrep-stdinserver")
		return err
	})
	if err != nil {
		return err
	}
	zfsVersion, _ := vm.Run("zfs version 2>&1 | head -n 2 | tr '\\n' ' '")
	log.Printf("guest: %s", strings.TrimSpace(zfsVersion))

	var results []*PackageResult
	err = log.Phase("run the tests in the guest", func() error {
		for _, p := range pkgs {
			r, err := vm.RunTests(ctx, p, stdout)
			if err != nil {
				return err
			}
			results = append(results, r)
			if ctx.Err() != nil {
				return errors.Wrap(ctx.Err(), "interrupted")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	passed, failed, skipped := Totals(results)
	log.Printf("OpenZFS %s tests took %s in all", vm.Version.Name, time.Since(total).Round(time.Second))
	fmt.Fprintf(stdout, "openzfs-%s: %d passed, %d failed, %d skipped\n", vm.Version.Name, passed, failed, skipped)
	if failed > 0 || skipped > 0 {
		return &exitError{1, errors.Errorf("OpenZFS %s: %d failed, %d skipped", vm.Version.Name, failed, skipped)}
	}
	return nil
}
