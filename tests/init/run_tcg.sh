#!/bin/bash
# Boots build/vmlinux under QEMU TCG with an initramfs holding busybox and init.krun
# (rdinit=), one boot per scenario, and checks the console and the reported exit status.
# Not part of make check (a boot takes seconds under TCG). Usage: tests/init/run_tcg.sh [case...]
cd "$(dirname "$0")/../.." || exit 2
BUILD=${BUILD:-build}
KERNEL=${KERNEL:-$BUILD/vmlinux}
INIT=${INIT:-$BUILD/init.krun}
BUSYBOX=${BUSYBOX:-/bin/busybox}
TIMEOUT=${TIMEOUT:-180}

for f in "$KERNEL" "$INIT" "$BUSYBOX"; do
	[ -f "$f" ] || { echo "SKIP init_tcg: $f missing"; exit 0; }
done
command -v qemu-system-x86_64 > /dev/null || { echo "SKIP init_tcg: no qemu-system-x86_64"; exit 0; }
command -v cpio > /dev/null || { echo "SKIP init_tcg: no cpio"; exit 0; }

work=$(mktemp -d)
[ -n "$KEEP" ] && echo "work dir: $work" || trap 'rm -rf "$work"' EXIT

# Base image: busybox applets in /bin, the mount points init expects, the init itself.
base=$work/base
mkdir -p "$base"/{bin,proc,sys,dev,tmp,run,root,etc,data}
cp "$BUSYBOX" "$base/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -sf busybox "$base/bin/$a"; done
cp "$INIT" "$base/init.krun"
echo "not a program" > "$base/etc/notexec"
chmod 0644 "$base/etc/notexec"
(cd "$base" && find . | cpio -o -H newc --owner 0:0 --quiet) > "$work/base.cpio"

# rec KEY=VALUE...: the records file of the case being built.
rec() { printf '%s\0' "$@" > "$case_dir/.krun_init_config"; }

# Console input of a boot: none, unless a case sets INPUT to a command producing it.
console_input() {
	if [ -n "$INPUT" ]; then $INPUT; else cat /dev/null; fi
}

# boot NAME [qemu args...]: boots base + the case overlay; output in $work/NAME.out.
boot() {
	local name=$1; shift
	(cd "$case_dir" && find . -mindepth 1 | cpio -o -H newc --owner 0:0 --quiet) > "$work/case.cpio"
	cat "$work/base.cpio" "$work/case.cpio" > "$work/$name.cpio"
	local start=$(date +%s.%N)
	console_input | timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max \
		-M microvm,x-option-roms=off,rtc=off,isa-serial=on,acpi=off$MACHINE_EXTRA -m 256 \
		-nodefaults -no-user-config -display none -serial stdio -kernel "$KERNEL" \
		-initrd "$work/$name.cpio" -no-reboot "$@" \
		-append "console=ttyS0 rdinit=/init.krun panic=-1 reboot=t quiet $APPEND" \
		> "$work/$name.raw" 2>&1
	tr -d '\r' < "$work/$name.raw" > "$work/$name.out"
	boot_secs=$(echo "$(date +%s.%N) - $start" | bc)
}

# Once the program printed "ready", types ^C on the console every half second (until
# QEMU exits and the pipe breaks).
ctrl_c() {
	for _ in $(seq 240); do
		sleep 0.5
		grep -q ready "$work/$cur.raw" 2> /dev/null && break
	done
	for _ in $(seq 240); do printf '\003' || return; sleep 0.5; done 2> /dev/null
}

# check NAME STATUS [grep-pattern...]: status line and every pattern must be in the output.
check() {
	local name=$1 status=$2 out=$work/$1.out; shift 2
	local got
	got=$(sed -n 's/^init\.krun: exit status \([0-9]*\)$/\1/p' "$out" | tail -n 1)
	if [ "$got" != "$status" ]; then
		echo "FAIL init_tcg_$name: status '${got:-none}', expected $status; last lines:"
		tail -n 15 "$out" | sed 's/^/    /'
		return
	fi
	for pat in "$@"; do
		if ! grep -qE -- "$pat" "$out"; then
			echo "FAIL init_tcg_$name: no line matching '$pat'; output:"
			sed 's/^/    /' "$out" | tail -n 25
			return
		fi
	done
	printf 'PASS init_tcg_%s (%.1f s)\n' "$name" "$boot_secs"
}

