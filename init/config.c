/* Parser for the init's "key=value\0" records (src/common/krun_init.h) and config helpers. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "CPU", RLIMIT_CPU }, { "FSIZE", RLIMIT_FSIZE }, { "DATA", RLIMIT_DATA },
	{ "STACK", RLIMIT_STACK }, { "CORE", RLIMIT_CORE }, { "RSS", RLIMIT_RSS },
	{ "NPROC", RLIMIT_NPROC }, { "NOFILE", RLIMIT_NOFILE },
	{ "MEMLOCK", RLIMIT_MEMLOCK }, { "AS", RLIMIT_AS }, { "LOCKS", RLIMIT_LOCKS },
	{ "SIGPENDING", RLIMIT_SIGPENDING }, { "MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "NICE", RLIMIT_NICE }, { "RTPRIO", RLIMIT_RTPRIO }, { "RTTIME", RLIMIT_RTTIME },
};

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

void config_free(struct config *c)
{
	free(c->exec);
	strv_free(c->argv);
	strv_free(c->env);
	free(c->workdir);
	free(c->hostname);
	for (size_t i = 0; i < c->nmounts; i++) {
		free(c->mounts[i].tag);
		free(c->mounts[i].path);
	}
	free(c->mounts);
	free(c->groups);
	config_init(c);
}

int config_strv_push(char ***v, size_t *n, const char *s)
{
	if (*n >= CONFIG_MAX_STRINGS)
		return -E2BIG;
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n]) {
		nv[*n] = NULL;
		return -ENOMEM;
	}
	nv[++*n] = NULL;
	return 0;
}

int config_parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int config_rlimit_resource(const char *name)
{
	unsigned long long n;

	if (config_parse_u64(name, RLIMIT_NLIMITS - 1, &n) == 0)
		return (int)n;
	if (strncasecmp(name, "RLIMIT_", 7) == 0)
		name += 7;
	for (size_t i = 0; i < sizeof(rlimit_names) / sizeof(rlimit_names[0]); i++)
		if (strcasecmp(name, rlimit_names[i].name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

int config_add_rlimit(struct config *c, int resource, rlim_t cur, rlim_t max)
{
	size_t i;

	for (i = 0; i < c->nrlimits; i++)
		if (c->rlimits[i].resource == resource)
			break;
	if (i == CONFIG_MAX_RLIMITS)
		return -E2BIG;
	c->rlimits[i] = (struct config_rlimit){ .resource = resource, .cur = cur, .max = max };
	if (i == c->nrlimits)
		c->nrlimits++;
	return 0;
}

/* "unlimited", "infinity" and -1 all mean RLIM_INFINITY, as ulimit and OCI tools write it. */
static int parse_rlim(const char *s, rlim_t *out)
{
	unsigned long long v;

	if (!strcmp(s, "unlimited") || !strcmp(s, "infinity") || !strcmp(s, "-1")) {
		*out = RLIM_INFINITY;
		return 0;
	}
	if (config_parse_u64(s, UINT64_MAX, &v))
		return -EINVAL;
	*out = (rlim_t)v;
	return 0;
}

/* RES=CUR:MAX */
static int parse_rlimit(struct config *c, const char *v)
{
	char buf[128];
	size_t vlen = strlen(v);
	rlim_t cur, max;

	if (vlen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, vlen + 1);
	char *eq = strchr(buf, '=');
	char *colon = eq ? strchr(eq + 1, ':') : NULL;
	if (!colon)
		return -EINVAL;
	*eq = *colon = '\0';
	int res = config_rlimit_resource(buf);
	if (res < 0 || parse_rlim(eq + 1, &cur) || parse_rlim(colon + 1, &max))
		return -EINVAL;
	return config_add_rlimit(c, res, cur, max);
}

