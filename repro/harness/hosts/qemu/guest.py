"""What runs inside a repro QEMU guest: the boot scripts baked into its image.

Model: no systemd, no cloud-init. The kernel (Debian's cloud kernel) boots a
tiny initramfs whose `/init` (static busybox) loads the virtio modules, mounts
the root disk (/dev/vda, a per-VM qcow2 overlay over the cached image) and
switches root to `/sbin/repro-init`. That script (the static busybox's shell,
every command one of its applets: under TCG an exec of a dynamic binary costs
0.1-0.15 s, and 25 of them took 3.7 s of each boot; now 0.9 s) mounts the pseudo
filesystems, sets the hostname and the static address the harness passed on
the kernel command line (`repro.ip=`, `repro.host=`), installs the run's
public key (`repro.key=`, base64 of the authorized_keys line: a public key,
never written to the repo or the image) and, from QEMU's fw_cfg (sysfs, root
only), the run's private key and ssh client configuration for host-to-host ssh
(on every boot: no command over ssh writes them), prints one `repro-guest: ready` line
with the boot id on the serial console, and hands PID 1 to busybox init, which
reaps orphans and respawns sshd (host keys are baked into the image).
virtio-rng feeds the guest's entropy (sshd starts without waiting for it) and
pvpanic tells QEMU when the guest panics (a QMP event, seen from outside).
The machine is QEMU's microvm (repro.harness.hosts.qemu.vm): its devices sit on
virtio-mmio, found through its ACPI tables, so the modules are virtio_mmio's
and pvpanic_mmio's, not PCI's.

The texts here are part of the image recipe: changing them changes its hash.
"""

from __future__ import annotations

# Modules the initramfs loads, in dependency order (the cloud kernel builds them as modules).
INITRAMFS_MODULES = (
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_mmio.ko",
    "kernel/drivers/block/virtio_blk.ko",
)

INITRAMFS_INIT = r"""#!/bin/busybox sh
# repro initramfs: load virtio, mount the root disk, switch to /sbin/repro-init.
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules.order); do /bin/busybox insmod "/modules/$m"; done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 500 ]; do n=$((n+1)); /bin/busybox usleep 10000; done
if ! /bin/busybox mount -t ext4 -o rw /dev/vda /newroot; then
    echo "repro-initramfs: cannot mount /dev/vda" > /dev/console
    /bin/busybox poweroff -f
fi
/bin/busybox mount --move /dev /newroot/dev
/bin/busybox mount --move /proc /newroot/proc
/bin/busybox mount --move /sys /newroot/sys
exec /bin/busybox switch_root /newroot /sbin/repro-init
"""

GUEST_INIT = r"""#!/usr/lib/repro/busybox sh
# repro guest PID 1 (before busybox init): network, key, sshd. See repro.harness.hosts.qemu.guest
# Every command is an applet of the static busybox: under TCG an exec of a dynamic binary
# costs 0.1-0.15 s (the loader, relocations), and this script ran 25 of them.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
bb=/usr/lib/repro/busybox
read -r cmdline < /proc/cmdline
for w in $cmdline; do
    case "$w" in
        repro.ip=*) ip_cidr=${w#*=} ;;
        repro.host=*) host=${w#*=} ;;
        repro.key=*) key=${w#*=} ;;
    esac
done
$bb mount -t tmpfs -o mode=755 tmpfs /run
$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
$bb mkdir -p /dev/pts /dev/shm /run/sshd /run/lock /run/lvm /root/.ssh
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs tmpfs /dev/shm
$bb hostname "$host"
# nf_conntrack: its sysctls (nf_conntrack_acct) exist only once it is loaded
$bb modprobe -a virtio_net virtio_rng pvpanic_mmio dm_snapshot nf_conntrack qemu_fw_cfg
$bb ip link set lo up
$bb ip link set eth0 up
$bb ip addr add "$ip_cidr" dev eth0
$bb chmod 700 /root/.ssh
echo "$key" | $bb base64 -d > /root/.ssh/authorized_keys
$bb chmod 600 /root/.ssh/authorized_keys
fw=/sys/firmware/qemu_fw_cfg/by_name/@FW_CFG_PREFIX@
(umask 077; for f in @FW_CFG_FILES@; do $bb cat "$fw/$f/raw" > "/root/.ssh/$f"; done)
echo 1 > /proc/sys/kernel/sysrq
read -r boot_id < /proc/sys/kernel/random/boot_id
echo "repro-guest: ready host=$host boot_id=$boot_id" > /dev/console
exec $bb init
"""

# The files repro-init copies from QEMU's fw_cfg into /root/.ssh (the run's key and ssh
# client configuration, for host-to-host ssh inside the run), each given as `-fw_cfg name=`.
FW_CFG_FILES = ("id_ed25519", "config")
FW_CFG_PREFIX = "opt/repro/"
GUEST_INIT = (GUEST_INIT.replace("@FW_CFG_FILES@", " ".join(FW_CFG_FILES))
              .replace("@FW_CFG_PREFIX@", FW_CFG_PREFIX.rstrip("/")))

# -r: no re-exec per connection; halves a login's cost under TCG (0.64 -> 0.33 s measured)
INITTAB = """::respawn:/usr/sbin/sshd -D -e -r
::ctrlaltdel:/usr/lib/repro/busybox reboot -f
"""

SSHD_CONFIG = """HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
# MaxStartups stays at the default 10:30:100 on purpose (the mtu_wedge flood meets it).
"""

# LVM without udev or dmeventd: lvm makes its own /dev/VG/LV links.
LVM_LOCAL = """activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
devices {
    obtain_device_list_from_udev = 0
}
"""

# Run in the debootstrapped root (chroot) once per image.
FIXUP = r"""set -e
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd /root/.ssh /etc/lvm && chmod 700 /root/.ssh
echo repro-guest > /etc/hostname
: > /etc/fstab
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
"""
