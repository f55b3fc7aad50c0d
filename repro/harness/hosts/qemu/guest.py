"""What runs inside a repro QEMU guest: the boot scripts baked into its image.

Model: no systemd, no cloud-init. The kernel (Debian's cloud kernel) boots a
tiny initramfs whose `/init` (static busybox) loads the virtio modules, mounts
the root disk (/dev/vda, a per-VM qcow2 overlay over the cached image) and
switches root to `/sbin/repro-init`. That script mounts the pseudo
filesystems, sets the hostname and the static address the harness passed on
the kernel command line (`repro.ip=`, `repro.host=`), installs the run's
public key (`repro.key=`, base64 of the authorized_keys line: a public key,
never written to the repo or the image), prints one `repro-guest: ready` line
with the boot id on the serial console, and hands PID 1 to busybox init, which
reaps orphans and respawns sshd (host keys are baked into the image).
virtio-rng feeds the guest's entropy (sshd starts without waiting for it) and
pvpanic-pci tells QEMU when the guest panics (a QMP event, seen from outside).

The texts here are part of the image recipe: changing them changes its hash.
"""

from __future__ import annotations

# Modules the initramfs loads, in dependency order (the cloud kernel builds them as modules).
INITRAMFS_MODULES = (
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
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

GUEST_INIT = r"""#!/bin/sh
# repro guest PID 1 (before busybox init): network, key, sshd. See repro.harness.hosts.qemu.guest
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
arg() { for w in $(cat /proc/cmdline); do case "$w" in "$1="*) echo "${w#*=}";; esac; done; }
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/sshd /run/lock /run/lvm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
hostname "$(arg repro.host)"
modprobe virtio_net
modprobe virtio_rng
modprobe pvpanic_pci
modprobe dm_snapshot
modprobe nf_conntrack  # its sysctls (nf_conntrack_acct) exist only once it is loaded
ip link set lo up
ip link set eth0 up
ip addr add "$(arg repro.ip)" dev eth0
mkdir -p /root/.ssh && chmod 700 /root/.ssh
arg repro.key | base64 -d > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
echo 1 > /proc/sys/kernel/sysrq
boot_id=$(cat /proc/sys/kernel/random/boot_id)
echo "repro-guest: ready host=$(hostname) boot_id=$boot_id" > /dev/console
exec /usr/lib/repro/busybox init
"""

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
