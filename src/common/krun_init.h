/*
 * The contract between the host side (VMM or vhost-user backend) and our guest init.
 * Shared by both builds; keep it plain C with no host-only includes.
 *
 * Boot: the kernel mounts the root virtio-fs (tag KRUN_ROOT_TAG) and runs KRUN_INIT_PATH.
 * The root export serves three virtual files that never touch the host directory:
 *   KRUN_INIT_PATH        the static init binary (read-only, 0555)
 *   KRUN_INIT_CONFIG_PATH the workload description (read-only, 0444), records "key=value\0":
 *       exec=PATH       program to run (absent: /.krun_config.json in the root, OCI format)
 *       arg=VALUE       argv[1..], in order (argv[0] is the exec path)
 *       env=K=V         the complete environment, in order
 *       workdir=PATH    working directory
 *       rlimit=RES=CUR:MAX   RES a number (RLIMIT_*) or a name (NOFILE, RLIMIT_NOFILE, ...)
 *       hostname=NAME
 *       mount=TAG:PATH  a virtio-fs tag the init mounts at guest PATH (mapped volumes)
 *       uid=N, gid=N    credentials for the program
 *   KRUN_EXIT_PATH        write-only: init writes the program's status as decimal text
 *                         (exit code, or 128+signal) before it reboots the VM.
 * The init then calls reboot(RB_AUTOBOOT); with reboot=t and no reboot allowed, the VM ends.
 *
 * Standard streams: the console (hvc0, a tty) carries every stream whose host end is a
 * terminal. A host stream that is not a terminal (pipe, file) gets its own virtio-console
 * port (multiport, virtio 1.2 section 5.3.6) named KRUN_PORT_STDIN/STDOUT/STDERR, a plain
 * byte stream: no line discipline, and the host closing it is EOF for the guest reader.
 * The init looks the names up in /sys/class/virtio-ports/ and gives the program those ports
 * as fds 0/1/2 where they exist, the console otherwise.
 */
#ifndef KRUN_COMMON_KRUN_INIT_H
#define KRUN_COMMON_KRUN_INIT_H

#define KRUN_ROOT_TAG "krunroot"
#define KRUN_INIT_NAME "init.krun"
#define KRUN_INIT_PATH "/init.krun"
#define KRUN_INIT_CONFIG_NAME ".krun_init_config"
#define KRUN_INIT_CONFIG_PATH "/.krun_init_config"
#define KRUN_EXIT_NAME ".krun_exit_code"
#define KRUN_EXIT_PATH "/.krun_exit_code"
#define KRUN_OCI_CONFIG_PATH "/.krun_config.json"

#define KRUN_PORT_STDIN "krun-stdin"
#define KRUN_PORT_STDOUT "krun-stdout"
#define KRUN_PORT_STDERR "krun-stderr"

/* Guest kernel command line common to every transport (the VMM adds device entries). */
#define KRUN_BASE_CMDLINE \
	"root=" KRUN_ROOT_TAG " rootfstype=virtiofs rw init=" KRUN_INIT_PATH \
	" panic=-1 reboot=t quiet no_timer_check tsc=reliable"

/* Status when the guest ended without the init reporting one (crash, panic, reset). */
#define KRUN_STATUS_NO_REPORT 1
/* Status for a program that could not be found or executed, as shells use. */
#define KRUN_STATUS_NOT_FOUND 127
#define KRUN_STATUS_NOT_EXEC 126

#endif
