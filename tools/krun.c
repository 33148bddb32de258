/* krun: the command for people: `krun run [options] ROOT -- CMD [ARG...]` (public API only). */
#include <libkrun.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef KRUN_VERSION
#define KRUN_VERSION "unknown"
#endif

/* krun's own failures (bad arguments, VM not started), as `podman run` and `docker run` do:
 * 1 and 2 are too common as program statuses to tell the two apart. */
#define EXIT_KRUN 125
#define MAX_LIST 256

struct run_opts {
	unsigned int cpus;          /* 0: the library's default */
	unsigned int ram_mib;       /* 0: the library's default */
	unsigned int log_level;
	bool tcg;
	const char *volumes[MAX_LIST + 1];
	const char *ports[MAX_LIST + 1];
	const char *rlimits[MAX_LIST + 1];
	const char *env[MAX_LIST + 1];
	unsigned int nr_volumes, nr_ports, nr_rlimits, nr_env;
	const char *workdir;
	const char *root;
	char *const *cmd;           /* NULL: the OCI config ROOT/.krun_config.json */
};

static void usage_main(FILE *f)
{
	fputs("Usage: krun run [OPTIONS] ROOT [--] [COMMAND [ARG...]]\n"
	      "       krun version\n"
	      "       krun --help | krun run --help\n\n"
	      "Runs COMMAND from the host directory ROOT inside a KVM microVM. The program's\n"
	      "stdin, stdout, stderr and exit status are krun's. See krun(1).\n", f);
}

static void usage_run(FILE *f)
{
	fputs("Usage: krun run [OPTIONS] ROOT [--] [COMMAND [ARG...]]\n\n"
	      "Runs COMMAND with ROOT as its root directory inside a KVM microVM. Without\n"
	      "COMMAND, runs the OCI process described by ROOT/.krun_config.json (as crun does).\n\n"
	      "  -c, --cpus N              vCPUs (default 1)\n"
	      "  -m, --mem MIB             guest RAM in MiB, or with a G suffix (default 512)\n"
	      "  -v, --volume HOST:GUEST   share host directory HOST at GUEST (repeatable)\n"
	      "  -p, --port HOST:GUEST     expose guest TCP port GUEST as host port HOST\n"
	      "                            (repeatable; by default none is exposed)\n"
	      "  -e, --env K=V | K         set K in the program's environment; K alone copies\n"
	      "                            krun's own value (repeatable)\n"
	      "  -w, --workdir DIR         working directory in the guest (default /)\n"
	      "  -r, --rlimit RES=CUR:MAX  resource limit, e.g. NOFILE=1024:4096 (repeatable)\n"
	      "      --tcg                 boot under QEMU's software CPU with tcg_vm instead\n"
	      "                            of KVM (also KRUN_RUNNER=tcg)\n"
	      "      --log-level N         library log level 0-5 (default 1: errors)\n"
	      "  -h, --help                this text\n\n"
	      "Exit status: the program's (128+N if killed by signal N); 125 when krun itself\n"
	      "fails (bad arguments, the VM cannot start); 126/127 when COMMAND cannot be\n"
	      "executed / does not exist.\n", f);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports a usage or configuration error; always -1. */
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("krun: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Decimal only: strtoul alone would take signs, spaces and hex. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (!s[0] || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno || *out > max ? -1 : 0;
}

static int parse_cpus(struct run_opts *o, const char *s)
{
	int max = krun_get_max_vcpus();
	unsigned long v;

	if (parse_uint(s, UINT8_MAX, &v) || v < 1 || v > (unsigned long)max)
		return fail("--cpus '%s': expected a number of vCPUs from 1 to %d", s, max);
	o->cpus = (unsigned int)v;
	return 0;
}

/* MiB, or GiB with a G suffix; the library checks the range against the host's RAM. */
static int parse_mem(struct run_opts *o, const char *s)
{
	size_t len = strlen(s);
	unsigned int shift = 0;
	unsigned long v;
	char num[24];

	if (len && strchr("GgMm", s[len - 1])) {
		shift = (s[len - 1] == 'G' || s[len - 1] == 'g') ? 10 : 0;
		len--;
	}
	if (len >= sizeof(num))
		return fail("--mem '%s': too long", s);
	memcpy(num, s, len);
	num[len] = '\0';
	if (parse_uint(num, UINT32_MAX >> shift, &v) || !v)
		return fail("--mem '%s': expected MiB (e.g. 512) or GiB (e.g. 2G)", s);
	o->ram_mib = (unsigned int)(v << shift);
	return 0;
}

static int add_to(const char **list, unsigned int *n, const char *s, const char *what)
{
	if (*n >= MAX_LIST)
		return fail("too many %s options (at most %d)", what, MAX_LIST);
	list[(*n)++] = s;
	list[*n] = NULL;
	return 0;
}

/* HOST may be relative here; the library wants it absolute. */
static int add_volume(struct run_opts *o, const char *s)
{
	const char *colon = strchr(s, ':');
	char host[PATH_MAX], *abs, *entry;

	if (!colon || colon == s || colon[1] != '/' || (size_t)(colon - s) >= sizeof(host))
		return fail("--volume '%s': expected HOST:GUEST with GUEST an absolute path", s);
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	abs = realpath(host, NULL);
	if (!abs)
		return fail("--volume '%s': %s", s, strerror(errno));
	if (asprintf(&entry, "%s%s", abs, colon) < 0)
		entry = NULL;
	free(abs);
	if (!entry)
		return fail("--volume '%s': out of memory", s);
	/* Like --env K values, kept until exit: the list goes to the library as it is. */
	return add_to(o->volumes, &o->nr_volumes, entry, "--volume");
}

/* K=V as given; a bare K takes krun's own value, as `docker run -e K` does. */
static int add_env(struct run_opts *o, const char *s)
{
	const char *val;
	char *kv;

	if (!s[0] || s[0] == '=')
		return fail("--env '%s': expected K=V or K", s);
	if (strchr(s, '='))
		return add_to(o->env, &o->nr_env, s, "--env");
	val = getenv(s);
	if (!val)
		return fail("--env '%s': not set in krun's environment", s);
	if (asprintf(&kv, "%s=%s", s, val) < 0)
		return fail("--env '%s': out of memory", s);
	/* Lives until exit: the list is passed to the library and never freed. */
	return add_to(o->env, &o->nr_env, kv, "--env");
}

static int parse_log_level(struct run_opts *o, const char *s)
{
	unsigned long v;

	if (parse_uint(s, KRUN_LOG_LEVEL_TRACE, &v))
		return fail("--log-level '%s': expected 0 to 5", s);
	o->log_level = (unsigned int)v;
	return 0;
}

enum { OPT_TCG = 256, OPT_LOG_LEVEL };

static int parse_opt(struct run_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'c': return parse_cpus(o, arg);
	case 'm': return parse_mem(o, arg);
	case 'v': return add_volume(o, arg);
	case 'p': return add_to(o->ports, &o->nr_ports, arg, "--port");
	case 'r': return add_to(o->rlimits, &o->nr_rlimits, arg, "--rlimit");
	case 'e': return add_env(o, arg);
	case 'w': o->workdir = arg; return 0;
	case OPT_TCG: o->tcg = true; return 0;
	case OPT_LOG_LEVEL: return parse_log_level(o, arg);
	}
	return -1;
}

