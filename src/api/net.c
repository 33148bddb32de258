/* krun_* calls for guest connectivity: the TSI port map and vsock port pairings. */
#include "api/api.h"
#include "api/ctx.h"
#include "util/unixsock.h"
#include "api/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

/* Decimal port 1..65535 spanning exactly [s, s+len). */
static int parse_port(const char *s, size_t len, unsigned int *out)
{
	unsigned int v = 0;
	size_t i;

	if (!len || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_pair(const char *s, unsigned int *host, unsigned int *guest)
{
	const char *colon = strchr(s, ':');

	if (!colon)
		return -EINVAL;
	if (parse_port(s, (size_t)(colon - s), host) ||
	    parse_port(colon + 1, strlen(colon + 1), guest))
		return -EINVAL;
	return 0;
}

/* Each host port and each guest port at most once, as upstream. */
static int check_unique(const unsigned int *hosts, const unsigned int *guests, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			if (hosts[i] == hosts[j] || guests[i] == guests[j])
				return -EINVAL;
	return 0;
}

static int normalize(const unsigned int *hosts, const unsigned int *guests, size_t n, char ***out)
{
	char **v = strv_new(), buf[16];
	size_t i;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%u:%u", hosts[i], guests[i]);
		if (strv_push(&v, buf)) {
			strv_free(v);
			return -ENOMEM;
		}
	}
	*out = v;
	return 0;
}

static int parse_port_map(const char *const *in, char ***out)
{
	unsigned int *hosts, *guests;
	size_t n, i;
	int ret = strv_count(in, API_MAX_ARGS, &n);

	if (ret)
		return ret;
	hosts = calloc(n + 1, sizeof(*hosts));
	guests = calloc(n + 1, sizeof(*guests));
	ret = hosts && guests ? 0 : -ENOMEM;
	for (i = 0; i < n && !ret; i++)
		ret = parse_pair(in[i], &hosts[i], &guests[i]);
	if (!ret)
		ret = check_unique(hosts, guests, n);
	if (!ret)
		ret = normalize(hosts, guests, n, out);
	free(hosts);
	free(guests);
	return ret;
}

int32_t krun_set_port_map(uint32_t ctx_id, const char *const port_map[])
{
	char **v = NULL;
	int ret;

	/* NULL is meaningful (expose every port) and is stored as "no map". */
	if (port_map) {
		ret = parse_port_map(port_map, &v);
		if (ret)
			return ret;
	}
	return ctx_replace_strv(ctx_id, offsetof(struct krun_ctx, port_map), v);
}

static int check_vsock_path(const char *path, bool listen)
{
	struct stat st;

	if (!path || !*path)
		return -EINVAL;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	/*
	 * A listening socket is created by us at start; an existing file would be in the way,
	 * unless it is a socket a previous run left behind (krun_start_enter exits the process).
	 */
	if (listen && lstat(path, &st) == 0 && !unixsock_is_stale(path))
		return -EEXIST;
	return 0;
}

static int add_port_locked(struct krun_ctx *c, uint32_t port, char *path, bool listen)
{
	struct ctx_vsock_port *grown;
	unsigned int i;

	for (i = 0; i < c->nr_vsock_ports; i++)
		if (c->vsock_ports[i].port == port)
			return -EEXIST;
	grown = realloc(c->vsock_ports, (c->nr_vsock_ports + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->vsock_ports = grown;
	grown[c->nr_vsock_ports++] = (struct ctx_vsock_port){ port, path, listen };
	return 0;
}

int32_t krun_add_vsock_port2(uint32_t ctx_id, uint32_t port, const char *c_filepath, bool listen)
{
	struct krun_ctx *c;
	char *path;
	int ret;

	if (!port)
		return -EINVAL;
	ret = check_vsock_path(c_filepath, listen);
	if (ret)
		return ret;
	path = strdup(c_filepath);
	if (!path)
		return -ENOMEM;
	c = ctx_lock(ctx_id);
	if (!c) {
		free(path);
		return -ENOENT;
	}
	ret = add_port_locked(c, port, path, listen);
	ctx_unlock();
	if (ret)
		free(path);
	return ret;
}

int32_t krun_add_vsock_port(uint32_t ctx_id, uint32_t port, const char *c_filepath)
{
	return krun_add_vsock_port2(ctx_id, port, c_filepath, false);
}
