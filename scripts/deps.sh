#!/bin/sh
# Install the Debian packages a build or test step needs; idempotent and quiet when all are present.
# Usage: scripts/deps.sh GROUP...   (groups: build kernel test tcg bench)
set -e
pkgs=""
for group in "$@"; do
	case "$group" in
	build)  pkgs="$pkgs gcc make libc6-dev binutils pkg-config musl-tools" ;;
	kernel) pkgs="$pkgs linux-source-6.1 flex bison libelf-dev libssl-dev bc xz-utils" ;;
	test)   pkgs="$pkgs busybox-static fuse3 bindfs python3 clang libclang-rt-14-dev cpio clang-tidy cppcheck" ;;
	tcg)    pkgs="$pkgs qemu-system-x86" ;;
	bench)  pkgs="$pkgs qemu-system-x86 hyperfine" ;;
	*) echo "deps.sh: unknown group '$group'" >&2; exit 2 ;;
	esac
done
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || true
apt-get install -y -qq --no-install-recommends $missing >&2
