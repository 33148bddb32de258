/* virtio-vsock connections (virtio 1.2 sections 5.10.6.5-6): table and state machine. */
#define LOG_MODULE "vsock"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/vsock/vsock_priv.h"
#include "util/log.h"

#define EPHEMERAL_FIRST 1024u
#define EPHEMERAL_LAST 0x7fffffffu

/* Buckets at least twice the slots: chains stay a connection or two long. */
int vsock_conn_table_init(struct vsock *v)
{
	unsigned int n = 16;

	while (n < 2 * v->max_conns)
		n <<= 1;
	v->buckets = malloc(n * sizeof(*v->buckets));
	if (!v->buckets)
		return -ENOMEM;
	memset(v->buckets, 0xff, n * sizeof(*v->buckets));
	v->bucket_mask = n - 1;
	for (unsigned int i = 0; i < v->max_conns; i++)
		v->conns[i].free_next = i + 1 < v->max_conns ? (int)i + 1 : -1;
	v->free_head = v->max_conns ? 0 : -1;
	return 0;
}

/* The guest picks its ports: a multiplicative mix, so neighbours do not share buckets. */
static int *bucket(const struct vsock *v, uint32_t local_port, uint32_t peer_port)
{
	uint32_t h = local_port * 0x9e3779b1u ^ peer_port * 0x85ebca77u;

	h ^= h >> 16;
	return &v->buckets[h & v->bucket_mask];
}

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port, uint32_t peer_port)
{
	for (int i = *bucket(v, local_port, peer_port); i >= 0; i = v->conns[i].hash_next) {
		struct vsock_conn *c = &v->conns[i];

		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	}
	return NULL;
}

/* NULL when the connection limit is reached: the guest cannot open unbounded host fds. */
struct vsock_conn *vsock_conn_new(struct vsock *v, uint32_t local_port, uint32_t peer_port, int fd,
				  enum vsock_conn_state state)
{
	int slot = v->free_head, *head = bucket(v, local_port, peer_port);
	struct vsock_conn *c;

	if (slot < 0)
		return NULL;
	c = &v->conns[slot];
	v->free_head = c->free_next;
	*c = (struct vsock_conn){ .v = v, .state = state, .local_port = local_port,
				  .peer_port = peer_port, .fd = fd,
				  .type = VIRTIO_VSOCK_TYPE_STREAM, .hash_next = *head,
				  .free_next = -1 };
	*head = slot;
	v->nr_conns++;
	return c;
}

static void unhash(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	int slot = (int)(c - v->conns), *pp = bucket(v, c->local_port, c->peer_port);

	while (*pp >= 0 && *pp != slot)
		pp = &v->conns[*pp].hash_next;
	if (*pp == slot)
		*pp = c->hash_next;
	c->hash_next = -1;
	c->free_next = v->free_head;
	v->free_head = slot;
}

static void unlink_ready(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	struct vsock_conn **pp = &v->ready_head, *prev = NULL;

	if (!c->queued)
		return;
	while (*pp && *pp != c) {
		prev = *pp;
		pp = &(*pp)->next_ready;
	}
	if (*pp)
		*pp = c->next_ready;
	if (v->ready_tail == c)
		v->ready_tail = prev;
	c->queued = false;
	c->next_ready = NULL;
}

void vsock_conn_close_fd(struct vsock_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->registered)
		evloop_del(c->v->dev.loop, c->fd);
	c->registered = false;
	c->watched = 0;
	close(c->fd);
	c->fd = -1;
}

void vsock_conn_free(struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_FREE)
		return;
	if (c->buf_len)
		log_debug("vsock: dropping %u bytes the guest sent on port %u (the host side did "
			  "not take them)", c->buf_len, c->local_port);
	unlink_ready(c);
	vsock_conn_close_fd(c);
	free(c->buf);
	c->buf = NULL;
	free(c->msg);
	c->msg = NULL;
	c->state = VSOCK_CONN_FREE;
	unhash(c);
	c->v->nr_conns--;
}

void vsock_conn_free_all(struct vsock *v)
{
	for (unsigned int i = 0; i < v->max_conns; i++)
		vsock_conn_free(&v->conns[i]);
	v->ready_head = v->ready_tail = NULL;
}

