/*
 * vhost-user request handlers: each checks its payload layout, ring index and fd count, then
 * acts on the backend. Semantics follow QEMU docs/interop/vhost-user.rst ("the spec").
 */
#define LOG_MODULE "vhost-user"
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/vhost_user_int.h"

/* Takes fd i of m: the caller owns it from now on. */
static int take_fd(struct vu_msg *m, unsigned int i)
{
	int fd = m->fds[i];

	m->fds[i] = -1;
	return fd;
}

static int ring_index(const struct vhost_user *vu, uint32_t index, unsigned int *out)
{
	if (index >= vu->nr_rings)
		return -EINVAL;
	*out = index;
	return 0;
}

static int h_get_features(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)m;
	r->size = sizeof(r->p.u64);
	r->p.u64 = vu->offered;
	return 0;
}

static int h_set_features(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)r;
	if (m->p.u64 & ~vu->offered)
		return -EINVAL;
	/* Ring parameters derive from the features: a running device picks them up on restart. */
	vhost_user_quiesce(vu);
	vu->features = m->p.u64;
	return 0;
}

static int h_get_protocol_features(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)vu;
	(void)m;
	r->size = sizeof(r->p.u64);
	r->p.u64 = OFFERED_PROTOCOL;
	return 0;
}

static int h_set_protocol_features(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)r;
	if (m->p.u64 & ~OFFERED_PROTOCOL)
		return -EINVAL;
	vu->protocol_features = m->p.u64;
	return 0;
}

static int h_get_queue_num(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)m;
	r->size = sizeof(r->p.u64);
	r->p.u64 = vu->nr_rings;
	return 0;
}

static int h_nothing(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)vu;
	(void)m;
	(void)r;
	return 0;
}

/* RESET_OWNER is deprecated; the spec allows treating it as "disable all rings". */
static int h_reset_owner(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)m;
	(void)r;
	vhost_user_quiesce(vu);
	for (unsigned int i = 0; i < vu->nr_rings; i++)
		vu->rings[i].enabled = false;
	return 0;
}

static int h_reset_device(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	(void)m;
	(void)r;
	vhost_user_reset_rings(vu);
	vu->features = 0;
	return 0;
}

static int h_set_mem_table(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	uint32_t n = m->p.mem.nregions;

	(void)r;
	if (n == 0 || n > VHOST_USER_MAX_REGIONS || m->nr_fds != n ||
	    m->hdr.size < VHOST_USER_MEM_HDR_SIZE + n * sizeof(struct vhost_user_region))
		return -EINVAL;
	return vhost_user_set_mem(vu, &m->p.mem, m->fds);
}

/* Ring geometry may change only while the ring is stopped (spec: GET_VRING_BASE stops it). */
static int stopped_ring(struct vhost_user *vu, uint32_t index, unsigned int *i)
{
	int ret = ring_index(vu, index, i);

	if (ret)
		return ret;
	return vu->rings[*i].started ? -EBUSY : 0;
}

static int h_set_vring_num(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	uint32_t num = m->p.state.num;
	unsigned int i;
	int ret = stopped_ring(vu, m->p.state.index, &i);

	(void)r;
	if (ret)
		return ret;
	/* virtio 1.2 section 2.7: a split ring's size is a power of 2. */
	if (num == 0 || num > vu->dev->ops->queue_max_size || num > VIRTQ_MAX_SIZE || (num & (num - 1)))
		return -EINVAL;
	vu->rings[i].num = (uint16_t)num;
	return 0;
}

static int h_set_vring_addr(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	const struct vhost_user_vring_addr *a = &m->p.addr;
	struct vu_ring *ring;
	unsigned int i;
	int ret = stopped_ring(vu, a->index, &i);

	(void)r;
	if (ret)
		return ret;
	/* Translation is checked at activation, when the table and ring size are final. */
	ring = &vu->rings[i];
	ring->desc_ua = a->desc;
	ring->avail_ua = a->avail;
	ring->used_ua = a->used;
	ring->addr_set = true;
	return 0;
}

static int h_set_vring_base(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int ret = stopped_ring(vu, m->p.state.index, &i);

	(void)r;
	if (ret)
		return ret;
	if (m->p.state.num > UINT16_MAX)
		return -EINVAL;
	vu->rings[i].base = (uint16_t)m->p.state.num;
	return 0;
}

static int h_get_vring_base(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int ret = ring_index(vu, m->p.state.index, &i);

	if (ret)
		return ret;
	r->size = sizeof(r->p.state);
	r->p.state.index = i;
	r->p.state.num = vhost_user_stop_ring(vu, i);
	return 0;
}

/* KICK/CALL/ERR: index in bits 0-7, bit 8 set exactly when no fd is attached. */
static int vring_fd(struct vhost_user *vu, struct vu_msg *m, unsigned int *i, int *fd)
{
	uint64_t v = m->p.u64;
	bool nofd = v & VHOST_USER_VRING_NOFD;
	int ret;

	if (v & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD))
		return -EINVAL;
	ret = ring_index(vu, v & VHOST_USER_VRING_IDX_MASK, i);
	if (ret)
		return ret;
	if (m->nr_fds != (nofd ? 0u : 1u))
		return -EINVAL;
	*fd = nofd ? -1 : take_fd(m, 0);
	return 0;
}

static int h_set_vring_kick(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int fd, ret = vring_fd(vu, m, &i, &fd);

	(void)r;
	if (ret)
		return ret;
	ret = vhost_user_set_kick(vu, i, fd);
	if (ret && fd >= 0)
		close(fd);
	return ret;
}

