#!/bin/sh
# mmdebstrap customize hook ($1 is the new root file system, mounts in place):
# builds the zfs module for the guest's kernel. Inside the chroot `uname -r`
# is the host's kernel, so dkms is told which kernel to build for.
set -eu
root=$1
kvers=$(ls "$root/lib/modules")
[ "$(echo "$kvers" | wc -w)" -eq 1 ] || { echo "expected exactly one guest kernel, found: $kvers" >&2; exit 1; }
chroot "$root" dkms autoinstall -k "$kvers"
chroot "$root" dkms status -k "$kvers"
ls "$root/lib/modules/$kvers/updates/dkms/zfs.ko"* >/dev/null
chroot "$root" depmod "$kvers"