/* ROOT must be an existing directory; COMMAND is optional only with an OCI config. */
static int check_root(const struct run_opts *o)
{
	char oci[PATH_MAX];
	struct stat st;

	if (stat(o->root, &st) < 0)
		return fail("ROOT '%s': %s", o->root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("ROOT '%s': not a directory", o->root);
	snprintf(oci, sizeof(oci), "%s/.krun_config.json", o->root);
	if (!o->cmd && access(oci, R_OK) < 0)
		return fail("no COMMAND given and %s: %s", oci, strerror(errno));
	if (o->cmd && !o->cmd[0][0])
		return fail("COMMAND is empty");
	return 0;
}

/* Options, then ROOT, then an optional "--", then COMMAND and its arguments. */
static int parse_positionals(struct run_opts *o, int argc, char **argv, int i)
{
	if (i >= argc)
		return fail("missing ROOT (see 'krun run --help')");
	o->root = argv[i++];
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	else if (i < argc && argv[i][0] == '-')
		return fail("'%s' after ROOT: options go before ROOT, and '--' before COMMAND",
			    argv[i]);
	o->cmd = i < argc ? &argv[i] : NULL;
	return check_root(o);
}

/* 0 to run, 1 after --help, -1 on a usage error (reported). */
static int parse_run(struct run_opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cpus", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
		{ "volume", required_argument, NULL, 'v' }, { "port", required_argument, NULL, 'p' },
		{ "env", required_argument, NULL, 'e' }, { "workdir", required_argument, NULL, 'w' },
		{ "rlimit", required_argument, NULL, 'r' }, { "tcg", no_argument, NULL, OPT_TCG },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	const char *runner = getenv("KRUN_RUNNER");
	int c;

	o->log_level = KRUN_LOG_LEVEL_ERROR;
	o->tcg = runner && !strcmp(runner, "tcg");
	optind = 1;
	opterr = 0;
	/* '+': parsing stops at ROOT, so COMMAND's own options stay COMMAND's. */
	while ((c = getopt_long(argc, argv, "+:c:m:v:p:e:w:r:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage_run(stdout);
			return 1;
		}
		if (c == ':')
			return fail("option '%s' needs a value (see 'krun run --help')",
				    argv[optind - 1]);
		if (c == '?' && optopt && optopt < OPT_TCG)
			return fail("unknown option '-%c' (see 'krun run --help')", optopt);
		if (c == '?')
			return fail("unknown option '%s' (see 'krun run --help')", argv[optind - 1]);
		if (parse_opt(o, c, optarg))
			return -1;
	}
	return parse_positionals(o, argc, argv, optind);
}

/*
 * Each entry alone first, so the message names the bad one; then the whole list, even empty:
 * an empty port map exposes no guest port, where never setting one would expose them all.
 */
static int set_list(uint32_t ctx, int32_t (*set)(uint32_t, const char *const[]),
		    const char *const *list, unsigned int n, const char *opt, const char *want)
{
	int32_t ret;

	for (unsigned int i = 0; i < n; i++) {
		ret = set(ctx, (const char *const[]){ list[i], NULL });
		if (ret < 0)
			return fail("%s '%s': %s (%s)", opt, list[i], strerror(-ret), want);
	}
	ret = set(ctx, list);
	if (ret < 0)
		return fail("%s: the entries conflict: %s (%s)", opt, strerror(-ret), want);
	return 0;
}

static int configure_machine(uint32_t ctx, const struct run_opts *o)
{
	int32_t ret = krun_set_vm_config(ctx, (uint8_t)(o->cpus ? o->cpus : 1),
					 o->ram_mib ? o->ram_mib : 512);

	if (ret < 0)
		return fail("--mem %u: must be at least 32 MiB and at most the host's RAM",
			    o->ram_mib);
	ret = krun_set_root(ctx, o->root);
	if (ret < 0)
		return fail("ROOT '%s': %s", o->root, strerror(-ret));
	if (set_list(ctx, krun_set_mapped_volumes, o->volumes, o->nr_volumes, "--volume",
		     "HOST an existing directory, GUEST absolute and not /") ||
	    set_list(ctx, krun_set_port_map, o->ports, o->nr_ports, "--port",
		     "HOST:GUEST, ports 1-65535, each host and guest port once") ||
	    set_list(ctx, krun_set_rlimits, o->rlimits, o->nr_rlimits, "--rlimit",
		     "RES=CUR:MAX, RES a number or a name like NOFILE, CUR <= MAX"))
		return -1;
	return 0;
}

/* The program; without COMMAND none is set and the init runs ROOT/.krun_config.json. */
static int configure_program(uint32_t ctx, const struct run_opts *o)
{
	int32_t ret;

	if (o->workdir) {
		ret = krun_set_workdir(ctx, o->workdir);
		if (ret < 0)
			return fail("--workdir '%s': %s (an absolute guest path)", o->workdir,
				    strerror(-ret));
	}
	if (!o->cmd) {
		if (o->nr_env)
			return fail("--env needs a COMMAND: the OCI config gives the environment");
		return 0;
	}
	/* A list, never NULL: the program must not inherit krun's environment by accident. */
	ret = krun_set_exec(ctx, o->cmd[0], (const char *const *)&o->cmd[1], o->env);
	if (ret < 0)
		return fail("COMMAND '%s': %s", o->cmd[0], strerror(-ret));
	return 0;
}

/* tcg_vm next to this binary (build/ keeps both), unless KRUN_TCG_VM names another. */
static void tcg_vm_path(char *buf, size_t size)
{
	const char *env = getenv("KRUN_TCG_VM");
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(buf, size, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	slash = strrchr(buf, '/');
	if (slash && (size_t)(slash - buf) + sizeof("/tcg_vm") <= size)
		strcpy(slash, "/tcg_vm");
	else
		snprintf(buf, size, "tcg_vm");
}

struct argv_buf {
	char *v[6 * MAX_LIST + 32];
	unsigned int n;
};

static void push(struct argv_buf *a, const char *s)
{
	if (a->n < sizeof(a->v) / sizeof(a->v[0]) - 1)
		a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static void push_list(struct argv_buf *a, const char *opt, const char *const *list)
{
	for (; *list; list++) {
		push(a, opt);
		push(a, *list);
	}
}

/* QEMU by absolute path, so tcg_vm needs no PATH (which the program would inherit). */
static void find_qemu(char *buf, size_t size)
{
	static const char prefix[] = "KRUN_QEMU=";
	const char *path = getenv("PATH"), *end;
	int n;

	buf[0] = '\0';
	for (; path && *path; path = *end ? end + 1 : end) {
		end = strchrnul(path, ':');
		n = snprintf(buf, size, "%s%.*s/qemu-system-x86_64", prefix, (int)(end - path), path);
		if (n > 0 && (size_t)n < size && access(buf + sizeof(prefix) - 1, X_OK) == 0)
			return;
		buf[0] = '\0';
	}
}

/* tcg_vm's environment is the program's: only what tcg_vm and QEMU need goes through. */
static void tcg_env(struct argv_buf *e, const struct run_opts *o, char *level, size_t size)
{
	static const char *const keep[] = { "TMPDIR", "KRUN_VMLINUX", "KRUN_QEMU", "KRUN_DEBUG",
					    "KRUN_SERIAL_LOG", "KRUN_LOG_LEVEL" };
	static char store[sizeof(keep) / sizeof(keep[0])][PATH_MAX + 32], qemu[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (getenv(keep[i])) {
			snprintf(store[i], sizeof(store[i]), "%s=%s", keep[i], getenv(keep[i]));
			push(e, store[i]);
		}
	if (!getenv("KRUN_QEMU")) {
		find_qemu(qemu, sizeof(qemu));
		if (qemu[0])
			push(e, qemu);
	}
	/* As krun_init_log does, KRUN_LOG_LEVEL from the environment wins over --log-level. */
	if (o->log_level != KRUN_LOG_LEVEL_ERROR && !getenv("KRUN_LOG_LEVEL")) {
		snprintf(level, size, "KRUN_LOG_LEVEL=%u", o->log_level);
		push(e, level);
	}
}

/* --tcg: the same VM under QEMU's software CPU; tcg_vm takes chroot_vm's options. */
static int exec_tcg_vm(const struct run_opts *o)
{
	static struct argv_buf a, e;
	char path[PATH_MAX], cpus[16], mem[16], level[32];

	tcg_vm_path(path, sizeof(path));
	push(&a, path);
	snprintf(cpus, sizeof(cpus), "%u", o->cpus ? o->cpus : 1);
	snprintf(mem, sizeof(mem), "%u", o->ram_mib ? o->ram_mib : 512);
	push(&a, "-c");
	push(&a, cpus);
	push(&a, "-m");
	push(&a, mem);
	push_list(&a, "-v", o->volumes);
	push_list(&a, "-p", o->ports);
	push_list(&a, "-r", o->rlimits);
	push_list(&a, "-e", o->env);
	if (o->workdir) {
		push(&a, "-w");
		push(&a, o->workdir);
	}
	push(&a, o->root);
	/* An empty COMMAND asks tcg_vm for no program: the init reads the OCI config. */
	for (char *const *c = o->cmd ? o->cmd : (char *const[]){ "", NULL }; *c; c++)
		push(&a, *c);
	tcg_env(&e, o, level, sizeof(level));
	execve(path, a.v, e.v);
	return fail("cannot run %s: %s (set KRUN_TCG_VM)", path, strerror(errno));
}

static int run_vm(const struct run_opts *o)
{
	int32_t ctx, ret;

	ret = krun_init_log(KRUN_LOG_TARGET_DEFAULT, o->log_level, KRUN_LOG_STYLE_AUTO, 0);
	ctx = ret < 0 ? ret : krun_create_ctx();
	if (ctx < 0)
		return fail("cannot create a context: %s", strerror(-ctx));
	/* Configured even for --tcg: the library's checks give the same messages both ways. */
	if (configure_machine((uint32_t)ctx, o) || configure_program((uint32_t)ctx, o))
		return -1;
	if (o->tcg) {
		krun_free_ctx((uint32_t)ctx);
		return exec_tcg_vm(o);
	}
	/* Returns only when the VM could not start; otherwise we exit with the program. */
	ret = krun_start_enter((uint32_t)ctx);
	fail("cannot start the VM: %s", strerror(ret < 0 ? -ret : ret));
	if (ret == -ENOTSUP)
		fprintf(stderr, "krun: without hardware KVM, 'krun run --tcg ...' boots the VM "
			"under QEMU's software CPU\n");
	return -1;
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	int ret = parse_run(&o, argc, argv);

	if (ret)
		return ret > 0 ? 0 : EXIT_KRUN;
	run_vm(&o);
	return EXIT_KRUN;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage_main(stderr);
		return EXIT_KRUN;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage_main(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("krun %s (libkrun in C, libkrun.so.1 API)\n", KRUN_VERSION);
		return 0;
	}
	fprintf(stderr, "krun: unknown command '%s' (see 'krun --help')\n", cmd);
	return EXIT_KRUN;
}
