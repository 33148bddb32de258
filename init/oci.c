/* OCI config.json (as crun writes /.krun_config.json) and Docker image config reader. */
#include "oci.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Appends the strings of array tok (or tok itself if a string; null adds nothing). */
static int push_strings(const struct json *j, int tok, char ***v, size_t *n)
{
	if (json_is(j, tok, JSON_NULL))
		return 0;
	if (json_is(j, tok, JSON_STRING)) {
		char *s = json_strdup(j, tok);
		int r = s ? config_strv_push(v, n, s) : -EINVAL;
		free(s);
		return r;
	}
	if (!json_is(j, tok, JSON_ARRAY))
		return -EINVAL;
	for (size_t i = 0; i < j->toks[tok].count; i++) {
		int e = json_index(j, tok, i);
		if (!json_is(j, e, JSON_STRING))
			return -EINVAL;
		int r = push_strings(j, e, v, n);
		if (r)
			return r;
	}
	return 0;
}

static int get_u32(const struct json *j, int tok, uint32_t *out)
{
	int64_t v;
	int r = json_int64(j, tok, &v);

	if (r)
		return r;
	if (v < 0 || v >= UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* Optional string field: absent or null leaves *dst alone; empty counts as absent. */
static int get_string(const struct json *j, int obj, const char *key, char **dst)
{
	int t = json_get(j, obj, key);

	if (t < 0 || json_is(j, t, JSON_NULL))
		return 0;
	char *s = json_strdup(j, t);
	if (!s)
		return -EINVAL;
	if (!*s) {
		free(s);
		return 0;
	}
	free(*dst);
	*dst = s;
	return 0;
}

static int load_args(struct config *c, const struct json *j, int process, int docker)
{
	int args = json_get(j, process, "args");
	int r;

	if (args >= 0) {
		r = push_strings(j, args, &c->argv, &c->argc);
	} else {
		r = push_strings(j, json_get(j, docker, "Entrypoint"), &c->argv, &c->argc);
		if (!r)
			r = push_strings(j, json_get(j, docker, "Cmd"), &c->argv, &c->argc);
	}
	if (r)
		return r;
	if (!c->argc || !*c->argv[0])
		return -ENOENT;
	c->exec = strdup(c->argv[0]);
	return c->exec ? 0 : -ENOMEM;
}

static int load_env(struct config *c, const struct json *j, int process, int docker)
{
	int env = json_get(j, process, "env");

	if (env < 0)
		env = json_get(j, docker, "Env");
	if (env < 0 || json_is(j, env, JSON_NULL))
		return 0;
	c->has_env = true;
	int r = push_strings(j, env, &c->env, &c->envc);
	for (size_t i = 0; !r && i < c->envc; i++)
		if (!strchr(c->env[i], '='))
			r = -EINVAL;
	return r;
}

static int load_groups(struct config *c, const struct json *j, int arr)
{
	if (arr < 0 || json_is(j, arr, JSON_NULL))
		return 0;
	if (!json_is(j, arr, JSON_ARRAY) || j->toks[arr].count > CONFIG_MAX_GROUPS)
		return -EINVAL;
	c->groups = calloc(j->toks[arr].count + 1, sizeof(*c->groups));
	if (!c->groups)
		return -ENOMEM;
	for (size_t i = 0; i < j->toks[arr].count; i++) {
		uint32_t g;
		if (get_u32(j, json_index(j, arr, i), &g))
			return -EINVAL;
		c->groups[c->ngroups++] = g;
	}
	c->has_groups = true;
	return 0;
}

/* process.user {uid, gid, additionalGids}, else Docker "User": "uid[:gid]" (numeric only). */
static int load_user(struct config *c, const struct json *j, int process, int docker)
{
	int user = json_get(j, process, "user");

	if (json_is(j, user, JSON_OBJECT)) {
		int uid = json_get(j, user, "uid"), gid = json_get(j, user, "gid");
		if (uid >= 0 && get_u32(j, uid, &c->uid))
			return -EINVAL;
		if (gid >= 0 && get_u32(j, gid, &c->gid))
			return -EINVAL;
		c->has_uid = uid >= 0;
		c->has_gid = gid >= 0;
		return load_groups(c, j, json_get(j, user, "additionalGids"));
	}
	char *s = NULL;
	if (get_string(j, docker, "User", &s) || !s)
		return 0;
	char *colon = strchr(s, ':');
	unsigned long long id;
	if (colon)
		*colon = '\0';
	if (config_parse_u64(s, UINT32_MAX - 1, &id) == 0) {
		c->uid = (uid_t)id;
		c->has_uid = true;
	}
	if (colon && config_parse_u64(colon + 1, UINT32_MAX - 1, &id) == 0) {
		c->gid = (gid_t)id;
		c->has_gid = true;
	}
	free(s);
	return 0;
}

static int get_rlim(const struct json *j, int tok, rlim_t *out)
{
	int64_t v;
	int r = json_int64(j, tok, &v);

	/* Tools write unlimited as -1 or as 2^64-1, which overflows int64: both mean infinity. */
	if (r == -ERANGE && j->text[j->toks[tok].start] != '-')
		v = -1;
	else if (r)
		return -EINVAL;
	*out = v < 0 ? RLIM_INFINITY : (rlim_t)v;
	return 0;
}

static int load_rlimits(struct config *c, const struct json *j, int process)
{
	int arr = json_get(j, process, "rlimits");

	if (arr < 0 || json_is(j, arr, JSON_NULL))
		return 0;
	if (!json_is(j, arr, JSON_ARRAY))
		return -EINVAL;
	for (size_t i = 0; i < j->toks[arr].count; i++) {
		int e = json_index(j, arr, i);
		char *type = json_strdup(j, json_get(j, e, "type"));
		int res = type ? config_rlimit_resource(type) : -1;
		rlim_t soft, hard;
		free(type);
		if (res < 0 || get_rlim(j, json_get(j, e, "soft"), &soft) ||
		    get_rlim(j, json_get(j, e, "hard"), &hard))
			return -EINVAL;
		if (config_add_rlimit(c, res, soft, hard))
			return -E2BIG;
	}
	return 0;
}

int oci_load(struct config *c, const char *text, size_t len, const char **why)
{
	struct json j;
	int r = json_parse(&j, text, len);

	*why = "not valid JSON";
	if (r)
		return r;
	r = -EINVAL;
	*why = "the top level is not an object";
	if (!json_is(&j, 0, JSON_OBJECT))
		goto out;
	int process = json_get(&j, 0, "process");
	int docker = json_get(&j, 0, "config");
	if (!json_is(&j, docker, JSON_OBJECT))
		docker = 0;
	*why = "bad process.args (or Entrypoint/Cmd)";
	if ((r = load_args(c, &j, process, docker)))
		goto out;
	*why = "bad process.env (or Env)";
	if ((r = load_env(c, &j, process, docker)))
		goto out;
	*why = "bad process.cwd (or WorkingDir)";
	r = get_string(&j, process, "cwd", &c->workdir);
	if (!r && !c->workdir)
		r = get_string(&j, docker, "WorkingDir", &c->workdir);
	if (r)
		goto out;
	*why = "bad process.user";
	if ((r = load_user(c, &j, process, docker)))
		goto out;
	*why = "bad process.rlimits";
	if ((r = load_rlimits(c, &j, process)))
		goto out;
	*why = "bad hostname";
	if ((r = get_string(&j, 0, "hostname", &c->hostname)))
		goto out;
	*why = NULL;
out:
	json_free(&j);
	return r;
}
