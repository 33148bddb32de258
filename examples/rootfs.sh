#!/bin/bash
# Builds a minimal Debian-family root (examples/rootfs_debian) to boot with chroot_vm/tcg_vm:
# mmdebstrap --variant=minbase plus a shell, coreutils, procps, iproute2 and curl.
#
# The archive, suite and proxy are the host's own, read at run time: the first enabled "deb"
# entry in /etc/apt/sources.list, /etc/apt/sources.list.d/*.list or *.sources (deb822) whose
# suite has no "-" gives the suite and mirror; entries for "<suite>-*" (updates, security) are
# added; Acquire::http(s)::Proxy and the Release-date checks from apt-config are passed on.
#
# Usage: examples/rootfs.sh [--probe] [DIR]     (DIR defaults to examples/rootfs_debian)
#   --probe  only check that the archive answers (exit 0) or not (exit 1), build nothing.
# Environment: ROOTFS_SUITE, ROOTFS_MIRROR (override what the host's sources say),
#   ROOTFS_PACKAGES (extra packages), ROOTFS_TIMEOUT (seconds for the probe, 15).
#
# Idempotent: a stamp file (DIR/.krun-rootfs.stamp) is written last, after a whole build;
# when it is present the root is only checked. The build goes to a temporary directory next
# to DIR and is renamed into place at the end, so a failed build leaves nothing behind.
set -e
set -o pipefail

die() { echo "rootfs: error: $*" >&2; exit 1; }
note() { echo "rootfs: $*" >&2; }

probe=0
if [ "$1" = --probe ]; then probe=1; shift; fi
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/rootfs_debian}
dest=${dest%/}
stamp_name=.krun-rootfs.stamp
PACKAGES="bash,coreutils,procps,iproute2,curl,ca-certificates${ROOTFS_PACKAGES:+,$ROOTFS_PACKAGES}"

# What the guest (our init and the checks in tests/e2e/rootfs.sh) needs from the root.
check_root() {
	local root=$1 d t
	for d in proc sys dev tmp run etc usr/bin; do
		[ -d "$root/$d" ] || die "$root lacks /$d (a guest root needs it); run 'make -C examples clean-rootfs rootfs'"
	done
	for t in bin/sh usr/bin/bash usr/bin/ls usr/bin/sha256sum usr/bin/ps usr/bin/curl \
		usr/bin/dpkg; do
		[ -x "$root/$t" ] || die "$root lacks /$t; run 'make -C examples clean-rootfs rootfs'"
	done
	[ -x "$root/usr/sbin/ip" ] || [ -x "$root/usr/bin/ip" ] || [ -x "$root/bin/ip" ] ||
		die "$root lacks ip (iproute2); run 'make -C examples clean-rootfs rootfs'"
}

if [ "$probe" = 0 ] && [ -e "$dest/$stamp_name" ]; then
	check_root "$dest"
	note "$dest is up to date ($(sed -n 's/^built: //p' "$dest/$stamp_name")); 'make -C examples clean-rootfs' to rebuild"
	exit 0
fi
if [ "$probe" = 0 ] && [ -e "$dest" ]; then
	die "$dest exists but has no $stamp_name (an unfinished or foreign tree); remove it first: make -C examples clean-rootfs"
fi

