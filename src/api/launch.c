/* A context resolved into a launch spec: kernel, command line, init config, shares. */
#include "api/launch_priv.h"
#include "api/api.h"
#include "api/ctx.h"
#include "api/krunfw.h"
#include "api/strv.h"
#include "common/krun_init.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MODULE "launch"
#include "util/log.h"

/* The init config: "key=value\0" records (common/krun_init.h). */
struct records {
	char *data;
	size_t len, cap;
	int err;
};

static void rec_add(struct records *r, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value), need = klen + vlen + 2;
	char *grown;

	if (r->err)
		return;
	if (r->len + need > r->cap) {
		size_t cap = (r->cap ? r->cap * 2 : 1024) + need;

		grown = realloc(r->data, cap);
		if (!grown) {
			r->err = -ENOMEM;
			return;
		}
		r->data = grown;
		r->cap = cap;
	}
	memcpy(r->data + r->len, key, klen);
	r->data[r->len + klen] = '=';
	memcpy(r->data + r->len + klen + 1, value, vlen + 1);
	r->len += need;
}

static void rec_add_all(struct records *r, const char *key, char *const *values)
{
	size_t i;

	for (i = 0; values && values[i]; i++)
		rec_add(r, key, values[i]);
}

/* The guest may have no RTC (QEMU microvm) or kvm-clock (TCG): the init sets this time. */
static void clock_record(struct records *r)
{
	char now[32];

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	rec_add(r, "clock", now);
}

static void workload_records(const struct krun_ctx *c, struct records *r)
{
	if (c->exec_path) {
		rec_add(r, "exec", c->exec_path);
		rec_add_all(r, "arg", c->argv);
	}
	if (c->env_mode == CTX_ENV_INHERIT)
		rec_add_all(r, "env", environ);
	else if (c->env_mode == CTX_ENV_LIST)
		rec_add_all(r, "env", c->env);
	if (c->workdir)
		rec_add(r, "workdir", c->workdir);
	rec_add_all(r, "rlimit", c->rlimits);
	clock_record(r);
}

static int set_share(struct launch_share *s, const char *tag, const char *host,
		     const char *guest, bool read_only)
{
	s->tag = strdup(tag);
	s->host_path = strdup(host);
	s->guest_path = guest ? strdup(guest) : NULL;
	s->read_only = read_only;
	if (!s->tag || !s->host_path || (guest && !s->guest_path))
		return -ENOMEM;
	return 0;
}

static bool tag_taken(const struct krun_ctx *c, const char *tag)
{
	unsigned int i;

	for (i = 0; i < c->nr_shares; i++)
		if (!strcmp(c->shares[i].tag, tag))
			return true;
	return false;
}

/* Volume shares get generated tags that no user share uses. */
static void next_volume_tag(const struct krun_ctx *c, unsigned int *n, char *tag, size_t size)
{
	do
		snprintf(tag, size, "krunvol%u", (*n)++);
	while (tag_taken(c, tag));
}

static int volume_shares(const struct krun_ctx *c, struct launch_spec *spec, struct records *r)
{
	unsigned int i, n = 0;
	struct launch_share *s;
	char tag[32], *mount;
	int ret;

	for (i = 0; i < c->nr_volumes; i++) {
		s = &spec->shares[spec->nr_shares++];
		next_volume_tag(c, &n, tag, sizeof(tag));
		ret = set_share(s, tag, c->volumes[i].host_path, c->volumes[i].guest_path, false);
		if (ret)
			return ret;
		if (asprintf(&mount, "%s:%s", tag, c->volumes[i].guest_path) < 0)
			return -ENOMEM;
		rec_add(r, "mount", mount);
		free(mount);
	}
	return 0;
}

static int make_shares(const struct krun_ctx *c, struct launch_spec *spec, struct records *r)
{
	unsigned int i;
	int ret;

	spec->shares = calloc(1 + c->nr_shares + c->nr_volumes, sizeof(*spec->shares));
	if (!spec->shares)
		return -ENOMEM;
	spec->nr_shares = 1;
	ret = set_share(&spec->shares[0], KRUN_ROOT_TAG, c->root_path, NULL, c->root_read_only);
	for (i = 0; i < c->nr_shares && !ret; i++, spec->nr_shares++)
		ret = set_share(&spec->shares[spec->nr_shares], c->shares[i].tag,
				c->shares[i].host_path, NULL, c->shares[i].read_only);
	return ret ? ret : volume_shares(c, spec, r);
}

static int make_kernel(const struct krun_ctx *c, struct launch_spec *spec)
{
	struct vmm_kernel *k = &spec->kernel;

	spec->cmdline = strdup(c->kernel_cmdline ? c->kernel_cmdline : KRUN_BASE_CMDLINE);
	if (!spec->cmdline)
		return -ENOMEM;
	if (!c->kernel_path) {
		/* No libkrunfw is not an error here: tcg_vm brings its own kernel. */
		if (krunfw_kernel(k) < 0)
			k->source = VMM_KERNEL_FLAT;
		return 0;
	}
	k->source = VMM_KERNEL_FILE;
	k->format = c->kernel_format;
	k->path = strdup(c->kernel_path);
	k->initrd_path = c->initrd_path ? strdup(c->initrd_path) : NULL;
	if (!k->path || (c->initrd_path && !k->initrd_path))
		return -ENOMEM;
	return 0;
}

