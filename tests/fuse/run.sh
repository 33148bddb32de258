#!/bin/bash
# Mounts a scratch directory through our FUSE server (tests/fuse/fuse_mount on /dev/fuse) and
# runs POSIX checks with ordinary tools, plus escape checks from the mount side.
# Prints one "PASS name" / "FAIL name: why" / "SKIP name: why" line per check.
BUILD=${BUILD:-build}
cd "$(dirname "$0")/../.." || exit 2
BIN=$PWD/$BUILD/tests/fuse/fuse_mount

if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
	echo "SKIP fuse: needs root and /dev/fuse"
	exit 0
fi
if [ ! -x "$BIN" ]; then
	echo "FAIL fuse: $BIN not built"
	exit 1
fi
# Each inode the kernel caches holds one O_PATH fd in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

T=$(mktemp -d /tmp/krun_fuse.XXXXXX)
SRC=$T/src/share          # exported; $T/src/outside is its host sibling
OUT=$T/src/outside
MNT=$T/mnt/m              # $T/mnt/outside does not exist: relative escapes land there
mkdir -p "$SRC" "$OUT" "$MNT"
echo SECRET > "$OUT/secret"
ln -s "../outside/secret" "$SRC/rel_escape"
ln -s "../outside" "$SRC/dir_escape"
SERVER_PID=