/* Abort: the host side goes now, the guest learns by RST (5.10.6.5), then the slot is freed. */
void vsock_conn_rst(struct vsock_conn *c)
{
	vsock_conn_close_fd(c);
	c->pending = VSOCK_PEND_RST;
	c->readable = false;
	vsock_dev_ready(c);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A guest that never answers must not hold a connection slot (and host fd) forever. */
void vsock_conn_set_deadline(struct vsock_conn *c)
{
	c->deadline_ns = now_ns() + c->v->timeout_ns;
	vsock_dev_arm_timer(c->v);
}

unsigned int vsock_conn_expire(struct vsock *v)
{
	uint64_t now = now_ns();
	unsigned int left = 0;

	for (unsigned int i = 0; i < v->max_conns; i++) {
		struct vsock_conn *c = &v->conns[i];

		if (c->state == VSOCK_CONN_FREE || !c->deadline_ns || (c->pending & VSOCK_PEND_RST))
			continue;
		if (now < c->deadline_ns) {
			left++;
			continue;
		}
		log_debug("vsock: guest did not answer on port %u in time", c->local_port);
		c->deadline_ns = 0;
		vsock_conn_rst(c);
	}
	return left;
}

/* A fresh host port for a host-initiated connection to guest port peer_port. */
uint32_t vsock_conn_alloc_port(struct vsock *v, uint32_t peer_port)
{
	for (unsigned int tries = 0; tries <= v->max_conns; tries++) {
		uint32_t port = v->next_local_port;

		v->next_local_port = port >= EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
		if (port >= EPHEMERAL_FIRST && !vsock_conn_find(v, port, peer_port))
			return port;
	}
	return 0;
}

/*
 * Interest in the host fd follows state. Nothing wanted means unregistered, so a HUP we
 * cannot act on yet (no credit to read the rest) does not spin the loop; after host EOF the
 * fd stays registered with no events, to learn of a full close (HUP) nobody will read.
 */
void vsock_conn_rearm(struct vsock_conn *c)
{
	uint32_t want = 0;
	bool reg;
	int ret = 0;

	if (c->fd < 0)
		return;
	if (c->state == VSOCK_CONN_CONNECTING)
		want = EPOLLOUT;
	if (c->state == VSOCK_CONN_ESTABLISHED) {
		if (!c->readable && !c->host_eof && !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV))
			want |= EPOLLIN;
		if (vsock_io_sendable(c))
			want |= EPOLLOUT;
	}
	reg = want || (c->state == VSOCK_CONN_ESTABLISHED && c->host_eof && !c->host_wr_dead);
	if (reg == c->registered && want == c->watched)
		return;
	if (!reg)
		evloop_del(c->v->dev.loop, c->fd);
	else if (!c->registered)
		ret = evloop_add(c->v->dev.loop, c->fd, want, vsock_io_on_host, c);
	else
		ret = evloop_modify(c->v->dev.loop, c->fd, want);
	if (ret) {
		log_warn("cannot watch a host socket: %d", ret);
		c->registered = false;
		vsock_conn_rst(c);
		return;
	}
	c->registered = reg;
	c->watched = want;
}

/* The guest's credit info rides on every packet (5.10.6.3). */
static void take_credit(struct vsock_conn *c, const struct vsock_pkt *pkt)
{
	c->peer_buf_alloc = pkt->buf_alloc;
	c->peer_fwd_cnt = pkt->fwd_cnt;
	if (vsock_pkt_peer_credit(c)) {
		c->credit_requested = false;
		if (c->readable)
			vsock_dev_ready(c);
	}
}

/*
 * Everything the guest sent has reached the host (or cannot): pass on the guest's SHUTDOWN.
 * A full SHUTDOWN from the guest is answered by RST once its data is out (5.10.6.5).
 */