static int copy_extras(const struct krun_ctx *c, struct launch_spec *spec)
{
	if (c->port_map) {
		if (strv_copy((const char *const *)c->port_map, SIZE_MAX, &spec->port_map))
			return -ENOMEM;
		spec->nr_port_map = (unsigned int)strv_len(spec->port_map);
	}
	if (c->console_output && !(spec->console_output = strdup(c->console_output)))
		return -ENOMEM;
	/* A duplicate, so freeing the context does not close the VM's end. */
	if (c->shutdown_efd >= 0) {
		spec->shutdown_eventfd = fcntl(c->shutdown_efd, F_DUPFD_CLOEXEC, 3);
		if (spec->shutdown_eventfd < 0)
			return -errno;
	}
	return 0;
}

static int copy_vsock_ports(const struct krun_ctx *c, struct launch_spec *spec)
{
	unsigned int i;

	if (!c->nr_vsock_ports)
		return 0;
	spec->vsock_ports = calloc(c->nr_vsock_ports, sizeof(*spec->vsock_ports));
	if (!spec->vsock_ports)
		return -ENOMEM;
	for (i = 0; i < c->nr_vsock_ports; i++, spec->nr_vsock_ports++) {
		spec->vsock_ports[i].port = c->vsock_ports[i].port;
		spec->vsock_ports[i].listen = c->vsock_ports[i].listen;
		spec->vsock_ports[i].path = strdup(c->vsock_ports[i].path);
		if (!spec->vsock_ports[i].path)
			return -ENOMEM;
	}
	return 0;
}

static int fill(const struct krun_ctx *c, struct launch_spec *spec)
{
	struct records r = { 0 };
	int ret;

	spec->vcpus = c->vcpus;
	spec->ram_bytes = (uint64_t)c->ram_mib << 20;
	workload_records(c, &r);
	ret = make_kernel(c, spec);
	if (!ret)
		ret = make_shares(c, spec, &r);
	if (!ret)
		ret = copy_extras(c, spec);
	if (!ret)
		ret = copy_vsock_ports(c, spec);
	spec->init_config = r.data;
	spec->init_config_len = r.len;
	return ret ? ret : r.err;
}

int launch_spec_from(const struct krun_ctx *c, struct launch_spec **out)
{
	struct launch_priv *priv;
	int ret;

	if (!c->root_path) {
		log_error("no root directory: call krun_set_root or krun_add_virtiofs(\"%s\")",
			  KRUN_FS_ROOT_TAG);
		return -EINVAL;
	}
	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	priv->spec.shutdown_eventfd = -1;
	priv->spec.exit_status = -1;
	ret = fill(c, &priv->spec);
	if (ret) {
		launch_spec_free(&priv->spec);
		return ret;
	}
	*out = &priv->spec;
	return 0;
}

int launch_spec_from_ctx(uint32_t ctx_id, struct launch_spec **out)
{
	struct krun_ctx *c = ctx_lock(ctx_id);
	int ret;

	if (!c)
		return -ENOENT;
	ret = launch_spec_from(c, out);
	ctx_unlock();
	return ret;
}

void launch_spec_free(struct launch_spec *spec)
{
	unsigned int i;

	if (!spec)
		return;
	free((void *)spec->kernel.path);
	free((void *)spec->kernel.initrd_path);
	free(spec->cmdline);
	free(spec->init_config);
	for (i = 0; spec->shares && i < spec->nr_shares; i++) {
		free(spec->shares[i].tag);
		free(spec->shares[i].host_path);
		free(spec->shares[i].guest_path);
	}
	free(spec->shares);
	strv_free(spec->port_map);
	for (i = 0; spec->vsock_ports && i < spec->nr_vsock_ports; i++)
		free(spec->vsock_ports[i].path);
	free(spec->vsock_ports);
	free(spec->console_output);
	if (spec->shutdown_eventfd >= 0)
		close(spec->shutdown_eventfd);
	free(launch_priv_of(spec));
}

/* Decimal 0..255 with an optional trailing newline: what the init writes, nothing else. */
static int parse_status(const char *s, size_t len)
{
	int v = 0;
	size_t i;

	if (len && s[len - 1] == '\n')
		len--;
	if (!len || len > 3)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 255 ? v : -EINVAL;
}

ssize_t launch_exit_write(void *opaque, const void *buf, size_t len, uint64_t offset)
{
	struct launch_spec *spec = opaque;
	int status = parse_status(buf, len);

	(void)offset; /* each write is one whole report */
	if (status < 0) {
		log_warn_guest("guest wrote a malformed exit status (%zu bytes)", len);
		return status;
	}
	__atomic_store_n(&spec->exit_status, status, __ATOMIC_SEQ_CST);
	return (ssize_t)len;
}

int launch_exit_status(const struct launch_spec *spec)
{
	int status = __atomic_load_n(&spec->exit_status, __ATOMIC_SEQ_CST);

	return status >= 0 ? status : KRUN_STATUS_NO_REPORT;
}