# --- The host's apt sources -----------------------------------------------------------------
# Prints one line per enabled binary entry: "URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED-BY".
list_sources() {
	local f SRC_LIST=/etc/apt/sources.list SRC_PARTS=/etc/apt/sources.list.d/
	eval "$(apt-config shell SRC_LIST Dir::Etc::sourcelist/f SRC_PARTS Dir::Etc::sourceparts/d)"
	for f in "$SRC_LIST" "${SRC_PARTS%/}"/*.list; do
		[ -r "$f" ] || continue
		# One-line format: deb [opt=val ...] URI SUITE COMPONENT...
		awk '
			{ sub(/#.*/, "") }
			$1 != "deb" { next }
			{
				signed = ""; i = 2
				if ($2 ~ /^\[/) {
					while (i <= NF) {
						o = $i; gsub(/[\[\]]/, "", o)
						if (o ~ /^signed-by=/) { sub(/^signed-by=/, "", o); signed = o }
						if ($i ~ /\]$/) { i++; break }
						i++
					}
				}
				uri = $i; suite = $(i + 1); comps = ""
				for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : " ") $j
				if (uri != "" && suite != "") printf "%s\t%s\t%s\t%s\n", uri, suite, comps, signed
			}' "$f"
	done
	for f in "${SRC_PARTS%/}"/*.sources; do
		[ -r "$f" ] || continue
		# deb822: stanzas separated by blank lines; fields Types, URIs, Suites, Components,
		# Signed-By (a path, or an inline key, which we leave to the default keyring), Enabled.
		awk '
			function flush(   nu, ns, u, s, a, b) {
				if (types ~ /(^| )deb( |$)/ && enabled != "no") {
					nu = split(uris, a, " "); ns = split(suites, b, " ")
					for (u = 1; u <= nu; u++)
						for (s = 1; s <= ns; s++)
							printf "%s\t%s\t%s\t%s\n", a[u], b[s], comps, signed
				}
				types = uris = suites = comps = signed = field = ""; enabled = "yes"
			}
			BEGIN { enabled = "yes" }
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			/^[ \t]/ { if (field == "signed-by") signed = ""; next }   # continuation: inline key
			{
				field = tolower($1); sub(/:$/, "", field)
				v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[ \t]+/, " ", v); sub(/ $/, "", v)
				if (field == "types") types = v
				else if (field == "uris") uris = v
				else if (field == "suites") suites = v
				else if (field == "components") comps = v
				else if (field == "signed-by") signed = (v ~ /^\//) ? v : ""
				else if (field == "enabled") enabled = tolower(v)
			}
			END { flush() }' "$f"
	done
}

sources=$(list_sources)
suite=${ROOTFS_SUITE:-}
mirror=${ROOTFS_MIRROR:-}
if [ -z "$suite" ] || [ -z "$mirror" ]; then
	# The main entry: the first whose suite is a plain release name (no "-updates" etc.).
	main=$(printf '%s\n' "$sources" | awk -F'\t' '$2 !~ /[-\/]/ && $1 != "" { print; exit }')
	[ -n "$main" ] || die "no enabled 'deb' entry with a release suite in /etc/apt/sources.list or /etc/apt/sources.list.d/ (set ROOTFS_SUITE and ROOTFS_MIRROR to choose one)"
	[ -n "$suite" ] || suite=$(printf '%s' "$main" | cut -f2)
	[ -n "$mirror" ] || mirror=$(printf '%s' "$main" | cut -f1)
fi
mirror=${mirror%/}

# mmdebstrap takes whole one-line entries as mirrors: the main one, then the host's entries
# for the same release's "-updates"/"-security" suites (security may live on another host).
entries=()
add_entry() { # URI SUITE COMPONENTS SIGNED-BY
	local opt="" comps=${3:-main}
	[ -n "$4" ] && [ -r "$4" ] && opt="[signed-by=$4] "
	entries+=("deb $opt$1 $2 $comps")
}
main_comps=$(printf '%s\n' "$sources" | awk -F'\t' -v u="$mirror" -v s="$suite" \
	'{ sub(/\/$/, "", $1) } $1 == u && $2 == s { print $3; exit }')
main_signed=$(printf '%s\n' "$sources" | awk -F'\t' -v u="$mirror" -v s="$suite" \
	'{ sub(/\/$/, "", $1) } $1 == u && $2 == s { print $4; exit }')
add_entry "$mirror" "$suite" "$main_comps" "$main_signed"
while IFS=$'\t' read -r uri s comps signed; do
	[ -n "$uri" ] || continue
	case $s in "$suite"-*|"$suite"/updates) add_entry "${uri%/}" "$s" "$comps" "$signed" ;; esac
done <<< "$sources"

# --- The host's apt settings that matter for reaching the archive ---------------------------
aptopts=()
proxy=
for key in Acquire::http::Proxy Acquire::https::Proxy Acquire::Check-Valid-Until \
	Acquire::Check-Date; do
	val=$(apt-config dump "$key" 2>/dev/null | sed -n "s|^$key \"\(.*\)\";\$|\1|p" | head -n 1)
	[ -n "$val" ] && aptopts+=("$key \"$val\";")
	case $key in *Proxy) [ -n "$val" ] && proxy="${proxy:+$proxy, }$val" ;; esac
done

# --- Is the archive there? ------------------------------------------------------------------
# apt's own downloader, with the host's apt configuration (proxy included).
probe_archive() {
	local tmp rc=0 helper=/usr/lib/apt/apt-helper
	[ -x "$helper" ] || die "$helper not found (is this a Debian-family host with apt?)"
	tmp=$(mktemp -d)
	timeout "${ROOTFS_TIMEOUT:-15}" "$helper" -o Acquire::Retries=0 -o APT::Sandbox::User=root \
		-o Acquire::http::Timeout="${ROOTFS_TIMEOUT:-15}" \
		download-file "$mirror/dists/$suite/InRelease" "$tmp/InRelease" > "$tmp/log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || sed 's/^/rootfs:   /' "$tmp/log" >&2
	rm -rf "$tmp"
	return "$rc"
}
if [ "$probe" = 1 ]; then
	if probe_archive; then note "archive reachable: $mirror $suite"; exit 0; fi
	note "archive unreachable: $mirror/dists/$suite/InRelease"
	exit 1
fi

# --- Build ----------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (sudo make -C examples rootfs): the root's files must be owned by root, as in the guest"
if ! command -v mmdebstrap > /dev/null; then
	note "installing mmdebstrap (apt-get install mmdebstrap)"
	apt-get install -y --no-install-recommends mmdebstrap > /dev/null ||
		die "could not install mmdebstrap; install it with: apt-get install mmdebstrap"
fi
probe_archive || die "the Debian archive is unreachable: $mirror/dists/$suite/InRelease (proxy: ${proxy:-none}); nothing was built"

parent=$(dirname "$dest")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.$(basename "$dest").tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"   # apt inside drops to _apt for downloads
note "building $dest: $suite from $mirror (packages: $PACKAGES)"
for e in "${entries[@]}"; do note "  source: $e"; done
args=(--variant=minbase --mode=root --include="$PACKAGES")
for o in "${aptopts[@]}"; do args+=(--aptopt="$o"); note "  apt option: $o"; done
t0=$SECONDS
if ! mmdebstrap "${args[@]}" "$suite" "$tmp" "${entries[@]}" >&2; then
	die "mmdebstrap failed (see above); nothing was built, $dest left untouched"
fi
check_root "$tmp"
mv -T "$tmp" "$dest"
trap - EXIT
size=$(du -sh "$dest" | cut -f1)
{
	echo "built: $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $((SECONDS - t0)) s, $size"
	echo "suite: $suite"
	echo "mirror: $mirror"
	for e in "${entries[@]}"; do echo "source: $e"; done
	echo "packages: $PACKAGES"
} > "$dest/$stamp_name.new"
mv "$dest/$stamp_name.new" "$dest/$stamp_name"
note "built $dest in $((SECONDS - t0)) s ($size)"
