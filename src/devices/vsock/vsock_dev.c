/*
 * virtio-vsock device (virtio 1.2 section 5.10): queue handling and the rx scheduler.
 * The tx queue is always drained at once: each connection's data fits the credit we granted
 * it, so one slow host socket never holds up the queue other connections share. The rx queue
 * is shared fairly: connections with something to send take turns, one packet each.
 */
#define LOG_MODULE "vsock"
#include <errno.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/vsock/vsock_priv.h"
#include "util/iov.h"
#include "util/log.h"

static struct vsock *to_vsock(struct virtio_dev *dev)
{
	return dev->priv;
}

void vsock_dev_ready(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (c->queued || c->state == VSOCK_CONN_FREE)
		return;
	c->queued = true;
	c->next_ready = NULL;
	if (v->ready_tail)
		v->ready_tail->next_ready = c;
	else
		v->ready_head = c;
	v->ready_tail = c;
}

static struct vsock_conn *ready_pop(struct vsock *v)
{
	struct vsock_conn *c = v->ready_head;

	if (!c)
		return NULL;
	v->ready_head = c->next_ready;
	if (!v->ready_head)
		v->ready_tail = NULL;
	c->queued = false;
	c->next_ready = NULL;
	return c;
}

/* 5.10.6.5: a packet for no connection is answered by RST, but an RST never is. */
static void queue_rst(struct vsock *v, const struct vsock_pkt *in)
{
	if (in->op == VIRTIO_VSOCK_OP_RST || v->rst_count == VSOCK_RST_RING)
		return;
	vsock_pkt_rst_reply(v, in, &v->rst_ring[(v->rst_head + v->rst_count) % VSOCK_RST_RING]);
	v->rst_count++;
}

/* One rx packet: connectionless RSTs first, then one packet from the next ready connection. */
static uint32_t fill_one(struct vsock *v, const struct virtq_elem *elem)
{
	unsigned int tries = v->nr_conns + 1;
	struct vsock_conn *c;

	if (v->rst_count) {
		if (vsock_pkt_write(elem, &v->rst_ring[v->rst_head]))
			return 0;
		v->rst_head = (v->rst_head + 1) % VSOCK_RST_RING;
		v->rst_count--;
		return VSOCK_HDR_LEN;
	}
	/* One pass at most: a connection that cannot use this buffer must not spin us. */
	while (tries-- && (c = ready_pop(v))) {
		uint32_t n = vsock_conn_fill_rx(c, elem);

		if (vsock_conn_has_work(c))
			vsock_dev_ready(c);
		if (n)
			return n;
	}
	return 0;
}