cleanup() {
	if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
	[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS fuse_$1"; }
fail() { echo "FAIL fuse_$1: $2"; }
# check NAME CMD...: PASS when the command succeeds.
check() {
	local name=$1 err; shift
	if err=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$err" | tail -n 3 | tr '\n' ' ')"; fi
}

"$BIN" "$SRC" "$MNT" 2> "$T/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
if ! mountpoint -q "$MNT"; then
	fail mount "not mounted: $(tail -n 3 "$T/server.log")"
	exit 1
fi
pass mount
M=$MNT

t_create_read() { echo "hello" > "$M/a" && [ "$(cat "$M/a")" = hello ] && [ "$(cat "$SRC/a")" = hello ]; }
t_append() { echo one > "$M/ap" && echo two >> "$M/ap" && [ "$(cat "$M/ap")" = "$(printf 'one\ntwo')" ]; }
t_truncate() {
	printf 0123456789 > "$M/tr" && truncate -s 4 "$M/tr" && [ "$(cat "$M/tr")" = 0123 ] &&
	truncate -s 10000 "$M/tr" && [ "$(stat -c %s "$M/tr")" = 10000 ]
}
t_rename() {
	echo r > "$M/r1" && mv "$M/r1" "$M/r2" && [ ! -e "$M/r1" ] && [ "$(cat "$M/r2")" = r ] &&
	mkdir "$M/rd" && mv "$M/r2" "$M/rd/r3" && [ -f "$SRC/rd/r3" ]
}
t_link() {
	echo l > "$M/l1" && ln "$M/l1" "$M/l2" && [ "$(stat -c %h "$M/l1")" = 2 ] &&
	[ "$(stat -c %i "$M/l1")" = "$(stat -c %i "$M/l2")" ]
}
t_symlink() { ln -s a "$M/s1" && [ "$(readlink "$M/s1")" = a ] && [ "$(cat "$M/s1")" = hello ]; }
t_chmod() { echo c > "$M/c" && chmod 640 "$M/c" && [ "$(stat -c %a "$M/c")" = 640 ] && [ "$(stat -c %a "$SRC/c")" = 640 ]; }
# HANDLE_KILLPRIV_V2: a write, O_TRUNC or truncate by a user without CAP_FSETID drops suid/sgid.
as_nobody() { chmod 711 "$T" "$T/mnt" && setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$1"; }
t_killpriv() {
	echo k > "$M/k1" && echo k > "$M/k2" && echo k > "$M/k3" && chmod 6777 "$M/k1" "$M/k2" "$M/k3" &&
	as_nobody "echo more >> '$M/k1' && : > '$M/k2' && truncate -s 1 '$M/k3'" &&
	[ "$(stat -c %a "$SRC/k1" "$SRC/k2" "$SRC/k3" | sort -u)" = 777 ]
}
t_umask_mode() { (umask 027 && mkdir "$M/um" && touch "$M/um/f") && [ "$(stat -c %a "$M/um")" = 750 ] && [ "$(stat -c %a "$M/um/f")" = 640 ]; }
t_touch_times() { touch -d '2001-02-03 04:05:06' "$M/a" && [ "$(stat -c %Y "$M/a")" = "$(date -d '2001-02-03 04:05:06' +%s)" ]; }
t_mkdir_rmdir() {
	mkdir -p "$M/d1/d2/d3" && [ -d "$SRC/d1/d2/d3" ] && ! rmdir "$M/d1" 2>/dev/null &&
	rmdir "$M/d1/d2/d3" "$M/d1/d2" "$M/d1" && [ ! -e "$SRC/d1" ]
}
t_unlink() { echo u > "$M/u" && rm "$M/u" && [ ! -e "$M/u" ] && [ ! -e "$SRC/u" ]; }
t_readdir() {
	mkdir "$M/many" && for i in $(seq 300); do : > "$M/many/file_$i"; done &&
	[ "$(ls "$M/many" | wc -l)" = 300 ] && [ "$(ls -l "$M/many" | grep -c file_)" = 300 ]
}
t_xattr() {
	python3 - "$M/a" <<'PY'
import os, sys
p = sys.argv[1]
os.setxattr(p, "user.krun", b"value")
assert os.getxattr(p, "user.krun") == b"value"
assert "user.krun" in os.listxattr(p)
os.removexattr(p, "user.krun")
assert "user.krun" not in os.listxattr(p)
PY
}
t_flock() {
	: > "$M/lockf" && flock "$M/lockf" sleep 1 & local bg=$!
	sleep 0.3
	local busy=0; flock -n "$M/lockf" true || busy=1
	wait $bg; [ $busy = 1 ] && flock -w 5 "$M/lockf" true
}
t_posix_lock() {
	python3 - "$M/plock" <<'PY'
import fcntl, os, sys, time
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    fd2 = os.open(p, os.O_RDWR)
    try:
        fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os._exit(1)        # should have conflicted
    except OSError:
        pass
    fcntl.lockf(fd2, fcntl.LOCK_EX)   # waits (SETLKW) until the parent unlocks
    os._exit(0)
time.sleep(0.3)
fcntl.lockf(fd, fcntl.LOCK_UN)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
PY
}
t_mmap() {
	python3 - "$M/mm" <<'PY'
import mmap, os, sys
p = sys.argv[1]
with open(p, "wb") as f: f.write(b"\0" * 8192)
with open(p, "r+b") as f:
    m = mmap.mmap(f.fileno(), 8192)
    m[100:105] = b"hello"; m.flush(); m.close()
with open(p, "rb") as f: assert f.read()[100:105] == b"hello"
PY
}
t_large_file() {
	head -c $((48 << 20)) /dev/urandom > "$T/big" && cp "$T/big" "$M/big" &&
	[ "$(sha256sum < "$T/big")" = "$(sha256sum < "$M/big")" ] &&
	[ "$(sha256sum < "$T/big")" = "$(sha256sum < "$SRC/big")" ]
}
# --no-dereference: relative symlinks in /usr/include point elsewhere once copied.
t_cp_tree() { cp -a /usr/include "$M/inc" && diff -r --no-dereference /usr/include "$M/inc" && diff -r --no-dereference /usr/include "$SRC/inc"; }
t_fifo() { mkfifo "$M/fifo" && [ -p "$SRC/fifo" ]; }

# Escapes, seen from the mount: the kernel resolves symlinks relative to the *mount*, so a
# server that followed them on the host would hand out $OUT/secret.
t_escape_symlink() { ! cat "$M/rel_escape" 2>/dev/null && [ "$(stat -c %F "$M/rel_escape")" = "symbolic link" ]; }
t_escape_dirlink() { ! ls "$M/dir_escape/" 2>/dev/null && ! cat "$M/dir_escape/secret" 2>/dev/null; }
t_escape_write() { ! sh -c "echo pwned > '$M/rel_escape'" 2>/dev/null && [ "$(cat "$OUT/secret")" = SECRET ]; }
t_escape_hardlink() { ln "$M/rel_escape" "$M/rel2" && [ "$(stat -c %F "$SRC/rel2")" = "symbolic link" ] && [ "$(stat -c %h "$OUT/secret")" = 1 ]; }
t_escape_mknod() { ! mknod "$M/null" c 1 3 2>/dev/null && [ ! -e "$SRC/null" ]; }
t_escape_dotdot() { [ "$(stat -c %i "$M/..")" != "$(stat -c %i "$T/src")" ] && ! ls "$M/../outside" 2>/dev/null; }
t_escape_swap() {
	# A file looked up (and cached) by the guest, then replaced on the host by a symlink out.
	echo inside > "$SRC/sw" && cat "$M/sw" > /dev/null && exec 7< "$M/sw" &&
	ln -s ../outside/secret "$SRC/sw.new" && mv -T "$SRC/sw.new" "$SRC/sw" &&
	[ "$(cat <&7)" = inside ] && exec 7<&- && ! grep -q SECRET "$M/sw" 2>/dev/null
}

for t in create_read append truncate rename link symlink chmod killpriv umask_mode touch_times mkdir_rmdir \
	 unlink readdir xattr flock posix_lock mmap large_file cp_tree fifo \
	 escape_symlink escape_dirlink escape_write escape_hardlink escape_mknod escape_dotdot \
	 escape_swap; do
	check "$t" "t_$t"
done

# Unmount: the server must notice and exit cleanly.
umount "$MNT"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
	fail unmount_exit "server still running after umount"
else
	wait "$SERVER_PID"; rc=$?
	[ "$rc" = 0 ] && pass unmount_exit || fail unmount_exit "exit status $rc"
fi
SERVER_PID=

# Read-only share.
"$BIN" -r "$SRC" "$MNT" 2> "$T/server_ro.log" &
SERVER_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
t_read_only() { [ "$(cat "$M/a")" = hello ] && ! sh -c "echo x > '$M/a'" 2>/dev/null && ! touch "$M/new" 2>/dev/null && ! rm "$M/a" 2>/dev/null && [ -e "$SRC/a" ]; }
check read_only t_read_only
if grep -qiE "error|malformed" "$T/server.log" "$T/server_ro.log"; then
	fail server_log "$(grep -hiE "error|malformed" "$T/server.log" "$T/server_ro.log" | head -n 3 | tr '\n' ' ')"
else
	pass server_log
fi
exit 0
