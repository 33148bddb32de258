# Shared by the end-to-end scripts: runner availability and the busybox-static test root.
# Expects BUILD and KRUN_VMLINUX to be set by the caller.

# A root with nothing but busybox-static: every applet a symlink, empty mount points.
make_busybox_root() {
	local root=$1 bb
	bb=$(command -v busybox) || return 1
	file -L "$bb" | grep -q 'statically linked' || return 1
	mkdir -p "$root"/{bin,proc,sys,dev,tmp,run,etc,mnt} || return 1
	cp "$bb" "$root/bin/busybox" || return 1
	for applet in $("$bb" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
	done
}

# Why a runner cannot run here, or nothing. chroot_vm needs hardware KVM; tcg_vm needs QEMU.
runner_unavailable() {
	case $1 in
	chroot_vm)
		[ -x "$BUILD/chroot_vm" ] || { echo "$BUILD/chroot_vm not built"; return; }
		[ -e /dev/kvm ] || { echo "no /dev/kvm"; return; }
		if [ -d /sys/module/kvm_pvm ]; then
			echo "/dev/kvm is PVM (kvm_pvm), a software nested hypervisor on which no Linux guest can run (see PLATFORM.md); tcg_vm covers these checks"
			return
		fi
		grep -qwE 'vmx|svm' /proc/cpuinfo || echo "no vmx/svm in /proc/cpuinfo"
		;;
	tcg_vm)
		[ -x "$BUILD/tcg_vm" ] || { echo "$BUILD/tcg_vm not built"; return; }
		command -v "${KRUN_QEMU:-qemu-system-x86_64}" > /dev/null ||
			{ echo "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"; return; }
		[ -r "$KRUN_VMLINUX" ] || { echo "no guest kernel $KRUN_VMLINUX (kernel/build.sh)"; return; }
		"${KRUN_QEMU:-qemu-system-x86_64}" -device help 2>/dev/null | grep -q vhost-user-fs-device ||
			echo "QEMU lacks vhost-user-fs-device"
		;;
	*) echo "unknown runner" ;;
	esac
}
