# Shared by tests/kernel/run.sh and bench/kernel.sh: guest root trees and QEMU microvm (TCG) command lines.
# Source it with KT_TMP set to a scratch directory.

KT_QEMU=${KT_QEMU:-qemu-system-x86_64}
KT_VIRTIOFSD=${KT_VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
KT_BUSYBOX=${KT_BUSYBOX:-/bin/busybox}
KT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Prints why a TCG boot cannot run here, or nothing.
kt_missing() {
	command -v "$KT_QEMU" >/dev/null || { echo "$KT_QEMU not installed (scripts/deps.sh tcg)"; return; }
	[ -x "$KT_BUSYBOX" ] || { echo "$KT_BUSYBOX missing (scripts/deps.sh test: busybox-static)"; return; }
	if ldd "$KT_BUSYBOX" >/dev/null 2>&1; then echo "$KT_BUSYBOX is not static (busybox-static)"; fi
	command -v cpio >/dev/null || echo "cpio not installed"
}

# kt_root DIR INIT_NAME: a tree with a static busybox and the guest checks as DIR/INIT_NAME.
kt_root() {
	mkdir -p "$1/bin" "$1/dev" "$1/proc" "$1/sys" "$1/tmp"
	cp "$KT_BUSYBOX" "$1/bin/busybox"
	# Applet links made here: hundreds of symlink round trips over virtio-fs cost seconds in TCG.
	local a
	for a in $("$KT_BUSYBOX" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$1/bin/$a"
	done
	cp "$KT_DIR/guest_checks.sh" "$1/$2"
	chmod 0755 "$1/$2"
}

# kt_initramfs OUT: a newc cpio whose /init is the guest checks.
kt_initramfs() {
	local root=$KT_TMP/initramfs
	rm -rf "$root"
	kt_root "$root" init
	(cd "$root" && find . | cpio -o -H newc --quiet) > "$1"
}

# Base QEMU microvm command line (the machine options PLATFORM.md measured); callers append.
# Without ACPI, QEMU describes its virtio-mmio transports as virtio_mmio.device= arguments.
# force-legacy=false: modern (virtio 1.x) mmio, as our VMM serves it; vhost-user needs it too.
kt_qemu_base() {
	local machine=microvm,x-option-roms=off,rtc=off,isa-serial=on,acpi=off
	[ -n "${KT_MEMBACKEND:-}" ] && machine=$machine,memory-backend=$KT_MEMBACKEND
	KT_CMD=("$KT_QEMU" -accel tcg -cpu max -M "$machine" -m 128 -smp 2 -nodefaults
		-no-user-config -display none -serial stdio -no-reboot
		-global virtio-mmio.force-legacy=false -kernel "$1")
}
