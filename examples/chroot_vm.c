/* chroot_vm NEWROOT COMMAND [ARG...]: run COMMAND from NEWROOT in a microVM (public API only). */
#include <libkrun.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CPUS 1
#define DEFAULT_MEM_MIB 512

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s NEWROOT COMMAND [ARG...]\n"
		"Runs COMMAND with NEWROOT as its root directory inside a KVM microVM.\n"
		"Environment: KRUN_CPUS (vCPUs, default %d), KRUN_MEM (MiB, default %d),\n"
		"KRUN_LOG_LEVEL (0-5, default 1).\n",
		prog, DEFAULT_CPUS, DEFAULT_MEM_MIB);
}

/* A positive decimal from the environment, or the default; exits on garbage. */
static unsigned long env_number(const char *name, unsigned long def, unsigned long max)
{
	const char *s = getenv(name);
	unsigned long v;
	char *end;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max) {
		fprintf(stderr, "chroot_vm: %s=%s is not a number up to %lu\n", name, s, max);
		exit(1);
	}
	return v;
}

static void check(const char *what, int ret)
{
	if (ret < 0) {
		fprintf(stderr, "chroot_vm: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	unsigned long cpus, mem;
	int ctx;

	if (argc < 3) {
		usage(argv[0]);
		return 1;
	}
	cpus = env_number("KRUN_CPUS", DEFAULT_CPUS, 255);
	mem = env_number("KRUN_MEM", DEFAULT_MEM_MIB, UINT32_MAX);
	check("krun_set_log_level",
	      krun_set_log_level((uint32_t)env_number("KRUN_LOG_LEVEL", 1, UINT32_MAX)));
	ctx = krun_create_ctx();
	check("krun_create_ctx", ctx);
	check("krun_set_vm_config", krun_set_vm_config((uint32_t)ctx, (uint8_t)cpus, (uint32_t)mem));
	check("krun_set_root", krun_set_root((uint32_t)ctx, argv[1]));
	check("krun_set_workdir", krun_set_workdir((uint32_t)ctx, "/"));
	/* argv excludes argv[0]; a NULL environment passes ours on. */
	check("krun_set_exec", krun_set_exec((uint32_t)ctx, argv[2], (const char *const *)&argv[3],
					     NULL));
	/* Returns only if the VM could not start; otherwise the process exits with the guest. */
	check("krun_start_enter", krun_start_enter((uint32_t)ctx));
	fprintf(stderr, "chroot_vm: krun_start_enter returned\n");
	return 1;
}
