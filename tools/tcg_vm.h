/* tcg_vm: chroot_vm's twin on QEMU's software CPU, with our device backends over vhost-user. */
#ifndef KRUN_TOOLS_TCG_VM_H
#define KRUN_TOOLS_TCG_VM_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct evloop;
struct launch_spec;
struct vhost_user;
struct virtio_dev;

/* Guest streams carried by their own socket chardev (common/krun_init.h "Standard streams"). */
enum tcg_vm_stream { TVM_CONSOLE, TVM_STDIN, TVM_STDOUT, TVM_STDERR, TVM_NR_STREAMS };

/* One vhost-user-fs backend: its socket, its event-loop thread, the served device. */
struct tcg_vm_fs {
	int listen_fd;
	struct evloop *loop;
	pthread_t thread;
	bool running;
	struct virtio_dev *dev;         /* owned by vu once vu exists */
	struct vhost_user *vu;
};

struct tcg_vm {
	struct launch_spec *spec;
	const char *vmlinux;
	bool debug;
	char dir[96];                       /* private temp dir for the sockets (fits sun_path) */
	char serial_log[PATH_MAX];          /* KRUN_DEBUG: kernel log on ttyS0 ("" otherwise) */
	bool tty[3];                        /* host fd 0/1/2 is a terminal */
	bool stream_used[TVM_NR_STREAMS];
	int stream_listen[TVM_NR_STREAMS];
	int stream_fd[TVM_NR_STREAMS];
	struct tcg_vm_fs *fs;
	unsigned int nr_fs;
	/* virtio-vsock with the TSI proxy as its backend (vhost-user-vsock-device). */
	struct tcg_vm_fs vsock;
	bool use_vsock;
	pid_t qemu;
	int qemu_status;                    /* waitpid status once qemu ended, else -1 */
};

/* tcg_vm_clock.c: the host TSC rate in kHz for the guest's tsc_early_khz=, 0 if unknown. */
unsigned long tcg_vm_tsc_khz(void);

/* tcg_vm_vsock.c: the vsock device and TSI proxy, created before QEMU starts. */
int tcg_vm_vsock_prepare(struct tcg_vm *t);

/* tcg_vm_qemu.c: sockets, the QEMU command line, the child process. */
int tcg_vm_qemu_prepare(struct tcg_vm *t);
int tcg_vm_qemu_spawn(struct tcg_vm *t);
/* Accept QEMU's connections and start the fs backends; 0 or -errno (QEMU died, timeout). */
int tcg_vm_qemu_connect(struct tcg_vm *t);
/* SIGTERM, then SIGKILL after a grace period; reaps the child. */
void tcg_vm_qemu_kill(struct tcg_vm *t);
/* Stop the backend threads and free them, close sockets, remove the temp dir. */
void tcg_vm_qemu_cleanup(struct tcg_vm *t);
/* Log the rings of every backend still connected (a stalled guest's last state). */
void tcg_vm_qemu_dump_devices(const struct tcg_vm *t);
/* Print QEMU's own error output (kept in the temp dir) to stderr. */
void tcg_vm_qemu_print_log(const struct tcg_vm *t);
/* Path of a file in the private temp dir. */
void tcg_vm_path(const struct tcg_vm *t, const char *name, char *buf, size_t size);

/* tcg_vm_io.c: the stdio proxy between the host fds and the guest's console/ports. */
void tcg_vm_io_choose_streams(struct tcg_vm *t);
/*
 * Proxy until QEMU exits or a signal arrives on sigfd. Returns 0 when QEMU ended (its output
 * drained), or the number of the terminating signal.
 */
int tcg_vm_io_run(struct tcg_vm *t, int sigfd);
/* Raw mode for a terminal stdin (the guest's tty does the line editing); restore undoes it. */
void tcg_vm_io_tty_raw(void);
void tcg_vm_io_tty_restore(void);
/* The last console bytes, for failure reports. */
void tcg_vm_io_print_console_tail(void);

#endif
