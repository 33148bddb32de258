/* Command-line options shared by chroot_vm and tcg_vm, applied through the public API only. */
#ifndef KRUN_EXAMPLES_VM_OPTIONS_H
#define KRUN_EXAMPLES_VM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#define VM_OPTIONS_MAX_LIST 64

struct vm_options {
	const char *prog;
	unsigned int cpus;
	unsigned int ram_mib;
	unsigned int log_level;
	const char *volumes[VM_OPTIONS_MAX_LIST + 1];
	const char *ports[VM_OPTIONS_MAX_LIST + 1];
	const char *rlimits[VM_OPTIONS_MAX_LIST + 1];
	unsigned int nr_volumes, nr_ports, nr_rlimits;
	const char *workdir;
	const char *root;
	const char *command;
	char *const *args;
};

/*
 * Parse `PROG [options] NEWROOT COMMAND [ARG...]`; KRUN_CPUS, KRUN_MEM and KRUN_LOG_LEVEL give
 * the defaults. `about` and `extra_env` complete the usage text. Returns 0 to run, 1 after
 * --help, -1 on a usage error (already reported on stderr).
 */
int vm_options_parse(const char *prog, const char *about, const char *extra_env, int argc,
		     char **argv, struct vm_options *o);
/* Create a context and apply the options, as both runners must; reports errors. 0 or -1. */
int vm_options_configure(const struct vm_options *o, uint32_t *ctx_out);

#endif
