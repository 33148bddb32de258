#!/bin/sh
# Guest half of tests/e2e/fs.sh: runs inside the VM with the host temp share mapped on /work.
# POSIX sh (busybox ash in the busybox root, dash in the host root). One "PASS name" /
# "FAIL name: why" line per check, then "DONE". Usage: guest.sh ROOT CANARY CHECK...
# ROOT is bb or host; CANARY is the host path of the canary directory next to the share;
# each CHECK names a function t_CHECK below (tests/e2e/fs.sh passes the list).
# Never writes outside /work and /tmp: on the host root, / is the host's own file system.
CANARY=$2   # $1, the root (bb or host), is only for the reader of a process list
shift 2
CNAME=${CANARY##*/}
W=/work
H=$W/.t/fshelper
cd "$W" || { echo "FAIL cd: cannot cd $W"; echo DONE; exit 0; }

# check NAME CMD...: PASS when CMD succeeds; its last stderr/stdout lines are the reason.
# (The guest clock drifts under TCG: fs.sh times the checks by when their lines arrive.)
check() {
	name=$1; shift
	if out=$("$@" 2>&1); then echo "PASS $name"; else echo "FAIL $name: $(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}
# want EXPECTED ACTUAL WHAT: fails with a message when they differ.
want() { [ "$1" = "$2" ] || { echo "$3: got '$2', expected '$1'"; return 1; }; }
ino() { ls -id "$1" | { read -r i _; echo "$i"; }; }

# --- files and directories --------------------------------------------------------------
t_crud() {
	mkdir -p crud/a/b/c && [ -d crud/a/b/c ] || { echo "mkdir -p"; return 1; }
	echo one > crud/f && want one "$(cat crud/f)" create || return 1
	echo two > crud/f && want two "$(cat crud/f)" overwrite || return 1
	echo three >> crud/f && want "two three" "$(echo $(cat crud/f))" append || return 1
	echo kept > crud/keep
	rm crud/f && ! [ -e crud/f ] || { echo "rm"; return 1; }
	! rmdir crud/a 2>/dev/null || { echo "rmdir of a non-empty dir succeeded"; return 1; }
	rmdir crud/a/b/c crud/a/b && ! [ -e crud/a/b ] || { echo rmdir; return 1; }
	want "a keep" "$(echo $(ls crud))" listing
}
t_readdir() {
	mkdir many && i=0
	while [ $i -lt 300 ]; do : > many/file_$i; i=$((i + 1)); done
	want 300 "$(ls many | wc -l | tr -d ' ')" "ls count" &&
	want 300 "$(ls -l many | grep -c file_)" "ls -l count"
}
t_touch_times() {
	touch -d '2001-02-03 04:05:06' crud/keep &&
	want 2001-02-03 "$(date -r crud/keep +%Y-%m-%d 2>/dev/null || stat -c %y crud/keep | cut -c1-10)" mtime
}
t_o_trunc() {
	printf 0123456789 > otr && printf ab > otr && want ab "$(cat otr)" "after O_TRUNC" &&
	want 2 "$(stat -c %s otr)" size && : > otr && want 0 "$(stat -c %s otr)" "size after : >"
}
t_truncate() {
	printf 0123456789 > tr2 && truncate -s 4 tr2 && want 0123 "$(cat tr2)" shrink &&
	truncate -s 10000 tr2 && want 10000 "$(stat -c %s tr2)" grow
}

# --- rename ------------------------------------------------------------------------------
t_rename_file() { echo r > r1 && mv r1 r2 && ! [ -e r1 ] && want r "$(cat r2)" content; }
t_rename_over_file() {
	echo new > ro_src && echo old > ro_dst && ln ro_dst ro_dst_link &&
	want ok "$($H rename2 plain ro_src ro_dst)" rename &&
	! [ -e ro_src ] && want new "$(cat ro_dst)" "target content" &&
	want old "$(cat ro_dst_link)" "old inode via its other link"
}
t_rename_dir_over_empty_dir() {
	mkdir -p rd_src rd_dst && echo in > rd_src/f &&
	want ok "$($H rename2 plain rd_src rd_dst)" rename && ! [ -e rd_src ] &&
	want in "$(cat rd_dst/f)" content
}
t_rename_dir_over_nonempty_dir() {
	mkdir -p rn_src rn_dst && : > rn_dst/f &&
	want ENOTEMPTY "$($H rename2 plain rn_src rn_dst)" rename
}
t_rename_file_over_dir() {
	: > rf_src && mkdir rf_dst && want EISDIR "$($H rename2 plain rf_src rf_dst)" rename
}
t_rename_across_dirs() { mkdir -p ra1 ra2 && echo x > ra1/f && mv ra1/f ra2/g && want x "$(cat ra2/g)" moved; }
t_rename_noreplace() {
	echo a > nr_a && echo b > nr_b &&
	want EEXIST "$($H rename2 noreplace nr_a nr_b)" "onto existing" &&
	want b "$(cat nr_b)" "target untouched" && want a "$(cat nr_a)" "source untouched" &&
	want ok "$($H rename2 noreplace nr_a nr_c)" "onto free name" && want a "$(cat nr_c)" moved
}
t_rename_exchange() {
	echo a > ex_a && mkdir ex_d && echo in > ex_d/f &&
	want ok "$($H rename2 exchange ex_a ex_d)" exchange &&
	[ -d ex_a ] && want in "$(cat ex_a/f)" "dir now at ex_a" && want a "$(cat ex_d)" "file now at ex_d" &&
	want ENOENT "$($H rename2 exchange ex_a ex_missing)" "exchange with a missing name"
}

# --- links -------------------------------------------------------------------------------
t_hardlink() {
	mkdir hl && echo one > hl/a && ln hl/a hl/b &&
	want "$(ino hl/a)" "$(ino hl/b)" "inode of b" && want 2 "$(stat -c %h hl/a)" "link count" &&
	echo two >> hl/b && want "one two" "$(echo $(cat hl/a))" "write seen through the other name" &&
	ln hl/a hl/c && rm hl/b && want 2 "$(stat -c %h hl/a)" "link count after rm"
}
t_symlink_relative() {
	mkdir -p sl/sub && echo target > sl/sub/t && ln -s sub/t sl/rel && ln -s ../sub sl/sub/updir &&
	want sub/t "$(readlink sl/rel)" readlink && want target "$(cat sl/rel)" "read through" &&
	want target "$(cat sl/sub/updir/t)" "dir link" && [ -L sl/rel ] &&
	want "symbolic link" "$(stat -c %F sl/rel)" "type"
}
t_symlink_absolute() {
	ln -s /work/sl/sub/t sl/abs && want /work/sl/sub/t "$(readlink sl/abs)" readlink &&
	want target "$(cat sl/abs)" "read through" && echo more >> sl/abs &&
	want "target more" "$(echo $(cat sl/sub/t))" "write through"
}
t_symlink_dangling() { ln -s nowhere sl/dang && want nowhere "$(readlink sl/dang)" readlink && ! cat sl/dang 2>/dev/null; }

# --- permissions -------------------------------------------------------------------------
t_chmod() {
	echo c > pm && chmod 640 pm && want 640 "$(stat -c %a pm)" mode &&
	printf '#!/bin/sh\necho ran-script\n' > pm.sh && chmod 755 pm.sh && want ran-script "$(./pm.sh)" exec &&
	chmod 644 pm.sh && ! ./pm.sh 2>/dev/null
}
t_umask() {
	(umask 027 && mkdir um && : > um/f) && want 750 "$(stat -c %a um)" dir && want 640 "$(stat -c %a um/f)" file
}
t_chown() { : > own && chown 1234:5678 own && want 1234:5678 "$(stat -c %u:%g own)" owner; }
t_nonroot_eacces() {
	echo secret > priv && chmod 600 priv && mkdir -p rootdir && chmod 755 rootdir &&
	want EACCES "$($H asuser 1000 1000 $H open priv r)" "open 0600 root file as uid 1000" &&
	want EACCES "$($H asuser 1000 1000 $H open rootdir/new c)" "create in a 0755 root dir" &&
	! [ -e rootdir/new ] && chmod 644 priv &&
	want ok "$($H asuser 1000 1000 $H open priv r)" "open after chmod 644" &&
	want EACCES "$($H asuser 1000 1000 $H open priv w)" "write a 0644 root file"
}
t_nonroot_create() {
	mkdir -p pub && chmod 777 pub && want ok "$($H asuser 1000 1001 $H open pub/mine c)" create &&
	want 1000:1001 "$(stat -c %u:%g pub/mine)" owner
}

# --- xattrs, locks, mmap, sparse, big, unlinked, append ----------------------------------
t_xattr() { : > xa && $H xattr xa; }
t_locks() { $H locks lk; }
t_getlk_pid() { $H getlkpid lk2; }
# O_TMPFILE (FUSE_TMPFILE), named by linkat; one left unnamed never shows (fs.sh h_tmpfile).
t_tmpfile() { mkdir -p tmpf && $H tmpfile tmpf named; }
# chattr +A through FS_IOC_SETFLAGS (FUSE_IOCTL); another ioctl is ENOTTY (fs.sh h_fileattr).
t_fileattr() { : > fa && $H fileattr fa; }
t_mmap_write() { $H mmap mm "mmap-from-guest"; }
t_mmap_read() { $H mmapread .t/hostfile 100000 "host-wrote-this"; }
t_sparse() {
	$H sparse sp && kb=$(du -k sp | cut -f1) && [ "$kb" -lt 1024 ] || { echo "du $kb KiB"; return 1; }
}
t_sparse_truncate() {
	truncate -s 1G sp2 && want 1073741824 "$(stat -c %s sp2)" size &&
	kb=$(du -k sp2 | cut -f1) && [ "$kb" -lt 64 ] || { echo "du $kb KiB"; return 1; }
}
# In: the guest's sha256 of the host-made file. In and out: dd, so every byte is read and
# written through the guest (GNU cp and cat hand the copy to the server with copy_file_range);
# the host checks the copy's sha256 (fs.sh h_large_file). Two checks: fs.sh times them apart.
t_large_file_in() { want "$(cat .t/big.sha)" "$(sha256sum < .t/big.in | cut -d' ' -f1)" "sha256 in the guest"; }
t_large_file() {
	dd if=.t/big.in of=big.out bs=1048576 2>/dev/null &&
	want "$(stat -c %s .t/big.in)" "$(stat -c %s big.out)" "size of the copy"
}
t_open_unlinked() { $H unlinked ul; }
t_o_append() { $H append ap 1000; }
t_fifo() { mkfifo ff && [ -p ff ] && (echo via-fifo > ff &) && want via-fifo "$(cat ff)" "fifo data"; }

# --- escapes -----------------------------------------------------------------------------
# The canary directory is the share's host sibling: ../$CNAME from the share root on the host.
t_escape_dotdot() {
	want "$(ino /)" "$(ino /work/..)" "inode of /work/.. (the guest root)" &&
	! [ -e "/work/../$CNAME" ] && ! cat "/work/../$CNAME/secret" 2>/dev/null &&
	! ls /work/../.. 2>/dev/null | grep -qx "$CNAME"
}
# Host-made links (fs.sh): esc_rel -> ../CANARY/secret, esc_deep -> ../../../../..HOSTPATH,
# esc_abs -> HOSTPATH/secret, esc_dir -> ..
t_escape_symlink_relative() {
	! cat esc_rel 2>/dev/null && ! cat esc_deep 2>/dev/null &&
	ln -s "../$CNAME/secret" g_rel && ! cat g_rel 2>/dev/null
}
t_escape_symlink_absolute() {
	! cat esc_abs 2>/dev/null && ln -s "$CANARY/secret" g_abs && ! cat g_abs 2>/dev/null
}
t_escape_symlink_dir() {
	! cat "esc_dir/$CNAME/secret" 2>/dev/null && ! ls "esc_dir/$CNAME" 2>/dev/null
}
# Writes through links that point out: the targets' directories do not exist in the guest,
# so nothing may be created anywhere (on the host root, / is the host's: never write there).
t_escape_write() {
	! sh -c 'echo pwned > esc_rel' 2>/dev/null && ! sh -c 'echo pwned > esc_abs' 2>/dev/null &&
	! sh -c 'echo pwned >> g_rel' 2>/dev/null
}
t_escape_hardlink_out() {
	want EXDEV "$($H link /bin/sh hl_out)" "link a root file into the volume" &&
	want ENOENT "$($H link esc_rel hl_follow follow)" "link following an escaping symlink" &&
	want ok "$($H link esc_rel hl_sym)" "link the symlink itself" && [ -L hl_sym ] && ! cat hl_sym 2>/dev/null
}
t_escape_mknod() {
	want EPERM "$($H mknod cdev c 1 3)" "char device" && want EPERM "$($H mknod bdev b 7 0)" "block device" &&
	! [ -e cdev ] && ! [ -e bdev ]
}
# hostnull (c 1 3) and hostblk (b 7 0) were made on the host in the share.
# Refused means any error; "ok" means the guest kernel opened a device through the share.
t_escape_devnode_open_chr() {
	r=$($H open hostnull rw); [ "$r" != ok ] || { echo "open of host-made char device node c 1 3 succeeded (guest's own /dev/null)"; return 1; }
}
t_escape_devnode_open_blk() {
	r=$($H open hostblk r); [ "$r" != ok ] || { echo "open of host-made block device node b 7 0 succeeded"; return 1; }
}

# --- programs from the host root ---------------------------------------------------------
t_git() {
	mkdir repo && cd repo && git init -q && git config user.email t@krun && git config user.name krun &&
	echo hello > README && git add README && git commit -qm first &&
	echo more >> README && git commit -qam second && want 2 "$(git rev-list --count HEAD)" commits &&
	git fsck --no-progress --strict 2>&1 && want "" "$(git status --porcelain)" "clean tree"
	r=$?; cd "$W"; return $r
}
t_gcc() {
	mkdir -p cc && printf '#include <stdio.h>\nint main(void) { puts("hello from guest gcc"); return 0; }\n' > cc/hello.c &&
	gcc -O1 -o cc/hello cc/hello.c && want "hello from guest gcc" "$(./cc/hello)" output
}

echo "START"
for t in "$@"; do
	check "$t" "t_$t"
done
echo DONE
