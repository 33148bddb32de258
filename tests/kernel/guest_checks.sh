#!/bin/busybox sh
# Guest half of tests/kernel/run.sh: runs as the guest's init, prints one CHECK line per feature.
# Output protocol (on the serial console): "KRUN-KERNEL-TEST: start", "CHECK name ok|missing",
# "VIRTIO <device id> <driver>", "ROOTMOUNT <line of /proc/mounts for />", "KRUN-KERNEL-TEST: done".
# Then it reboots, which ends QEMU (reboot=t, -no-reboot).
export PATH=/bin
[ -e /bin/sh ] || /bin/busybox --install -s /bin
echo "KRUN-KERNEL-TEST: start"
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

check() {
	name=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "CHECK $name ok"; else echo "CHECK $name missing"; fi
}
has_fs() { grep -qw "$1" /proc/filesystems; }
drv() { test -d "/sys/bus/virtio/drivers/$1"; }

for fs in virtiofs fuse tmpfs devtmpfs proc sysfs devpts cgroup2; do
	check "fs_$fs" has_fs "$fs"
done
check unix_sockets test -e /proc/net/unix
check ipv6 test -e /proc/net/if_inet6
check seccomp grep -q '^Seccomp:' /proc/self/status
check smp_2_cpus test "$(nproc)" = 2
check namespaces test -e /proc/self/ns/user -a -e /proc/self/ns/pid -a -e /proc/self/ns/net \
	-a -e /proc/self/ns/uts -a -e /proc/self/ns/ipc
check cgroup2_controllers sh -c 'mount -t cgroup2 none /sys/fs/cgroup &&
	for c in cpuset cpu memory pids; do grep -qw $c /sys/fs/cgroup/cgroup.controllers || exit 1; done'
check tmpfs_mount sh -c 'mount -t tmpfs tmpfs /tmp && echo x > /tmp/x'
check unix98_ptys sh -c 'mkdir -p /dev/pts && mount -t devpts devpts /dev/pts && test -c /dev/ptmx'
check no_legacy_ptys test ! -e /dev/ptyp0
check sysvipc test -e /proc/sysvipc/shm
check proc_sysctl test -e /proc/sys/kernel/hostname
check file_locking test -e /proc/locks
check cmdline_virtio_mmio grep -q 'virtio_mmio.device=' /proc/cmdline
for d in virtio_console virtio_rng virtio_balloon virtiofs vmw_vsock_virtio_transport; do
	check "driver_$d" drv "$d"
done
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d/device" ] || continue
	echo "VIRTIO $(cat "$d/device") $(basename "$(readlink "$d/driver")")"
done
if [ -c /dev/hvc0 ]; then
	echo "KRUN-HVC0-HELLO" > /dev/hvc0
	check hvc0_write true
fi
if grep -qx 0x0004 /sys/bus/virtio/devices/*/device 2>/dev/null; then
	check hwrng_read sh -c 'test "$(head -c 16 /dev/hwrng | od -An -tx1 | wc -w)" = 16'
	check hwrng_virtio grep -q virtio_rng /sys/class/misc/hw_random/rng_current
fi
echo "ROOTMOUNT $(grep ' / ' /proc/mounts | tail -n 1)"
if grep -q ' / virtiofs ' /proc/mounts; then
	check root_write sh -c 'echo written-by-guest > /guest-wrote && sync'
fi
echo "KRUN-KERNEL-TEST: done"
reboot -f
