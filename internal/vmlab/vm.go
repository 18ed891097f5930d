package vmlab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/errors"
)

// StateRoot holds one directory per running VM (per version): its qcow2
// overlay, spare disks, console log, pid file and ssh port.
const StateRoot = "/var/tmp/zrep-openzfs-vm"

// Guest settings: memory, CPUs and the spare disks (sparse) for pools.
const (
	guestMemoryMiB = 2048
	guestCPUs      = 2
	spareDisks     = 2
	spareDiskSize  = 2 << 30
	bootTimeout    = 5 * time.Minute
)

// CachedImage returns the image of v as it would be built now: from the
// cache, or built into it.
func CachedImage(v Version, log *Log) (*Image, error) {
	p, err := NewPlan(v, log)
	if err != nil {
		return nil, err
	}
	return p.Build(log)
}

// VM is a lab VM of one version, running or not.
type VM struct {
	Version Version
	Dir     string // state directory
}

// NewVM returns the VM of version v (its state directory is per version,
// so VMs of different versions run side by side).
func NewVM(v Version) *VM {
	return &VM{Version: v, Dir: filepath.Join(StateRoot, v.Name)}
}

func (vm *VM) path(name string) string { return filepath.Join(vm.Dir, name) }

// Port is the host port forwarded to the guest's sshd.
func (vm *VM) Port() (int, error) {
	b, err := os.ReadFile(vm.path("port"))
	if err != nil {
		return 0, errors.Errorf("the OpenZFS %s VM is not running (start it with: scripts/openzfs-vm %s start)", vm.Version.Name, vm.Version.Name)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// The host directory ShareDir is mounted read-only at GuestShare in the
// guest (virtio 9p): files go in without ssh's encryption, which costs a
// lot of emulated CPU.
const (
	shareTag   = "zrephost"
	GuestShare = "/mnt/host"
)

// ShareDir is the host side of the guest's GuestShare.
func (vm *VM) ShareDir() string { return vm.path("share") }

// KeyPath is the private key that logs in as root in the guest.
func (vm *VM) KeyPath() string { return vm.path("id_ed25519") }

// pid returns the qemu process id if qemu is running.
func (vm *VM) pid() (int, bool) {
	b, err := os.ReadFile(vm.path("qemu.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return pid, bytes.Contains(cmdline, []byte("qemu-system"))
}

// Running reports whether the VM's qemu is running.
func (vm *VM) Running() bool {
	_, ok := vm.pid()
	return ok
}

// Start boots the image on a qcow2 overlay (the cached image stays
// pristine) with two spare disks, waits for the guest's sshd, and copies
// zrepBinary (if not empty) to /usr/local/bin in the guest. If any of it
// fails, the VM is killed and its state removed.
func (vm *VM) Start(img *Image, zrepBinary string, log *Log) error {
	if vm.Running() {
		return errors.Errorf("the OpenZFS %s VM is already running (scripts/openzfs-vm %s stop)", vm.Version.Name, vm.Version.Name)
	}
	if err := os.RemoveAll(vm.Dir); err != nil {
		return errors.Wrap(err, "old VM state")
	}
	if err := os.MkdirAll(vm.Dir, 0o700); err != nil {
		return errors.Wrap(err, "VM state")
	}
	started := false
	defer func() { // a failed start leaves nothing running or behind
		if !started {
			vm.kill()
			_ = os.RemoveAll(vm.Dir)
		}
	}()
	err := log.Phase("prepare disks", func() error {
		overlay := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", img.Root, "-F", "raw", vm.path("root.qcow2"))
		if out, err := overlay.CombinedOutput(); err != nil {
			return errors.Wrapf(err, "qemu-img create: %s", out)
		}
		for i := 1; i <= spareDisks; i++ {
			if err := sparseFile(vm.path(fmt.Sprintf("disk%d.img", i)), spareDiskSize); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(vm.ShareDir(), 0o755); err != nil {
			return errors.Wrap(err, "shared directory")
		}
		key, err := os.ReadFile(img.Key)
		if err != nil {
			return errors.Wrap(err, "lab key")
		}
		return errors.Wrap(os.WriteFile(vm.KeyPath(), key, 0o600), "lab key")
	})
	if err != nil {
		return err
	}
	var port int
	err = log.Phase("boot the VM (qemu TCG) and wait for ssh", func() error {
		start := time.Now()
		// The free port may be taken between choosing and qemu binding it: retry.
		for attempt := 0; ; attempt++ {
			port, err = freePort()
			if err != nil {
				return err
			}
			err = vm.launch(img, port)
			if err == nil || attempt == 4 {
				break
			}
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(vm.path("port"), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
			return errors.Wrap(err, "VM state")
		}
		if err := vm.waitSSH(bootTimeout); err != nil {
			return errors.Wrapf(err, "console:\n%s", tail(vm.path("console.log"), 40))
		}
		log.Printf("guest answered ssh after %s", time.Since(start).Round(100*time.Millisecond))
		_, err := vm.Run(fmt.Sprintf("modprobe 9pnet_virtio && modprobe 9p && mkdir -p %[1]s && mount -t 9p -o trans=virtio,version=9p2000.L,ro %s %[1]s", GuestShare, shareTag))
		return errors.Wrap(err, "mounting the shared directory")
	})
	if err != nil {
		return err
	}
	if zrepBinary != "" {
		err = log.Phase("copy zrep-stdinserver to /usr/local/bin in the guest", func() error {
			return vm.CopyIn(zrepBinary, "/usr/local/bin/zrep-stdinserver")
		})
	}
	started = err == nil
	return err
}

// launch starts qemu in the background on the given ssh port.
func (vm *VM) launch(img *Image, port int) error {
	args := []string{
		"-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max",
		"-smp", strconv.Itoa(guestCPUs), "-m", strconv.Itoa(guestMemoryMiB),
		"-display", "none", "-monitor", "none", "-no-reboot",
		"-serial", "file:" + vm.path("console.log"),
		"-kernel", img.Kernel, "-initrd", img.Initrd,
		"-append", "root=/dev/vda rw rootfstype=ext4 console=ttyS0 init=/sbin/zrep-init panic=-1 quiet loglevel=3 mitigations=off net.ifnames=0",
		"-drive", "file=" + vm.path("root.qcow2") + ",if=virtio,format=qcow2,cache=unsafe,discard=unmap",
	}
	for i := 1; i <= spareDisks; i++ {
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=virtio,format=raw,cache=unsafe,discard=unmap", vm.path(fmt.Sprintf("disk%d.img", i))))
	}
	args = append(args,
		"-virtfs", fmt.Sprintf("local,path=%s,mount_tag=%s,security_model=none,readonly=on", vm.ShareDir(), shareTag),
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", port),
		"-device", "virtio-net-pci,netdev=n0,romfile=",
		"-device", "virtio-rng-pci",
		"-pidfile", vm.path("qemu.pid"), "-daemonize")
	cmd := exec.Command("qemu-system-x86_64", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.Wrapf(err, "qemu-system-x86_64: %s", out)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, errors.Wrap(err, "finding a free port")
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sshArgs are the arguments of ssh that log in as root in the guest.
func (vm *VM) sshArgs(extra ...string) ([]string, error) {
	port, err := vm.Port()
	if err != nil {
		return nil, err
	}
	args := []string{"-p", strconv.Itoa(port), "-i", vm.KeyPath(),
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8"}
	args = append(args, extra...)
	return append(args, "root@127.0.0.1"), nil
}

// Command returns an ssh command running script (a shell command line) as
// root in the guest.
func (vm *VM) Command(ctx context.Context, script string) (*exec.Cmd, error) {
	args, err := vm.sshArgs()
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "ssh", append(args, "--", script)...), nil
}

// Run runs script in the guest and returns its combined output.
func (vm *VM) Run(script string) (string, error) {
	cmd, err := vm.Command(context.Background(), script)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), errors.Wrapf(err, "in the guest: %s: %s", script, out)
	}
	return string(out), nil
}

// CopyIn copies a host file or directory into the guest as dst (replacing
// it), through the shared directory.
func (vm *VM) CopyIn(src, dst string) error {
	staged, err := os.MkdirTemp(vm.ShareDir(), "in-")
	if err != nil {
		return errors.Wrap(err, "shared directory")
	}
	defer os.RemoveAll(staged)
	if out, err := exec.Command("cp", "-a", src, filepath.Join(staged, "x")).CombinedOutput(); err != nil {
		return errors.Wrapf(err, "copying %s: %s", src, out)
	}
	guestSrc := GuestShare + "/" + filepath.Base(staged) + "/x"
	_, err = vm.Run(fmt.Sprintf("rm -rf %[2]s.tmp && cp -a %[1]s %[2]s.tmp && rm -rf %[2]s && mv %[2]s.tmp %[2]s", shellQuote(guestSrc), shellQuote(dst)))
	return errors.Wrapf(err, "copying %s to the guest's %s", src, dst)
}

// waitSSH polls the guest's sshd until a command runs, qemu dies, or timeout.
func (vm *VM) waitSSH(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if !vm.Running() {
			return errors.New("qemu exited during boot")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd, err := vm.Command(ctx, "test -e /dev/zfs")
		if err != nil {
			cancel()
			return err
		}
		out, err := cmd.CombinedOutput()
		cancel()
		if err == nil {
			return nil
		}
		last = errors.Wrapf(err, "%s", out)
		time.Sleep(time.Second)
	}
	return errors.Wrapf(last, "no ssh (with /dev/zfs) in the guest after %s", timeout)
}

// Stop syncs and powers off the guest (sysrq o), waits for qemu to exit
// (killing it after 20 s), and removes the VM's state.
func (vm *VM) Stop(log *Log) error {
	if !vm.Running() {
		log.Printf("the OpenZFS %s VM is not running", vm.Version.Name)
		return errors.Wrap(os.RemoveAll(vm.Dir), "removing VM state")
	}
	return log.Phase("stop the OpenZFS "+vm.Version.Name+" VM", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if cmd, err := vm.Command(ctx, "sync; echo o > /proc/sysrq-trigger"); err == nil {
			_ = cmd.Run() // the connection dies with the guest
		}
		for deadline := time.Now().Add(20 * time.Second); vm.Running() && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		vm.kill()
		return errors.Wrap(os.RemoveAll(vm.Dir), "removing VM state")
	})
}

// kill ends qemu if it still runs.
func (vm *VM) kill() {
	pid, ok := vm.pid()
	if !ok {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); vm.Running() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if vm.Running() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
