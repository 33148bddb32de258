#!/bin/bash
# Builds the guest vmlinux from Debian's linux-source-6.1 + kernel/config.fragment, cached by content key.
# Usage: kernel/build.sh OUTDIR   -> OUTDIR/vmlinux, OUTDIR/vmlinux.config; prints the cache entry path.
#        kernel/build.sh --entry  prints the cache entry path for the current key (built or not).
# The cache lives outside the checkout so `make clean` and fresh clones reuse a 5+ minute build:
#   ${KRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libkrun-c}/kernel/<key>/{vmlinux,config,build-seconds}
# key = sha256(fragment, this script, linux-source package version, gcc version).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/config.fragment
src_tar=/usr/src/linux-source-6.1.tar.xz

die() { echo "kernel/build.sh: $*" >&2; exit 1; }
log() { echo "kernel/build.sh: $*" >&2; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR | --entry"
outdir=$1

[ "$outdir" = --entry ] || "$here/../scripts/deps.sh" kernel

pkg_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || true)
gcc_version=$(gcc --version | head -n 1)
key=$( { sha256sum < "$fragment"; sha256sum < "$here/build.sh"; echo "$pkg_version"; echo "$gcc_version"; } \
	| sha256sum | cut -c1-16)
cache_root=${KRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libkrun-c}/kernel
entry=$cache_root/$key
if [ "$outdir" = --entry ]; then
	echo "$entry"
	exit 0
fi
[ -f "$src_tar" ] || die "$src_tar missing (package linux-source-6.1)"

# Every option line of the fragment must have exactly the requested value in the final .config.
# "# CONFIG_X is not set" also accepts an absent symbol (its dependencies are off: still off).
verify_config() {
	local config=$1 line name want
	local -a bad=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
			grep -qxF "$name=$want" "$config" ||
				bad+=("$name: want $want, got $(grep -E "^(# )?$name[= ]" "$config" || echo absent)")
		elif [[ $line =~ ^"# "(CONFIG_[A-Za-z0-9_]+)" is not set"$ ]]; then
			name=${BASH_REMATCH[1]}
			! grep -qE "^$name=" "$config" || bad+=("$name: want n, got $(grep -E "^$name=" "$config")")
		fi
	done < "$fragment"
	if [ ${#bad[@]} -gt 0 ]; then
		echo "kernel/build.sh: options that did not stick:" >&2
		printf '    %s\n' "${bad[@]}" >&2
		return 1
	fi
}

# Keeps the log of a failed build next to the cache (the temp tree is removed).
fail() {
	tail -n 40 "$tmp/build.log" >&2
	cp "$tmp/build.log" "$cache_root/failed-$key.log"
	die "$1 (full log: $cache_root/failed-$key.log)"
}

build() {
	mkdir -p "$cache_root"
	# Trees left by interrupted builds (a finished one renames or removes its own).
	find "$cache_root" -maxdepth 1 -name '.build-*' -mmin +180 -exec rm -rf {} + 2>/dev/null || true
	local start
	tmp=$(mktemp -d "$cache_root/.build-$key.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	start=$(date +%s)
	log "building kernel $key in $tmp (log: $tmp/build.log)"
	tar -xJf "$src_tar" -C "$tmp"
	local src=$tmp/linux-source-6.1
	# Reproducible output: no build host, user or date baked into the image.
	export KBUILD_BUILD_TIMESTAMP="1970-01-01" KBUILD_BUILD_USER=krun KBUILD_BUILD_HOST=krun
	(
		cd "$src"
		make ARCH=x86_64 tinyconfig
		scripts/kconfig/merge_config.sh -m .config "$fragment"
		make ARCH=x86_64 olddefconfig
	) > "$tmp/build.log" 2>&1 || fail "configuration failed"
	verify_config "$src/.config" || die "configuration does not match $fragment"
	make -C "$src" ARCH=x86_64 -j"$(nproc)" vmlinux >> "$tmp/build.log" 2>&1 || fail "kernel build failed"
	mkdir "$tmp/out"
	cp "$src/vmlinux" "$tmp/out/vmlinux"
	cp "$src/.config" "$tmp/out/config"
	echo $(( $(date +%s) - start )) > "$tmp/out/build-seconds"
	# rename(2) publishes the entry whole; if a concurrent build won, keep theirs.
	mv -T "$tmp/out" "$entry" 2>/dev/null || [ -f "$entry/vmlinux" ] || die "cannot create $entry"
	rm -rf "$tmp"
	trap - EXIT
	log "built in $(cat "$entry/build-seconds") s"
}

# One build per key at a time: concurrent callers (parallel makes) wait, then copy its result.
mkdir -p "$cache_root"
exec 9> "$cache_root/.lock-$key"
if ! flock -n 9; then
	log "waiting for another build of $key"
	flock 9
fi
if [ -f "$entry/vmlinux" ]; then
	log "cached: $entry"
else
	build
fi
exec 9>&-
mkdir -p "$outdir"
cp "$entry/vmlinux" "$outdir/.vmlinux.tmp"
cp "$entry/config" "$outdir/vmlinux.config"
mv -f "$outdir/.vmlinux.tmp" "$outdir/vmlinux"
echo "$entry"
