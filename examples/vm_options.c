/* Options of chroot_vm and tcg_vm: one parser, so both runners take exactly the same arguments. */
#include "vm_options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libkrun.h>

static void usage(FILE *f, const struct vm_options *o, const char *about, const char *extra_env)
{
	fprintf(f,
		"Usage: %s [options] NEWROOT COMMAND [ARG...]\n%s\n\n"
		"  -c CPUS         vCPUs (default 1)\n"
		"  -m MIB          guest RAM in MiB (default 512)\n"
		"  -v HOST:GUEST   share host directory HOST at GUEST (repeatable)\n"
		"  -p HOST:GUEST   forward host TCP port HOST to guest port GUEST (repeatable)\n"
		"  -r RES=CUR:MAX  resource limit, e.g. 7=1024:4096 or NOFILE=1024:4096 (repeatable)\n"
		"  -e K=V          add K=V to the environment the program inherits (repeatable)\n"
		"  -w DIR          working directory in the guest (default /)\n"
		"  -h, --help      this text\n\n"
		"Environment: KRUN_CPUS, KRUN_MEM (defaults for -c, -m), KRUN_LOG_LEVEL (0-5)%s\n",
		o->prog, about, extra_env ? extra_env : ".");
}

static int add_to(const struct vm_options *o, const char **list, unsigned int *n, const char *s)
{
	if (*n >= VM_OPTIONS_MAX_LIST) {
		fprintf(stderr, "%s: too many options of one kind (max %d)\n", o->prog, VM_OPTIONS_MAX_LIST);
		return -1;
	}
	list[(*n)++] = s;
	list[*n] = NULL;
	return 0;
}

static int parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* -e K=V: the program inherits our environment (krun_set_exec with envp NULL). */
static int add_env(const struct vm_options *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[256];

	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		fprintf(stderr, "%s: -e wants K=V, got '%s'\n", o->prog, kv);
		return -1;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	return setenv(key, eq + 1, 1);
}

static int parse_opt(struct vm_options *o, int c, const char *arg)
{
	switch (c) {
	case 'c':
		return parse_uint(arg, 1, 255, &o->cpus);
	case 'm':
		return parse_uint(arg, 1, 1u << 20, &o->ram_mib);
	case 'v':
		return add_to(o, o->volumes, &o->nr_volumes, arg);
	case 'p':
		return add_to(o, o->ports, &o->nr_ports, arg);
	case 'r':
		return add_to(o, o->rlimits, &o->nr_rlimits, arg);
	case 'e':
		return add_env(o, arg);
	case 'w':
		o->workdir = arg;
		return 0;
	}
	return -1;
}

static void env_default(struct vm_options *o, const char *name, int opt)
{
	const char *v = getenv(name);

	if (v && *v && parse_opt(o, opt, v))
		fprintf(stderr, "%s: ignoring %s=%s\n", o->prog, name, v);
}

int vm_options_parse(const char *prog, const char *about, const char *extra_env, int argc,
		     char **argv, struct vm_options *o)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *level = getenv("KRUN_LOG_LEVEL");
	int c;

	*o = (struct vm_options){ .prog = prog, .cpus = 1, .ram_mib = 512, .log_level = 1 };
	env_default(o, "KRUN_CPUS", 'c');
	env_default(o, "KRUN_MEM", 'm');
	if (level && (parse_uint(level, 0, 5, &o->log_level) || !*level))
		fprintf(stderr, "%s: ignoring KRUN_LOG_LEVEL=%s\n", prog, level);
	/* '+': options end at NEWROOT, so COMMAND's own options stay COMMAND's. */
	while ((c = getopt_long(argc, argv, "+c:m:v:p:r:e:w:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout, o, about, extra_env);
			return 1;
		}
		if (c == '?' || parse_opt(o, c, optarg)) {
			if (c != '?')
				fprintf(stderr, "%s: bad value for -%c: '%s'\n", prog, c, optarg);
			usage(stderr, o, about, extra_env);
			return -1;
		}
	}
	if (argc - optind < 2) {
		usage(stderr, o, about, extra_env);
		return -1;
	}
	o->root = argv[optind];
	o->command = argv[optind + 1];
	o->args = &argv[optind + 2];
	return 0;
}

static int check(const struct vm_options *o, int32_t ret, const char *what)
{
	if (ret < 0)
		fprintf(stderr, "%s: %s: %s\n", o->prog, what, strerror(-ret));
	return ret < 0 ? -1 : 0;
}

int vm_options_configure(const struct vm_options *o, uint32_t *ctx_out)
{
	int32_t ctx;

	if (check(o, krun_set_log_level(o->log_level), "krun_set_log_level"))
		return -1;
	ctx = krun_create_ctx();
	if (check(o, ctx, "krun_create_ctx"))
		return -1;
	*ctx_out = (uint32_t)ctx;
	if (check(o, krun_set_vm_config(ctx, (uint8_t)o->cpus, o->ram_mib), "krun_set_vm_config") ||
	    check(o, krun_set_root(ctx, o->root), o->root))
		return -1;
	if (o->nr_volumes && check(o, krun_set_mapped_volumes(ctx, o->volumes), "krun_set_mapped_volumes"))
		return -1;
	if (o->nr_ports && check(o, krun_set_port_map(ctx, o->ports), "krun_set_port_map"))
		return -1;
	if (o->nr_rlimits && check(o, krun_set_rlimits(ctx, o->rlimits), "krun_set_rlimits"))
		return -1;
	if (o->workdir && check(o, krun_set_workdir(ctx, o->workdir), "krun_set_workdir"))
		return -1;
	/* An empty COMMAND sets no program: the init runs NEWROOT/.krun_config.json, as under crun. */
	if (!*o->command)
		return 0;
	/* argv excludes argv[0]; a NULL environment passes ours (with -e additions) on. */
	return check(o, krun_set_exec(ctx, o->command, (const char *const *)o->args, NULL),
		     "krun_set_exec");
}
