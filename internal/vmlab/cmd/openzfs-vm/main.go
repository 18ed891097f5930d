// Command openzfs-vm drives the OpenZFS lab: qemu VMs with Debian's OpenZFS
// 2.1 or 2.3 kernel module, built from the host's Debian mirror.
//
//	openzfs-vm VERSION build          build the image (or find it in the cache)
//	openzfs-vm VERSION start          boot it, copy zrep-stdinserver in, print SSH_PORT= and SSH_KEY=
//	openzfs-vm VERSION ssh [CMD...]   run CMD (or a shell) as root in the guest
//	openzfs-vm VERSION stop           power it off and clean up
//	openzfs-vm VERSION shell          a root shell (starting and then stopping the VM if it was not running)
//	openzfs-vm VERSION test [PKG...]  run the ZFS and sshd test packages inside it
//
// VERSION is 2.1, 2.3, or (for build) all: both images in one pass that
// shares the downloaded packages.
package main

import (
	"fmt"
	"os"

	"github.com/zrep/zrep/internal/vmlab"
)

func main() {
	if err := vmlab.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "openzfs-vm:", err)
		os.Exit(vmlab.ExitCode(err))
	}
}
