#!/bin/bash
# Kernel bundle tests: libkrunfw.so.5 ABI and image, then boots of build/vmlinux under QEMU TCG.
# Prints "PASS name", "FAIL name: why" or "SKIP name: why" per test; exits 1 if any failed.
# Debugging: KT_KEEP=1 keeps the scratch directory (console logs); KT_EXTRA_CMDLINE is appended to
# the virtio-fs root boot's command line (e.g. "loglevel=7 printk.time=1": the base has quiet).
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.." || exit 2
vmlinux=$BUILD/vmlinux
krunfw=$BUILD/libkrunfw.so.5
checker=$BUILD/tests/kernel/krunfw_check
KT_TMP=$(mktemp -d)
. tests/kernel/lib.sh
failed=0
daemons=()
cleanup() {
	for p in "${daemons[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${KT_KEEP:-}" ]; then echo "kept $KT_TMP" >&2; else rm -rf "$KT_TMP"; fi
}
trap cleanup EXIT

pass() { echo "PASS $1${2:+ ($2)}"; }
fail() { echo "FAIL $1: $2"; failed=1; }
skip() { echo "SKIP $1: $2"; }
# Last console lines, indented, so a failure says where the boot stopped.
console_tail() { tail -n "${2:-15}" "$1" | tr -d '\r' | sed 's/^/    /'; }

# The base command line our VMM passes, taken from the shared contract header.
base_cmdline() {
	printf '#include "common/krun_init.h"\nKRUN_BASE_CMDLINE\n' | gcc -E -P -Isrc - | tail -n 1 |
		sed 's/" *"//g; s/^[[:space:]]*"//; s/"[[:space:]]*$//'
}

