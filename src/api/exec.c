/* krun_* calls that describe the workload: program, arguments, environment, cwd, rlimits. */
#include "api/api.h"
#include "api/ctx.h"
#include "api/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int32_t krun_set_workdir(uint32_t ctx_id, const char *workdir_path)
{
	struct krun_ctx *c;
	char *copy;

	if (!workdir_path || workdir_path[0] != '/')
		return -EINVAL;
	copy = strdup(workdir_path);
	if (!copy)
		return -ENOMEM;
	c = ctx_lock(ctx_id);
	if (!c) {
		free(copy);
		return -ENOENT;
	}
	free(c->workdir);
	c->workdir = copy;
	ctx_unlock();
	return 0;
}

/* envp NULL: inherit (*env stays NULL); else every entry must be NAME=VALUE. */
static int copy_env(const char *const *envp, enum ctx_env_mode *mode, char ***env)
{
	size_t n, i;
	int ret;

	*env = NULL;
	*mode = CTX_ENV_INHERIT;
	if (!envp)
		return 0;
	ret = strv_count(envp, API_MAX_ARGS, &n);
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		if (envp[i][0] == '=' || !strchr(envp[i], '='))
			return -EINVAL;
	*mode = CTX_ENV_LIST;
	return strv_copy(envp, API_MAX_ARGS, env);
}

static void swap_env_locked(struct krun_ctx *c, enum ctx_env_mode mode, char ***env)
{
	char **old = c->env;

	c->env_mode = mode;
	c->env = *env;
	*env = old;
}

int32_t krun_set_exec(uint32_t ctx_id, const char *exec_path, const char *const argv[],
		      const char *const envp[])
{
	char *path = NULL, **args = NULL, **env = NULL, **old_args;
	enum ctx_env_mode mode;
	struct krun_ctx *c;
	int ret;

	if (!exec_path || !*exec_path)
		return -EINVAL;
	ret = strv_copy(argv, API_MAX_ARGS, &args);
	if (!ret)
		ret = copy_env(envp, &mode, &env);
	if (!ret && !(path = strdup(exec_path)))
		ret = -ENOMEM;
	if (!ret && !(c = ctx_lock(ctx_id)))
		ret = -ENOENT;
	if (!ret) {
		free(c->exec_path);
		c->exec_path = path;
		path = NULL;
		old_args = c->argv;
		c->argv = args;
		args = old_args;
		swap_env_locked(c, mode, &env);
		ctx_unlock();
	}
	free(path);
	strv_free(args);
	strv_free(env);
	return ret;
}

int32_t krun_set_env(uint32_t ctx_id, const char *const envp[])
{
	enum ctx_env_mode mode;
	struct krun_ctx *c;
	char **env;
	int ret = copy_env(envp, &mode, &env);

	if (ret)
		return ret;
	c = ctx_lock(ctx_id);
	if (!c) {
		strv_free(env);
		return -ENOENT;
	}
	swap_env_locked(c, mode, &env);
	ctx_unlock();
	strv_free(env);
	return 0;
}

static const char *const rlimit_names[RLIM_NLIMITS] = {
	[RLIMIT_CPU] = "CPU", [RLIMIT_FSIZE] = "FSIZE", [RLIMIT_DATA] = "DATA",
	[RLIMIT_STACK] = "STACK", [RLIMIT_CORE] = "CORE", [RLIMIT_RSS] = "RSS",
	[RLIMIT_NPROC] = "NPROC", [RLIMIT_NOFILE] = "NOFILE", [RLIMIT_MEMLOCK] = "MEMLOCK",
	[RLIMIT_AS] = "AS", [RLIMIT_LOCKS] = "LOCKS", [RLIMIT_SIGPENDING] = "SIGPENDING",
	[RLIMIT_MSGQUEUE] = "MSGQUEUE", [RLIMIT_NICE] = "NICE", [RLIMIT_RTPRIO] = "RTPRIO",
	[RLIMIT_RTTIME] = "RTTIME",
};

/* Plain decimal digits only (strtoull alone would accept signs and spaces). */
static int parse_u64(const char *s, size_t len, unsigned long long *out)
{
	char buf[24];
	char *end;

	if (!len || len >= sizeof(buf) || strspn(s, "0123456789") < len)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	errno = 0;
	*out = strtoull(buf, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

static int parse_resource(const char *s, size_t len, int *out)
{
	unsigned long long n;
	int i;

	if (!parse_u64(s, len, &n))
		return n < RLIM_NLIMITS ? (*out = (int)n, 0) : -EINVAL;
	if (len > 7 && !strncmp(s, "RLIMIT_", 7)) {
		s += 7;
		len -= 7;
	}
	for (i = 0; i < RLIM_NLIMITS; i++)
		if (rlimit_names[i] && strlen(rlimit_names[i]) == len &&
		    !strncmp(rlimit_names[i], s, len)) {
			*out = i;
			return 0;
		}
	return -EINVAL;
}

static int parse_limit(const char *s, size_t len, unsigned long long *out)
{
	if ((len == 13 && !strncmp(s, "RLIM_INFINITY", 13)) ||
	    (len == 9 && !strncmp(s, "unlimited", 9))) {
		*out = (unsigned long long)RLIM_INFINITY;
		return 0;
	}
	return parse_u64(s, len, out);
}

/* "RES=CUR:MAX" into the numeric form the init config carries. */
static int parse_rlimit(const char *s, char **out)
{
	const char *eq = strchr(s, '='), *colon;
	unsigned long long cur, max;
	int res;

	if (!eq || !(colon = strchr(eq + 1, ':')))
		return -EINVAL;
	if (parse_resource(s, (size_t)(eq - s), &res) ||
	    parse_limit(eq + 1, (size_t)(colon - eq - 1), &cur) ||
	    parse_limit(colon + 1, strlen(colon + 1), &max) || cur > max)
		return -EINVAL;
	return asprintf(out, "%d=%llu:%llu", res, cur, max) < 0 ? -ENOMEM : 0;
}

static int parse_rlimits(const char *const *in, char ***out)
{
	char **v, *one;
	size_t n, i;
	int ret = strv_count(in, API_MAX_ARGS, &n);

	if (ret)
		return ret;
	v = strv_new();
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		ret = parse_rlimit(in[i], &one);
		if (!ret) {
			ret = strv_push(&v, one);
			free(one);
		}
	}
	if (ret)
		strv_free(v);
	else
		*out = v;
	return ret;
}

int32_t krun_set_rlimits(uint32_t ctx_id, const char *const rlimits[])
{
	char **v;
	int ret;

	if (!rlimits)
		return -EINVAL;
	ret = parse_rlimits(rlimits, &v);
	return ret ? ret : ctx_replace_strv(ctx_id, offsetof(struct krun_ctx, rlimits), v);
}