/* TAG:PATH; the tag cannot hold ':' and the path must be absolute. */
static int parse_mount(struct config *c, const char *v)
{
	const char *colon = strchr(v, ':');

	if (!colon || colon == v || colon[1] != '/')
		return -EINVAL;
	if (c->nmounts >= CONFIG_MAX_MOUNTS)
		return -E2BIG;
	struct config_mount *m = realloc(c->mounts, (c->nmounts + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	c->mounts = m;
	m += c->nmounts;
	m->tag = strndup(v, (size_t)(colon - v));
	m->path = strdup(colon + 1);
	if (!m->tag || !m->path) {
		free(m->tag);
		free(m->path);
		return -ENOMEM;
	}
	c->nmounts++;
	return 0;
}

/* clock=SECONDS: the host's wall clock, for guests without an RTC or kvm-clock. */
static int parse_clock(struct config *c, const char *v)
{
	char *end;
	long long sec;

	errno = 0;
	sec = strtoll(v, &end, 10);
	if (errno || end == v || *end || sec <= 0)
		return -EINVAL;
	c->clock_sec = sec;
	return 0;
}

static int parse_id(const char *v, unsigned int *out, bool *has)
{
	unsigned long long n;
	int r = config_parse_u64(v, UINT32_MAX - 1, &n);

	if (r)
		return r;
	*out = (unsigned int)n;
	*has = true;
	return 0;
}

static int set_string(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* The exec path is also argv[0]; args that came first are kept after it. */
static int set_exec(struct config *c, const char *v)
{
	int r = set_string(&c->exec, v);

	if (r)
		return r;
	if (!c->argv)
		return config_strv_push(&c->argv, &c->argc, v);
	free(c->argv[0]);
	c->argv[0] = strdup(v);
	return c->argv[0] ? 0 : -ENOMEM;
}

static int add_arg(struct config *c, const char *v)
{
	/* Reserve argv[0] for the exec path when args arrive before exec. */
	if (!c->argv) {
		int r = config_strv_push(&c->argv, &c->argc, "");
		if (r)
			return r;
	}
	return config_strv_push(&c->argv, &c->argc, v);
}

static int parse_record(struct config *c, const char *rec)
{
	const char *eq = strchr(rec, '=');

	if (!eq)
		return -EINVAL;
	size_t klen = (size_t)(eq - rec);
	const char *v = eq + 1;
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(rec, k, klen))
	if (KEY("exec"))
		return *v ? set_exec(c, v) : -EINVAL;
	if (KEY("arg"))
		return add_arg(c, v);
	if (KEY("env")) {
		c->has_env = true;
		return strchr(v, '=') ? config_strv_push(&c->env, &c->envc, v) : -EINVAL;
	}
	if (KEY("workdir"))
		return *v == '/' ? set_string(&c->workdir, v) : -EINVAL;
	if (KEY("rlimit"))
		return parse_rlimit(c, v);
	if (KEY("hostname"))
		return set_string(&c->hostname, v);
	if (KEY("clock"))
		return parse_clock(c, v);
	if (KEY("mount"))
		return parse_mount(c, v);
	if (KEY("uid"))
		return parse_id(v, &c->uid, &c->has_uid);
	if (KEY("gid"))
		return parse_id(v, &c->gid, &c->has_gid);
#undef KEY
	return 0;
}

int config_parse_records(struct config *c, const char *buf, size_t len, const char **why)
{
	size_t off = 0;

	*why = NULL;
	while (off < len) {
		const char *rec = buf + off;
		const char *end = memchr(rec, '\0', len - off);
		if (!end) {
			*why = "record without its terminating NUL";
			return -EINVAL;
		}
		off = (size_t)(end - buf) + 1;
		if (rec == end)
			continue;
		int r = parse_record(c, rec);
		if (r) {
			*why = rec;
			return r;
		}
	}
	if (c->argv && !c->exec) {
		*why = "arg records without an exec record";
		return -EINVAL;
	}
	return 0;
}

void config_merge(struct config *c, struct config *other)
{
#define TAKE(f) do { c->f = other->f; other->f = 0; } while (0)
	if (!c->exec) {
		strv_free(c->argv);
		TAKE(exec);
		TAKE(argv);
		TAKE(argc);
	}
	if (!c->has_env) {
		strv_free(c->env);
		TAKE(env);
		TAKE(envc);
		TAKE(has_env);
	}
	if (!c->workdir)
		TAKE(workdir);
	if (!c->hostname)
		TAKE(hostname);
	if (!c->has_uid) {
		TAKE(uid);
		TAKE(has_uid);
	}
	if (!c->has_gid) {
		TAKE(gid);
		TAKE(has_gid);
	}
	if (!c->has_groups) {
		free(c->groups);
		TAKE(groups);
		TAKE(ngroups);
		TAKE(has_groups);
	}
#undef TAKE
	/* Records win: other's limits go first, then c's replace them. */
	struct config_rlimit mine[CONFIG_MAX_RLIMITS];
	size_t n = c->nrlimits;
	memcpy(mine, c->rlimits, n * sizeof(mine[0]));
	c->nrlimits = 0;
	for (size_t i = 0; i < other->nrlimits; i++)
		config_add_rlimit(c, other->rlimits[i].resource, other->rlimits[i].cur,
				  other->rlimits[i].max);
	for (size_t i = 0; i < n; i++)
		config_add_rlimit(c, mine[i].resource, mine[i].cur, mine[i].max);
}