void vsock_conn_drained(struct vsock_conn *c)
{
	if (vsock_io_sendable(c))
		return;
	if ((c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && c->fd >= 0)
		shutdown(c->fd, SHUT_WR);
	if ((c->guest_shut & VSOCK_SHUT_BOTH) == VSOCK_SHUT_BOTH)
		vsock_conn_rst(c);
}

static void on_shutdown(struct vsock_conn *c, uint32_t flags)
{
	c->guest_shut |= flags & VSOCK_SHUT_BOTH;
	if (c->state == VSOCK_CONN_CLOSING) {
		vsock_conn_rst(c);
		return;
	}
	vsock_conn_drained(c);
	if (c->pending != VSOCK_PEND_RST)
		vsock_conn_rearm(c);
}

static void on_rw(struct vsock_conn *c, const struct vsock_pkt *pkt, const struct iovec *data,
		  unsigned int cnt)
{
	int ret;

	if (c->state == VSOCK_CONN_CLOSING)
		return;     /* we said we receive nothing more; the guest's RST is on its way */
	if (c->state != VSOCK_CONN_ESTABLISHED || (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND)) {
		log_warn_guest("vsock: data on port %u in the wrong state", c->local_port);
		vsock_conn_rst(c);
		return;
	}
	/* 5.10.6.3: data beyond the buffer we advertised is a broken promise, not a stall. */
	if (pkt->len > c->v->buf_size - c->buf_len) {
		log_warn_guest("vsock: guest exceeded its credit on port %u (%u bytes)", c->local_port,
			       pkt->len);
		vsock_conn_rst(c);
		return;
	}
	if (c->type == VIRTIO_VSOCK_TYPE_SEQPACKET)
		ret = vsock_seq_write(c, data, cnt, pkt->len, pkt->flags);
	else
		ret = vsock_io_write(c, data, cnt, pkt->len);
	if (ret < 0)
		vsock_conn_rst(c);
}

static void on_response(struct vsock_conn *c)
{
	if (c->state != VSOCK_CONN_REQUESTED) {
		log_warn_guest("vsock: unexpected RESPONSE on port %u", c->local_port);
		vsock_conn_rst(c);
		return;
	}
	c->state = VSOCK_CONN_ESTABLISHED;
	c->deadline_ns = 0;
	vsock_conn_rearm(c);
}

/* One guest packet for an existing connection (5.10.6.5 stream state machine). */
void vsock_conn_from_guest(struct vsock_conn *c, const struct vsock_pkt *pkt,
			   const struct iovec *data, unsigned int cnt)
{
	if (pkt->op == VIRTIO_VSOCK_OP_RST) {
		vsock_conn_free(c);     /* never answered (5.10.6.5), even if ours was pending */
		return;
	}
	if (c->pending & VSOCK_PEND_RST)
		return;     /* already aborted: only the RST to the guest is left */
	take_credit(c, pkt);
	switch (pkt->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		on_response(c);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		on_shutdown(c, pkt->flags);
		break;
	case VIRTIO_VSOCK_OP_RW:
		on_rw(c, pkt, data, cnt);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
		vsock_dev_ready(c);
		break;
	default:    /* REQUEST on a live connection, or an unknown op */
		log_warn_guest("vsock: op %u on established port %u", pkt->op, c->local_port);
		vsock_conn_rst(c);
	}
}

/* Data comes before SHUTDOWN, so SHUTDOWN is considered only when no data is readable. */
static uint16_t next_control(struct vsock_conn *c, uint32_t *flags)
{
	static const struct { unsigned int bit; uint16_t op; } order[] = {
		{ VSOCK_PEND_REQUEST, VIRTIO_VSOCK_OP_REQUEST },
		{ VSOCK_PEND_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
		{ VSOCK_PEND_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN },
		{ VSOCK_PEND_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE },
		{ VSOCK_PEND_CREDIT_REQUEST, VIRTIO_VSOCK_OP_CREDIT_REQUEST },
	};

	for (unsigned int i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (c->pending & order[i].bit) {
			c->pending &= ~order[i].bit;
			*flags = order[i].op == VIRTIO_VSOCK_OP_SHUTDOWN ? c->shut_to_guest : 0;
			return order[i].op;
		}
	}
	return 0;
}

static bool wants_data(const struct vsock_conn *c)
{
	return c->readable && c->state == VSOCK_CONN_ESTABLISHED &&
	       !(c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_RCV) && vsock_pkt_peer_credit(c);
}

bool vsock_conn_has_work(const struct vsock_conn *c)
{
	return c->state != VSOCK_CONN_FREE && (c->pending || wants_data(c));
}

static uint32_t emit(struct vsock_conn *c, const struct virtq_elem *elem, uint16_t op, uint32_t flags)
{
	struct vsock_pkt pkt;

	vsock_pkt_for_conn(c, op, &pkt);
	pkt.flags = flags;
	if (vsock_pkt_write(elem, &pkt))
		return 0;
	c->last_fwd_sent = c->fwd_cnt;
	c->pending &= ~VSOCK_PEND_CREDIT_UPDATE;
	return VSOCK_HDR_LEN;
}

static uint32_t emit_rst(struct vsock_conn *c, const struct virtq_elem *elem)
{
	uint32_t n = emit(c, elem, VIRTIO_VSOCK_OP_RST, 0);

	vsock_conn_free(c);
	return n;
}

uint32_t vsock_conn_fill_rx(struct vsock_conn *c, const struct virtq_elem *elem)
{
	uint32_t flags = 0, n;
	uint16_t op;

	if (c->pending & VSOCK_PEND_RST)
		return emit_rst(c, elem);
	if (c->pending & (VSOCK_PEND_REQUEST | VSOCK_PEND_RESPONSE)) {
		op = next_control(c, &flags);
		return emit(c, elem, op, flags);
	}
	if (wants_data(c)) {
		n = c->type == VIRTIO_VSOCK_TYPE_SEQPACKET ?
			vsock_seq_read(c, elem, vsock_pkt_peer_credit(c)) :
			vsock_io_read_rw(c, elem, vsock_pkt_peer_credit(c));
		if (n)
			return n;
		if (c->pending & VSOCK_PEND_RST)
			return emit_rst(c, elem);
	}
	if (c->readable && !vsock_pkt_peer_credit(c) && !c->credit_requested) {
		/* 5.10.6.3: out of credit with data waiting; ask once rather than wait blindly. */
		c->credit_requested = true;
		c->pending |= VSOCK_PEND_CREDIT_REQUEST;
	}
	op = next_control(c, &flags);
	return op ? emit(c, elem, op, flags) : 0;
}
