#!/bin/sh
# mmdebstrap setup hook ($1 is the new root file system, still empty):
# configuration that must be in place before any package is installed.
set -eu
root=$1
# A small initramfs with exactly the modules the guest needs to mount its
# root: without this every later package regenerates a 29 MB one. (MODULES=dep
# would guess from the build host's root device, which a chroot cannot tell.)
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/zrep-lab.conf"
mkdir -p "$root/usr/share/initramfs-tools/modules.d"
printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$root/usr/share/initramfs-tools/modules.d/zrep-lab"
# The zfs packages come from the suite chosen by the recipe (backports for 2.3).
mkdir -p "$root/etc/apt/preferences.d"
cat >"$root/etc/apt/preferences.d/zrep-lab" <<PREF
${ZREP_LAB_PREFERENCES:-}
PREF
mkdir -p "$root/var/cache/apt/archives"