static int h_set_vring_call(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int fd, ret = vring_fd(vu, m, &i, &fd);

	(void)r;
	if (!ret)
		vhost_user_set_call(vu, i, fd);
	return ret;
}

static int h_set_vring_err(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int fd, ret = vring_fd(vu, m, &i, &fd);

	(void)r;
	if (!ret)
		vhost_user_set_err(vu, i, fd);
	return ret;
}

static int h_set_vring_enable(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	unsigned int i;
	int ret = ring_index(vu, m->p.state.index, &i);

	(void)r;
	if (ret)
		return ret;
	if (m->p.state.num > 1)
		return -EINVAL;
	return vhost_user_set_enable(vu, i, m->p.state.num);
}

/* The config payload must hold exactly `size` bytes that lie inside the device's config. */
static int config_range(const struct vhost_user *vu, const struct vu_msg *m)
{
	const struct vhost_user_config *c = &m->p.config;
	uint32_t end;

	if (c->size > VHOST_USER_MAX_CONFIG || m->hdr.size != VHOST_USER_CONFIG_HDR_SIZE + c->size ||
	    __builtin_add_overflow(c->offset, c->size, &end) || end > vu->dev->config_size)
		return -EINVAL;
	return 0;
}

/* Spec GET_CONFIG: the reply matches the request's size; an empty payload means failure. */
static int h_get_config(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	const struct vhost_user_config *c = &m->p.config;
	int ret = config_range(vu, m);

	if (ret)
		return ret;
	r->size = m->hdr.size;
	r->p.config.offset = c->offset;
	r->p.config.size = c->size;
	r->p.config.flags = c->flags;
	memcpy(r->p.config.payload, vu->dev->config + c->offset, c->size);
	return 0;
}

static int h_set_config(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r)
{
	const struct vhost_user_config *c = &m->p.config;
	int ret = config_range(vu, m);

	(void)r;
	if (ret)
		return ret;
	/* Only driver writes (flags 0) reach the device; there is no migration here. */
	if (c->flags != 0 || !vu->dev->ops->config_write)
		return -EPERM;
	vu->dev->ops->config_write(vu->dev, c->offset, c->payload, c->size);
	return 0;
}

#define U64 sizeof(uint64_t), sizeof(uint64_t)
#define STATE sizeof(struct vhost_user_vring_state), sizeof(struct vhost_user_vring_state)
#define CONFIG VHOST_USER_CONFIG_HDR_SIZE, VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG
#define MEM VHOST_USER_MEM_HDR_SIZE, sizeof(struct vhost_user_mem)
#define ADDR sizeof(struct vhost_user_vring_addr), sizeof(struct vhost_user_vring_addr)

static const struct vhost_user_handler handlers[] = {
	[VHOST_USER_GET_FEATURES] = { h_get_features, 0, 0, true, "GET_FEATURES" },
	[VHOST_USER_SET_FEATURES] = { h_set_features, U64, false, "SET_FEATURES" },
	[VHOST_USER_SET_OWNER] = { h_nothing, 0, 0, false, "SET_OWNER" },
	[VHOST_USER_RESET_OWNER] = { h_reset_owner, 0, 0, false, "RESET_OWNER" },
	[VHOST_USER_SET_MEM_TABLE] = { h_set_mem_table, MEM, false, "SET_MEM_TABLE" },
	[VHOST_USER_SET_VRING_NUM] = { h_set_vring_num, STATE, false, "SET_VRING_NUM" },
	[VHOST_USER_SET_VRING_ADDR] = { h_set_vring_addr, ADDR, false, "SET_VRING_ADDR" },
	[VHOST_USER_SET_VRING_BASE] = { h_set_vring_base, STATE, false, "SET_VRING_BASE" },
	[VHOST_USER_GET_VRING_BASE] = { h_get_vring_base, STATE, true, "GET_VRING_BASE" },
	[VHOST_USER_SET_VRING_KICK] = { h_set_vring_kick, U64, false, "SET_VRING_KICK" },
	[VHOST_USER_SET_VRING_CALL] = { h_set_vring_call, U64, false, "SET_VRING_CALL" },
	[VHOST_USER_SET_VRING_ERR] = { h_set_vring_err, U64, false, "SET_VRING_ERR" },
	[VHOST_USER_GET_PROTOCOL_FEATURES] = { h_get_protocol_features, 0, 0, true,
					       "GET_PROTOCOL_FEATURES" },
	[VHOST_USER_SET_PROTOCOL_FEATURES] = { h_set_protocol_features, U64, false,
					       "SET_PROTOCOL_FEATURES" },
	[VHOST_USER_GET_QUEUE_NUM] = { h_get_queue_num, 0, 0, true, "GET_QUEUE_NUM" },
	[VHOST_USER_SET_VRING_ENABLE] = { h_set_vring_enable, STATE, false, "SET_VRING_ENABLE" },
	[VHOST_USER_GET_CONFIG] = { h_get_config, CONFIG, true, "GET_CONFIG" },
	[VHOST_USER_SET_CONFIG] = { h_set_config, CONFIG, false, "SET_CONFIG" },
	[VHOST_USER_RESET_DEVICE] = { h_reset_device, 0, 0, false, "RESET_DEVICE" },
};

const struct vhost_user_handler *vhost_user_handler(uint32_t request)
{
	if (request >= sizeof(handlers) / sizeof(handlers[0]) || !handlers[request].fn)
		return NULL;
	return &handlers[request];
}

const char *vhost_user_request_name(uint32_t request)
{
	const struct vhost_user_handler *h = vhost_user_handler(request);

	return h ? h->name : "unknown";
}