test_krunfw() {
	if [ ! -x "$checker" ] || [ ! -f "$krunfw" ] || [ ! -f "$vmlinux" ]; then
		fail krunfw_check "$checker, $krunfw or $vmlinux not built (make all tests)"
		return
	fi
	"$checker" "$krunfw" "$vmlinux" || failed=1
	local soname exports
	soname=$(readelf -d "$krunfw" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
	exports=$(nm -D --defined-only "$krunfw" | awk '{print $3}' | sort | tr '\n' ' ')
	if [ "$soname" = libkrunfw.so.5 ] && [ "$exports" = "krunfw_get_kernel krunfw_get_version " ]; then
		pass krunfw_exports "soname $soname, exports: $exports"
	else
		fail krunfw_exports "soname '$soname', exports '$exports'"
	fi
}

# patched SRC DST OFFSET BYTES: a copy of SRC with BYTES (printf escapes) written at OFFSET.
patched() {
	cp "$1" "$2"
	printf "$4" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}

# flatten must refuse malformed input rather than emit an image the guest would crash on.
test_flatten() {
	local flatten=$BUILD/kernel/flatten d=$KT_TMP/flatten bad="" name
	if [ ! -x "$flatten" ] || [ ! -f "$vmlinux" ]; then
		fail flatten_validation "$flatten or $vmlinux not built (make)"
		return
	fi
	mkdir -p "$d"
	if ! "$flatten" "$vmlinux" "$d/good.bin" "$d/good.h" 2>/dev/null ||
	   ! cmp -s "$d/good.bin" "$BUILD/kernel/vmlinux.bin"; then
		fail flatten_validation "flattening $vmlinux again does not reproduce $BUILD/kernel/vmlinux.bin"
		return
	fi
	head -c 100 "$vmlinux" > "$d/truncated"
	: > "$d/empty"
	patched "$vmlinux" "$d/not-elf" 0 'XELF'
	patched "$vmlinux" "$d/i386" 18 '\003\000'                       # e_machine = EM_386
	patched "$vmlinux" "$d/entry-zero" 24 '\000\000\000\000\000\000\000\000'  # e_entry = 0
	patched "$vmlinux" "$d/phoff-huge" 32 '\377\377\377\377\377\377\377\177'  # e_phoff
	# First program header (at e_phoff 64 in vmlinux): p_offset far past the end of the file.
	patched "$vmlinux" "$d/seg-outside" 72 '\000\000\000\000\000\001\000\000'
	# p_filesz (offset 64+32) larger than p_memsz.
	patched "$vmlinux" "$d/filesz-big" 96 '\377\377\377\377\000\000\000\000'
	for name in truncated empty not-elf i386 entry-zero phoff-huge seg-outside filesz-big; do
		if "$flatten" "$d/$name" "$d/out.bin" "$d/out.h" 2>/dev/null; then
			bad="$bad $name"
		fi
	done
	if [ -n "$bad" ]; then
		fail flatten_validation "accepted malformed input:$bad"
	else
		pass flatten_validation "reproduces the image; rejects 8 malformed ELFs"
	fi
}

# boot NAME LOG ARGS...: runs QEMU (60 s limit) and says whether the guest checks finished.
boot() {
	local name=$1 log=$2 start rc
	shift 2
	start=$(date +%s.%N)
	timeout 60 "${KT_CMD[@]}" "$@" > "$log" 2>&1 < /dev/null
	rc=$?
	BOOT_SECS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
	if grep -q "KRUN-KERNEL-TEST: done" "$log"; then
		return 0
	fi
	if [ "$rc" = 124 ]; then
		fail "$name" "guest checks did not finish within 60 s; last console lines:"
	else
		fail "$name" "QEMU exited ($rc) before the guest checks finished; last console lines:"
	fi
	console_tail "$log"
	return 1
}

# Initramfs boot with three command-line virtio-mmio devices: console (hvc0), rng, balloon.
test_tcg_boot() {
	local log=$KT_TMP/console.log hvc=$KT_TMP/hvc0.out cpio=$KT_TMP/initramfs.cpio bad
	kt_initramfs "$cpio" || { fail kernel_tcg_boot "cannot build the initramfs"; return; }
	kt_qemu_base "$vmlinux"
	boot kernel_tcg_boot "$log" -initrd "$cpio" \
		-append "console=ttyS0 panic=-1 reboot=t" \
		-device virtio-serial-device -chardev file,id=hvc,path="$hvc" \
		-device virtconsole,chardev=hvc \
		-device virtio-rng-device -device virtio-balloon-device || return
	pass kernel_tcg_boot "initramfs /init ran and rebooted, $BOOT_SECS s"

	bad=$(tr -d '\r' < "$log" | sed -n 's/^CHECK \(.*\) missing$/\1/p' | tr '\n' ' ')
	if [ -z "$bad" ] && grep -q '^CHECK ' "$log"; then
		pass kernel_features "$(grep -c '^CHECK .* ok' "$log") checks"
	else
		fail kernel_features "missing: ${bad:-no CHECK lines}"
	fi

	bad=""
	grep -q "^VIRTIO 0x0003 virtio_console" "$log" || bad="$bad console(not bound)"
	grep -q "^VIRTIO 0x0004 virtio_rng" "$log" || bad="$bad rng(not bound)"
	grep -q "^VIRTIO 0x0005 virtio_balloon" "$log" || bad="$bad balloon(not bound)"
	grep -q "KRUN-HVC0-HELLO" "$hvc" 2>/dev/null || bad="$bad hvc0(text did not reach the host)"
	grep -q "^CHECK hwrng_virtio ok" "$log" || bad="$bad hwrng(not virtio_rng)"
	if [ -z "$bad" ]; then
		pass kernel_virtio_mmio "console, rng, balloon bound; hvc0 output reached the host"
	else
		fail kernel_virtio_mmio "$bad; devices seen: $(grep '^VIRTIO' "$log" | tr -d '\r' | tr '\n' ';')"
	fi
}

# vhost-user-fs needs guest RAM QEMU can share with virtiofsd.
start_virtiofsd() {
	local sock=$1 dir=$2 log=$3
	"$KT_VIRTIOFSD" --socket-path="$sock" -o source="$dir" -o cache=none -o sandbox=chroot \
		> "$log" 2>&1 &
	daemons+=($!)
	for _ in $(seq 50); do [ -S "$sock" ] && return 0; sleep 0.1; done
	return 1
}

# Root on virtio-fs exactly as our VMM boots it: KRUN_BASE_CMDLINE, tag KRUN_ROOT_TAG.
test_virtiofs_root() {
	local name=kernel_virtiofs_root root=$KT_TMP/vfsroot sock=$KT_TMP/vfs.sock cmdline tag
	local log=$KT_TMP/vfs-console.log
	if [ ! -x "$KT_VIRTIOFSD" ]; then
		skip $name "$KT_VIRTIOFSD not installed (qemu-system-common)"
		return
	fi
	cmdline=$(base_cmdline)
	tag=$(sed -n 's/^root=\([^ ]*\) .*/\1/p' <<< "$cmdline")
	if [ -z "$tag" ] || ! grep -q "rootfstype=virtiofs" <<< "$cmdline"; then
		fail $name "cannot read root=/rootfstype= from KRUN_BASE_CMDLINE: '$cmdline'"
		return
	fi
	kt_root "$root" "$(sed -n 's/.* init=\([^ ]*\).*/\1/p' <<< "$cmdline")"
	if ! start_virtiofsd "$sock" "$root" "$KT_TMP/virtiofsd.log"; then
		fail $name "virtiofsd did not start: $(tail -n 3 "$KT_TMP/virtiofsd.log")"
		return
	fi
	KT_MEMBACKEND=mem kt_qemu_base "$vmlinux"
	boot $name "$log" -object memory-backend-memfd,id=mem,size=128M,share=on \
		-chardev socket,id=vfs,path="$sock" -device vhost-user-fs-device,chardev=vfs,tag="$tag" \
		-append "$cmdline console=ttyS0 ${KT_EXTRA_CMDLINE:-}" || return
	if ! tr -d '\r' < "$log" | grep -q "^ROOTMOUNT $tag / virtiofs "; then
		fail $name "root is not the virtio-fs tag '$tag': $(grep '^ROOTMOUNT' "$log" | tr -d '\r')"
	elif [ "$(cat "$root/guest-wrote" 2>/dev/null)" != written-by-guest ]; then
		fail $name "the guest's write to / did not reach the host directory"
	else
		pass $name "root=$tag rootfstype=virtiofs mounted, init ran, guest write reached host, $BOOT_SECS s"
	fi
}

test_krunfw
test_flatten
missing=$(kt_missing)
if [ ! -f "$vmlinux" ]; then
	fail kernel_tcg_boot "$vmlinux not built (make)"
elif [ -n "$missing" ]; then
	skip kernel_tcg_boot "$missing"
	skip kernel_virtiofs_root "$missing"
else
	test_tcg_boot
	test_virtiofs_root
fi
exit $failed
