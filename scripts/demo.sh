#!/bin/bash
# The main job: boot a microVM and run a program in it, with the runner this host supports.
# On hardware KVM: examples/chroot_vm (the in-process VMM). Elsewhere (no KVM, or PVM's
# software KVM where Linux guests cannot run): tcg_vm (our kernel, init and device backends
# under QEMU's software CPU). Usage: scripts/demo.sh [ROOT COMMAND [ARG...]]
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/deps.sh build kernel test tcg
make -s -j"$(nproc)" all

if [ -e /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
	runner=$BUILD/chroot_vm
	echo "demo: hardware KVM found: running the in-process VMM ($runner)" >&2
else
	runner=$BUILD/tcg_vm
	why="no /dev/kvm"
	[ -d /sys/module/kvm_pvm ] && why="/dev/kvm is PVM (software nested KVM), which cannot run Linux guests"
	echo "demo: $why: running under QEMU's software CPU with our backends ($runner)" >&2
fi

if [ $# -eq 0 ]; then
	root=$BUILD/demo-root
	if [ ! -x "$root/bin/busybox" ]; then
		mkdir -p "$root"/{bin,proc,sys,dev,tmp,run,etc}
		cp /bin/busybox "$root/bin/busybox"
		# Inside the root, so the links point at /bin/busybox as the guest sees it.
		chroot "$root" /bin/busybox --install -s /bin
	fi
	set -- "$root" /bin/sh -c 'echo "Hello from a microVM: $(uname -sr), $(nproc) vCPU(s), $(grep MemTotal /proc/meminfo)"'
fi
exec "$runner" "$@"
