/* seccomp-BPF allow-list for the VMM's threads once the VM is built (docs/security.md). */
#ifndef KRUN_VMM_SECCOMP_H
#define KRUN_VMM_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

/*
 * What vmm_run does with the filter (struct vmm_config.seccomp_mode). SECCOMP_LEVEL_ENV (0,
 * the zero-initialised default) reads KRUN_SECCOMP=off|log|on, and falls back to
 * SECCOMP_LEVEL_DEFAULT when unset. LOG allows everything but has the kernel log each call
 * outside the list (audit type=1326); ON kills the whole process on such a call (SIGSYS).
 */
enum seccomp_level {
	SECCOMP_LEVEL_ENV = 0,
	SECCOMP_LEVEL_OFF,
	SECCOMP_LEVEL_LOG,
	SECCOMP_LEVEL_ON,
};

/* Enforcing: every device backend has run Linux guests under it (docs/security.md). */
#define SECCOMP_LEVEL_DEFAULT SECCOMP_LEVEL_ON
/* Upper bound of the filter's length, in instructions (well under BPF_MAXINSNS). */
#define SECCOMP_MAX_INSNS 512

/* The level `level` stands for: ENV resolved through KRUN_SECCOMP; -EINVAL for a bad value. */
int seccomp_resolve(int level);

/* "off", "log", "on" (or "?"). */
const char *seccomp_level_name(int level);

/*
 * Write the filter for `level` (LOG or ON) into prog[0..cap); returns its length or -errno
 * (-ENOSPC when cap is too small, -EINVAL for another level).
 */
int seccomp_build(int level, struct sock_filter *prog, size_t cap);

/* True in AddressSanitizer builds, whose filter also lets LeakSanitizer's tracer run. */
int seccomp_sanitizer_build(void);

/*
 * Resolve `level` and, unless it is OFF, set no_new_privs and install the filter on every
 * thread of the process (SECCOMP_FILTER_FLAG_TSYNC). Irreversible: the process keeps the filter
 * after vmm_run returns. 0 or -errno (-EBUSY: another thread has a foreign filter); in LOG
 * mode a failure to install is only a warning.
 */
int seccomp_apply(int level) __attribute__((warn_unused_result));

/*
 * The same for the calling thread only (and the threads it creates later): for a process
 * whose other threads legitimately need more, e.g. tcg_vm, whose main thread supervises QEMU
 * while its vhost-user backend threads run our devices. ON still kills the whole process.
 */
int seccomp_apply_thread(int level) __attribute__((warn_unused_result));

#endif
