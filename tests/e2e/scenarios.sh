# The end-to-end scenario list, sourced by tests/e2e/run.sh (which defines sc and $BBROOT).
# Each scenario runs on two roots: "bb" (busybox-static only) and "host" (the host's own /).
# Format: sc NAME STATUS EXPECT [IN=FILE] [runner options...] -- ROOT COMMAND [ARG...]

# Scenarios that need nothing but a POSIX shell and coreutils-style applets.
e2e_root_scenarios() {
	local r=$1 root=$2 data=$3

	sc "$r/echo" 0 "hello world" -- "$root" /bin/echo hello world
	# Each guest half prints a marker: a runner failing on its own (status 1) cannot pass.
	sc "$r/exit-0" 0 "ran" -- "$root" /bin/sh -c 'echo ran; exit 0'
	sc "$r/exit-1" 1 "ran" -- "$root" /bin/sh -c 'echo ran; exit 1'
	sc "$r/exit-42" 42 "ran" -- "$root" /bin/sh -c 'echo ran; exit 42'
	sc "$r/signal-kill" 137 "ran" -- "$root" /bin/sh -c 'echo ran; kill -9 $$'
	sc "$r/argv" 0 $'[a b]\n[c\'d]\n[e"f]\n[]\n[ x ]' -- "$root" \
		/bin/sh -c 'for a in "$@"; do echo "[$a]"; done' sh "a b" "c'd" 'e"f' '' ' x '
	sc "$r/env" 0 "works|a b|x=y" -e KRUN_E2E=works -e "KRUN_SPACED=a b" -e KRUN_EQ=x=y -- "$root" \
		/bin/sh -c 'echo "$KRUN_E2E|$KRUN_SPACED|$KRUN_EQ"'
	sc "$r/workdir" 0 "/tmp" -w /tmp -- "$root" /bin/sh -c pwd
	sc "$r/rlimit-nofile" 0 $'123\n456' -r 7=123:456 -- "$root" /bin/sh -c 'ulimit -n; ulimit -Hn'
	sc "$r/stderr" 0 "to-stdout" -- "$root" /bin/sh -c 'echo to-stdout; echo to-stderr >&2'
	sc "$r/stderr-content" 0 "@stderr:to-stderr" -- "$root" /bin/sh -c 'echo to-stderr >&2'
	sc "$r/stdin-empty" 0 "" -- "$root" /bin/cat
	sc "$r/stdin-sha256" 0 "@sha256:$data/in.bin" IN="$data/in.bin" -- "$root" /bin/sh -c sha256sum
	sc "$r/stdout-cat" 0 "@same:$data/in.bin" IN="$data/in.bin" -- "$root" /bin/cat
	sc "$r/nproc-1" 0 "1" -c 1 -- "$root" /bin/sh -c nproc
	sc "$r/nproc-2" 0 "2" -c 2 -- "$root" /bin/sh -c nproc
	# MemTotal is RAM minus what the kernel keeps: between 80% and 100% of the 256 MiB asked for.
	sc "$r/memtotal" 0 "OK" -m 256 -- "$root" /bin/sh -c \
		'm=$(while read -r k v u; do [ "$k" = MemTotal: ] && echo "$v"; done < /proc/meminfo)
		 if [ "$m" -gt 209715 ] && [ "$m" -le 262144 ]; then echo OK; else echo "MemTotal $m kB"; fi'
	sc "$r/missing-program" 127 "@stderr:/no/such/program" -- "$root" /no/such/program
	# /mnt exists in both roots: the init creates missing mount points, which on the host
	# root would mean directories created on the host.
	# On a terminal, stdio is the guest's console (hvc0), itself a terminal.
	sc "$r/terminal" 0 "@contains:in-tty out-tty err-tty" TTY -- "$root" /bin/sh -c \
		'[ -t 0 ] && i=in-tty; [ -t 1 ] && o=out-tty; [ -t 2 ] && e=err-tty; echo "$i $o $e"'
	sc "$r/volume" 0 "volume-data" -v "$data/vol:/mnt" -- "$root" /bin/cat /mnt/file
}

e2e_scenarios() {
	local work=$1 data=$1/data

	mkdir -p "$data/vol"
	# stdin through a pipe: 20 MiB takes ~5 s under TCG (see docs/testing.md).
	head -c "${E2E_STDIN_MIB:-20}M" /dev/urandom > "$data/in.bin"
	echo volume-data > "$data/vol/file"
	[ -n "$BBROOT" ] && e2e_root_scenarios bb @bb "$data"
	e2e_root_scenarios host / "$data"
}