want() { [ $# -eq 0 ] || [[ " $* " == *" $cur "* ]]; }

new_case() {
	cur=$1
	case_dir=$work/case_$1
	rm -rf "$case_dir"
	mkdir -p "$case_dir"
}

run_cases() {
	new_case echo; if want "$@"; then
		rec exec=/bin/echo "arg=hello world"
		boot echo; check echo 0 '^hello world$'
	fi
	new_case false; if want "$@"; then
		rec exec=false
		boot false; check false 1
	fi
	new_case exit42; if want "$@"; then
		rec exec=/bin/sh arg=-c "arg=echo before; exit 42"
		boot exit42; check exit42 42 '^before$'
	fi
	new_case signal; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=kill -9 $$'
		boot signal; check signal 137
	fi
	new_case args; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=echo "argc=$#"; for a in "$0" "$@"; do echo "[$a]"; done' \
			arg=zero "arg=a b" arg= "arg=c  d"
		boot args; check args 0 '^argc=3$' '^\[zero\]$' '^\[a b\]$' '^\[\]$' '^\[c  d\]$'
	fi
	new_case env; if want "$@"; then
		rec exec=/bin/env env=FOO=bar "env=SPACED=x y"
		APPEND="KRUN_DEBUG=1 LEAKME=1" boot env; check env 0 '^FOO=bar$' '^SPACED=x y$' '^PATH=/usr/local/sbin:' '^HOME=/root$' \
			'^TERM=xterm$'
		grep -qE '^(LEAKME|KRUN_DEBUG)=' "$work/env.out" && echo "FAIL init_tcg_env_clean: the init's env leaked"
	fi
	new_case workdir; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=pwd; echo x > f && ls' workdir=/tmp
		boot workdir; check workdir 0 '^/tmp$' '^f$'
	fi
	new_case rlimits; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=echo "soft=$(ulimit -n) hard=$(ulimit -Hn) core=$(ulimit -c)"' \
			rlimit=NOFILE=77:88 rlimit=RLIMIT_CORE=unlimited:unlimited
		boot rlimits; check rlimits 0 '^soft=77 hard=88 core=unlimited$'
	fi
	new_case missing; if want "$@"; then
		rec exec=/nope/prog
		boot missing; check missing 127 '^/nope/prog: No such file or directory$'
	fi
	new_case missing_path; if want "$@"; then
		rec exec=no-such-cmd
		boot missing_path; check missing_path 127 '^no-such-cmd: No such file or directory$'
	fi
	new_case notexec; if want "$@"; then
		rec exec=/etc/notexec
		boot notexec; check notexec 126 '^/etc/notexec: Permission denied$'
	fi
	new_case creds; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=id; hostname' uid=1000 gid=1001 hostname=guesty
		boot creds; check creds 0 '^uid=1000 gid=1001' '^guesty$'
	fi
	new_case mounts; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=cat /proc/mounts; exec 3<>/dev/ptmx && ls /dev/pts | tr "\n" " "; echo; ls -l /dev/ptmx; test -c /dev/null && echo devnull-ok; echo "lo=$(cat /sys/class/net/lo/flags)"'
		boot mounts; check mounts 0 '^proc /proc proc' '^sysfs /sys sysfs' '^devtmpfs /dev devtmpfs' \
			'^devpts /dev/pts devpts .*ptmxmode=666' '^tmpfs /dev/shm' '^tmpfs /tmp' '^tmpfs /run' \
			'^0 ptmx $' '^crw-rw-rw-.* /dev/ptmx$' '^devnull-ok$' \
			'^cgroup2 /sys/fs/cgroup cgroup2' '^lo=0x9$'
	fi
	new_case ctty; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=test -t 0 && echo stdin-tty; exec 3</dev/tty && echo ctty-ok; echo "sid=$(cut -d" " -f6 /proc/self/stat) pid=$$"'
		boot ctty; check ctty 0 '^stdin-tty$' '^ctty-ok$'
	fi
	new_case ctrl_c; if want "$@"; then
		# ^C typed on the console must reach the program through its controlling tty.
		rec exec=/bin/sh arg=-c 'arg=trap "echo got INT; exit 9" INT; echo ready; while :; do sleep 1; done'
		INPUT=ctrl_c boot ctrl_c; check ctrl_c 9 'ready$' 'got INT$'
	fi
	new_case forward; if want "$@"; then
		rec exec=/bin/sh arg=-c 'arg=trap "echo got TERM; exit 7" TERM; kill -TERM 1; sleep 30 & wait'
		boot forward; check forward 7 '^got TERM$'
	fi
	new_case orphans; if want "$@"; then
		# An orphan dies of SIGHUP with the session; one ignoring TERM and HUP needs SIGKILL.
		rec exec=/bin/sh arg=-c 'arg=(sleep 1000 &); (trap "" TERM HUP; while :; do sleep 1; done) & sleep 1; echo started; exit 3'
		APPEND=KRUN_DEBUG=1 boot orphans
		check orphans 3 '^started$' 'reaped [0-9]+ \(status 129\)' 'processes left after SIGTERM, sending SIGKILL'
		[ "${boot_secs%.*}" -lt 60 ] || echo "FAIL init_tcg_orphans_fast: took $boot_secs s"
	fi
	new_case oci; if want "$@"; then
		cat > "$case_dir/.krun_config.json" <<-'JSON'
		{"ociVersion": "1.0.2", "process": {"terminal": false,
		 "user": {"uid": 1234, "gid": 55, "additionalGids": [7, 8]},
		 "args": ["sh", "-c", "echo oci \"$1\" $OCIVAR; pwd; id; ulimit -n; hostname", "sh", "a  b"],
		 "env": ["PATH=/bin", "OCIVAR=from-json"], "cwd": "/run",
		 "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 300, "soft": 200}]},
		 "root": {"path": "rootfs"}, "hostname": "ocihost",
		 "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
		 "linux": {"namespaces": [{"type": "pid"}]}}
		JSON
		boot oci; check oci 0 '^oci a  b from-json$' '^/run$' '^uid=1234 gid=55 groups=7,8$' '^200$' '^ocihost$'
	fi
	new_case docker; if want "$@"; then
		echo '{"config": {"Entrypoint": ["/bin/echo", "ep"], "Cmd": ["cmd"], "WorkingDir": "/tmp"}}' \
			> "$case_dir/.krun_config.json"
		boot docker; check docker 0 '^ep cmd$'
	fi
	new_case bad_oci; if want "$@"; then
		echo '{"process": {"args": ["/bin/true"' > "$case_dir/.krun_config.json"
		boot bad_oci; check bad_oci 1 'init.krun: /.krun_config.json: not valid JSON'
	fi
	new_case no_config; if want "$@"; then
		boot no_config; check no_config 1 'init.krun: no program to run'
	fi
	new_case exitfile; if want "$@"; then
		# With the exit file present the status is written there; KRUN_DEBUG also prints it.
		rec exec=/bin/sh arg=-c 'arg=exit 5'
		: > "$case_dir/.krun_exit_code"
		APPEND=KRUN_DEBUG=1 boot exitfile; check exitfile 5 'init.krun: mounted proc on /proc'
	fi
	new_case volume; if want "$@"; then
		# No virtio-fs device here: the init must create the mount point, then fail cleanly.
		rec exec=/bin/true mount=vol0:/data/new/dir
		boot volume; check volume 1 'init.krun: mount virtio-fs vol0 on /data/new/dir: '
	fi
	new_case volume_real; if want "$@"; then
		# A real virtio-fs volume, served by QEMU's own virtiofsd.
		local vfsd=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
		if [ ! -x "$vfsd" ]; then
			echo "SKIP init_tcg_volume_real: no $vfsd"
		else
			mkdir -p "$work/share"
			echo "host file" > "$work/share/hello.txt"
			"$vfsd" --socket-path="$work/vfs.sock" -o source="$work/share" -o cache=none \
				> "$work/virtiofsd.log" 2>&1 &
			local vpid=$!
			for _ in $(seq 50); do [ -S "$work/vfs.sock" ] && break; sleep 0.1; done
			rec exec=/bin/sh arg=-c 'arg=cat /mnt/vol/hello.txt && echo from-guest > /mnt/vol/out.txt' \
				mount=vol0:/mnt/vol
			MACHINE_EXTRA=,memory-backend=mem boot volume_real \
				-global virtio-mmio.force-legacy=false \
				-object memory-backend-memfd,id=mem,size=256M,share=on \
				-chardev socket,id=vfs,path="$work/vfs.sock" \
				-device vhost-user-fs-device,chardev=vfs,tag=vol0
			kill "$vpid" 2> /dev/null
			wait "$vpid" 2> /dev/null
			check volume_real 0 '^host file$'
			grep -qx from-guest "$work/share/out.txt" 2> /dev/null ||
				echo "FAIL init_tcg_volume_real_write: the guest's file is not on the host"
		fi
	fi
	new_case virtiofs_root; if want "$@"; then
		# The product's boot path: root on virtio-fs (KRUN_BASE_CMDLINE), no initramfs.
		# QEMU's virtiofsd serves real files where our backend serves virtual ones.
		local vfsd=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}
		if [ ! -x "$vfsd" ]; then
			echo "SKIP init_tcg_virtiofs_root: no $vfsd"
		else
			local root=$work/rootfs
			cp -a "$base" "$root"
			rm -rf "$root/dev" "$root/run"      # a user's directory may lack them
			printf '%s\0' exec=/bin/sh arg=-c \
				'arg=echo on-virtiofs; cat /proc/mounts; touch /made-in-guest; exit 23' \
				> "$root/.krun_init_config"
			: > "$root/.krun_exit_code"
			"$vfsd" --socket-path="$work/root.sock" -o source="$root" -o cache=none \
				> "$work/virtiofsd-root.log" 2>&1 &
			local vpid=$!
			for _ in $(seq 50); do [ -S "$work/root.sock" ] && break; sleep 0.1; done
			local start=$(date +%s.%N)
			timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max \
				-M microvm,x-option-roms=off,rtc=off,isa-serial=on,acpi=off,memory-backend=mem \
				-m 256 -nodefaults -no-user-config -display none -serial stdio \
				-kernel "$KERNEL" -no-reboot -global virtio-mmio.force-legacy=false \
				-object memory-backend-memfd,id=mem,size=256M,share=on \
				-chardev socket,id=vfs,path="$work/root.sock" \
				-device vhost-user-fs-device,chardev=vfs,tag=krunroot \
				-append "console=ttyS0 root=krunroot rootfstype=virtiofs rw init=/init.krun panic=-1 reboot=t quiet" \
				< /dev/null 2>&1 | tr -d '\r' > "$work/virtiofs_root.out"
			boot_secs=$(echo "$(date +%s.%N) - $start" | bc)
			kill "$vpid" 2> /dev/null
			wait "$vpid" 2> /dev/null
			local status
			status=$(cat "$root/.krun_exit_code")
			if [ "$status" != 23 ]; then
				echo "FAIL init_tcg_virtiofs_root: exit file holds '$status'; output:"
				tail -n 20 "$work/virtiofs_root.out" | sed 's/^/    /'
			elif ! grep -qx on-virtiofs "$work/virtiofs_root.out" || [ ! -e "$root/made-in-guest" ]; then
				echo "FAIL init_tcg_virtiofs_root: program output or file missing"
			elif [ -e "$root/dev" ] || [ -e "$root/run" ]; then
				echo "FAIL init_tcg_virtiofs_root: init created mount points in the user's root"
			else
				printf 'PASS init_tcg_virtiofs_root (%.1f s)\n' "$boot_secs"
			fi
		fi
	fi
	new_case noconsole; if want "$@"; then
		# /dev/console a directory: the kernel gives init no fds; init opens devtmpfs's console.
		mkdir -p "$case_dir/dev/console"
		rec exec=/bin/sh arg=-c 'arg=echo console-ok; for i in 0 1 2; do readlink /proc/self/fd/$i; done'
		boot noconsole
		if [ "$(grep -c '^/dev/console$' "$work/noconsole.out")" = 3 ]; then
			check noconsole 0 '^console-ok$' 'unable to open an initial console'
		else
			echo "FAIL init_tcg_noconsole: fds 0-2 are not all /dev/console"
		fi
	fi
	new_case ports; if want "$@"; then
		# stdout and stderr on named ports (files here), stdin a port fed through a FIFO.
		rec exec=/bin/sh arg=-c 'arg=read -r line; echo "to-stdout $line"; echo to-stderr >&2; test -t 1 || echo stdout-not-tty; test -t 0 || echo stdin-not-tty'
		: > "$work/port_out"; : > "$work/port_err"
		# QEMU opens the pipe's .in FIFO read-write, so this writer waits only until it starts.
		mkfifo "$work/port_in.in" "$work/port_in.out"
		(echo "from stdin port" > "$work/port_in.in") &
		boot ports -device virtio-serial-device \
			-chardev pipe,id=in,path="$work/port_in" \
			-device virtserialport,chardev=in,name=krun-stdin \
			-chardev file,id=out,path="$work/port_out" \
			-device virtserialport,chardev=out,name=krun-stdout \
			-chardev file,id=err,path="$work/port_err" \
			-device virtserialport,chardev=err,name=krun-stderr
		check ports 0
		if grep -qE 'to-stdout|to-stderr' "$work/ports.out"; then
			echo "FAIL init_tcg_ports_files: program output went to the console"
		elif grep -qx "to-stdout from stdin port" "$work/port_out" &&
		     grep -qx stdout-not-tty "$work/port_out" && grep -qx stdin-not-tty "$work/port_out" &&
		     grep -qx to-stderr "$work/port_err"; then
			echo "PASS init_tcg_ports_files"
		else
			echo "FAIL init_tcg_ports_files: out: $(head -c 200 "$work/port_out"); err: $(head -c 200 "$work/port_err")"
		fi
	fi
}

run_cases "$@"