static void process_rx(struct vsock *v)
{
	struct virtq *vq = &v->dev.vqs[VSOCK_RX_Q];
	bool pushed = false;

	while (v->active && (v->rst_count || v->ready_head)) {
		int r = virtq_pop(vq, &v->rx_elem);
		uint32_t n;

		if (r < 0)
			virtio_dev_fail(&v->dev, "bad rx chain");
		if (r <= 0)
			break;
		/* 5.10.6.4: rx buffers are device-writable and hold at least a header. */
		if (iov_length(&v->rx_elem.iov[v->rx_elem.out_num], v->rx_elem.in_num) < VSOCK_HDR_LEN) {
			log_warn_guest("vsock: rx buffer too small for a header");
			virtq_push(vq, v->rx_elem.head, 0);
			pushed = true;
			continue;
		}
		n = fill_one(v, &v->rx_elem);
		if (!n) {
			virtq_unpop(vq);
			break;
		}
		virtq_push(vq, v->rx_elem.head, n);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(&v->dev, VSOCK_RX_Q);
}

/* The host side for a guest REQUEST: the port map first, then the backend. */
static int open_host(struct vsock *v, const struct vsock_pkt *pkt, int *fd)
{
	int ret = vsock_unix_connect_port(v, pkt->dst_port, pkt->type, fd);

	if (ret == -ENOENT && v->backend && v->backend->connect)
		ret = v->backend->connect(v->backend_opaque, pkt->dst_port, pkt->src_port, pkt->type, fd);
	return ret == -ENOENT ? -ECONNREFUSED : ret;
}

static void guest_request(struct vsock *v, const struct vsock_pkt *pkt)
{
	struct vsock_conn *c;
	int fd = -1, ret;

	if (pkt->op != VIRTIO_VSOCK_OP_REQUEST) {
		queue_rst(v, pkt);
		return;
	}
	if (v->nr_conns >= v->max_conns) {
		log_warn_guest("vsock: connection limit (%u) reached, refusing port %u", v->max_conns,
			       pkt->dst_port);
		queue_rst(v, pkt);
		return;
	}
	ret = open_host(v, pkt, &fd);
	c = ret < 0 ? NULL : vsock_conn_new(v, pkt->dst_port, pkt->src_port, fd,
					    ret ? VSOCK_CONN_CONNECTING : VSOCK_CONN_ESTABLISHED);
	if (!c) {
		if (ret >= 0)
			close(fd);
		log_debug("vsock: guest connect to port %u refused: %d", pkt->dst_port, ret);
		queue_rst(v, pkt);
		return;
	}
	c->type = pkt->type;
	c->peer_buf_alloc = pkt->buf_alloc;
	c->peer_fwd_cnt = pkt->fwd_cnt;
	if (c->state == VSOCK_CONN_ESTABLISHED) {
		c->pending |= VSOCK_PEND_RESPONSE;
		vsock_dev_ready(c);
	}
	vsock_conn_rearm(c);
}

/* Seqpacket only once negotiated (5.10.3); a connection keeps the type it was opened with. */
static bool type_ok(const struct vsock *v, const struct vsock_conn *c, uint16_t type)
{
	if (c)
		return type == c->type;
	return type == VIRTIO_VSOCK_TYPE_STREAM ||
	       (type == VIRTIO_VSOCK_TYPE_SEQPACKET &&
		virtio_dev_has_feature(&v->dev, VIRTIO_VSOCK_F_SEQPACKET));
}

/* Addressing and lengths are checked before the packet reaches any connection (5.10.6.2). */
static void handle_tx(struct vsock *v, const struct virtq_elem *elem)
{
	size_t out_len = iov_length(elem->iov, elem->out_num);
	struct vsock_conn *c;
	struct vsock_pkt pkt;
	unsigned int n = 0;

	if (vsock_pkt_read(elem, &pkt)) {
		log_warn_guest("vsock: tx packet shorter than a header");
		return;
	}
	if (pkt.src_cid != v->guest_cid || pkt.dst_cid != VSOCK_HOST_CID) {
		log_warn_guest("vsock: tx packet from CID %llu to CID %llu dropped",
			       (unsigned long long)pkt.src_cid, (unsigned long long)pkt.dst_cid);
		return;
	}
	c = vsock_conn_find(v, pkt.dst_port, pkt.src_port);
	if (pkt.len > out_len - VSOCK_HDR_LEN || pkt.len > VSOCK_MAX_TX_PAYLOAD ||
	    !type_ok(v, c, pkt.type)) {
		log_warn_guest("vsock: malformed tx packet (len %u in %zu bytes, type %u)", pkt.len,
			       out_len, pkt.type);
		if (c)
			vsock_conn_rst(c);
		else
			queue_rst(v, &pkt);
		return;
	}
	if (!c) {
		guest_request(v, &pkt);
		return;
	}
	if (pkt.op == VIRTIO_VSOCK_OP_RW)
		n = iov_slice(elem->iov, elem->out_num, VSOCK_HDR_LEN, pkt.len, v->tx_data, VIRTQ_MAX_SEGS);
	vsock_conn_from_guest(c, &pkt, v->tx_data, n);
}

/* Drains tx, unless the RST ring is full: then waits for rx buffers (bounded, lossless). */
static void process_tx(struct vsock *v)
{
	struct virtq *vq = &v->dev.vqs[VSOCK_TX_Q];
	bool pushed = false;

	v->tx_stalled = false;
	while (v->active) {
		int r;

		if (v->rst_count == VSOCK_RST_RING) {
			v->tx_stalled = true;
			break;
		}
		r = virtq_pop(vq, &v->tx_elem);
		if (r < 0)
			virtio_dev_fail(&v->dev, "bad tx chain");
		if (r <= 0)
			break;
		handle_tx(v, &v->tx_elem);
		virtq_push(vq, v->tx_elem.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(&v->dev, VSOCK_TX_Q);
}

/* tx and rx in turns until neither can progress; no recursion, no busy wait. */
static void service(struct vsock *v, bool tx)
{
	for (;;) {
		if (tx || v->tx_stalled)
			process_tx(v);
		process_rx(v);
		if (!v->tx_stalled || v->rst_count == VSOCK_RST_RING)
			return;
		tx = true;
	}
}

void vsock_dev_kick_rx(struct vsock *v)
{
	service(v, false);
}

static void set_timer(struct vsock *v, bool on)
{
	struct itimerspec its = { .it_interval = { on ? 1 : 0, 0 }, .it_value = { on ? 1 : 0, 0 } };

	if (v->timer_armed != on && timerfd_settime(v->timer_fd, 0, &its, NULL) == 0)
		v->timer_armed = on;
}

/* A 1 s tick only while some connection waits for the guest: idle devices never wake up. */
void vsock_dev_arm_timer(struct vsock *v)
{
	set_timer(v, true);
}

static void on_timer(void *opaque, uint32_t events)
{
	struct vsock *v = opaque;
	uint64_t ticks;

	(void)events;
	if (read(v->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (!vsock_conn_expire(v))
		set_timer(v, false);
	service(v, false);
}

static int vsock_activate(struct virtio_dev *dev)
{
	struct vsock *v = to_vsock(dev);

	if (!dev->loop)
		return -EINVAL;
	v->timer_watched = evloop_add(dev->loop, v->timer_fd, EPOLLIN, on_timer, v) == 0;
	if (!v->timer_watched)
		log_warn("vsock: no timer: unanswered connections are not timed out");
	v->active = true;
	if (v->backend && v->backend->activate)
		v->backend->activate(v->backend_opaque, dev->loop);
	vsock_unix_start(v);
	service(v, true);
	return 0;
}

static void vsock_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct vsock *v = to_vsock(dev);

	/* The event queue only holds buffers for events we may send (5.10.6.7). */
	if (q == VSOCK_RX_Q || q == VSOCK_TX_Q)
		service(v, q == VSOCK_TX_Q);
}

/* Every connection ends with the device; the guest's stack forgets them on reset too. */
static void vsock_reset(struct virtio_dev *dev)
{
	struct vsock *v = to_vsock(dev);

	v->active = false;
	if (v->timer_watched)
		evloop_del(dev->loop, v->timer_fd);
	v->timer_watched = false;
	set_timer(v, false);
	vsock_conn_free_all(v);
	vsock_unix_stop(v);
	v->rst_head = v->rst_count = 0;
	v->tx_stalled = false;
	if (v->backend && v->backend->reset)
		v->backend->reset(v->backend_opaque);
}

static void vsock_destroy(struct virtio_dev *dev)
{
	struct vsock *v = to_vsock(dev);

	vsock_conn_free_all(v);
	vsock_unix_close(v);
	if (v->timer_watched && dev->loop)
		evloop_del(dev->loop, v->timer_fd);
	if (v->timer_fd >= 0)
		close(v->timer_fd);
	if (v->backend && v->backend->destroy)
		v->backend->destroy(v->backend_opaque);
	free(v->conns);
	free(v->buckets);
	free(v);
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = 19,
	/* 5.10.3: seqpacket sockets; the TSI proxy carries UDP over them. */
	.features = 1ull << VIRTIO_VSOCK_F_SEQPACKET,
	.num_queues = 3,
	.queue_max_size = VSOCK_QUEUE_MAX_SIZE, .queue_offer_size = VSOCK_QUEUE_SIZE,
	.activate = vsock_activate,
	.queue_notify = vsock_queue_notify,
	.reset = vsock_reset,
	.destroy = vsock_destroy,
};

static void apply_config(struct vsock *v, const struct vsock_config *cfg)
{
	v->guest_cid = cfg->guest_cid ? cfg->guest_cid : VSOCK_DEFAULT_GUEST_CID;
	v->max_conns = cfg->max_conns ? cfg->max_conns : VSOCK_DEFAULT_MAX_CONNS;
	v->buf_size = cfg->buf_size ? cfg->buf_size : VSOCK_DEFAULT_BUF_SIZE;
	if (v->buf_size < VSOCK_MIN_BUF_SIZE)
		v->buf_size = VSOCK_MIN_BUF_SIZE;
	if (v->buf_size > VSOCK_MAX_BUF_SIZE)
		v->buf_size = VSOCK_MAX_BUF_SIZE;
	v->timeout_ns = (uint64_t)(cfg->timeout_ms ? cfg->timeout_ms : VSOCK_DEFAULT_TIMEOUT_MS) * 1000000ull;
	v->backend = cfg->backend;
	v->backend_opaque = cfg->backend_opaque;
	v->next_local_port = 49152;
	v->timer_fd = -1;
	/* 5.10.4: guest_cid is le64; the upper 32 bits are reserved and zero. */
	v->config.guest_cid = htole64(v->guest_cid);
}

int virtio_vsock_create(const struct vsock_config *cfg, struct virtio_dev **out)
{
	struct vsock *v = calloc(1, sizeof(*v));
	int ret;

	if (!v) {
		if (cfg->backend && cfg->backend->destroy)
			cfg->backend->destroy(cfg->backend_opaque);
		return -ENOMEM;
	}
	apply_config(v, cfg);
	v->dev.ops = &vsock_ops;
	v->dev.priv = v;
	v->dev.config = (uint8_t *)&v->config;
	v->dev.config_size = sizeof(v->config);
	ret = v->guest_cid <= VSOCK_HOST_CID || v->guest_cid > UINT32_MAX ? -EINVAL : 0;
	if (!ret)
		ret = (v->conns = calloc(v->max_conns, sizeof(*v->conns))) ? 0 : -ENOMEM;
	if (!ret)
		ret = vsock_conn_table_init(v);
	v->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!ret && v->timer_fd < 0)
		ret = -errno;
	if (!ret)
		ret = vsock_unix_open(v, cfg->ports, cfg->nr_ports);
	if (ret) {
		vsock_destroy(&v->dev);
		return ret;
	}
	*out = &v->dev;
	return 0;
}

int virtio_vsock_connect_guest(struct virtio_dev *dev, uint32_t guest_port, int fd)
{
	struct vsock *v = to_vsock(dev);
	uint32_t port = v->active && v->nr_conns < v->max_conns ? vsock_conn_alloc_port(v, guest_port) : 0;
	struct vsock_conn *c = port ? vsock_conn_new(v, port, guest_port, fd, VSOCK_CONN_REQUESTED) : NULL;

	if (!c) {
		close(fd);
		return v->active ? -EMFILE : -ENOTCONN;
	}
	c->pending |= VSOCK_PEND_REQUEST;
	vsock_conn_set_deadline(c);
	vsock_dev_ready(c);
	service(v, false);
	return 0;
}
