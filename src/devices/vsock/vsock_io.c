/*
 * virtio-vsock host sockets: guest data goes to the host fd directly from guest memory, and
 * only what the fd does not take is kept, in a ring no larger than the credit we granted;
 * host data is read straight into the guest's rx buffer, never more than the guest's credit.
 */
#define LOG_MODULE "vsock"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "devices/vsock/vsock_priv.h"
#include "util/iov.h"
#include "util/log.h"

#define SLICE_MAX 64

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/*
 * 5.10.6.3: tell the guest about freed space before it runs dry. Like Linux, only when the
 * space the guest knows of fell below half the buffer (not after every write).
 */
void vsock_io_credit_freed(struct vsock_conn *c)
{
	uint32_t known_free = c->v->buf_size - (c->rx_cnt - c->last_fwd_sent);

	if (c->fwd_cnt != c->last_fwd_sent && known_free < c->v->buf_size / 2) {
		c->pending |= VSOCK_PEND_CREDIT_UPDATE;
		vsock_dev_ready(c);
	}
}

/* Neither direction works on the host any more: SHUTDOWN(both) to the guest, await its RST. */
static void maybe_host_gone(struct vsock_conn *c)
{
	if (!c->host_eof || !c->host_wr_dead || c->state != VSOCK_CONN_ESTABLISHED)
		return;
	c->state = VSOCK_CONN_CLOSING;
	c->shut_to_guest |= VSOCK_SHUT_BOTH;
	c->pending |= VSOCK_PEND_SHUTDOWN;
	vsock_conn_close_fd(c);
	vsock_conn_set_deadline(c);
	vsock_dev_ready(c);
}

/* The host peer stopped reading: the guest's data from here on is dropped (but credited). */
void vsock_io_write_side_dead(struct vsock_conn *c)
{
	c->host_wr_dead = true;
	c->fwd_cnt += c->buf_len;
	c->buf_len = 0;
	c->seq_count = c->seq_part = 0;
	free(c->buf);
	c->buf = NULL;
	c->buf_off = 0;
	maybe_host_gone(c);
}

/* Bytes sent, or -EAGAIN / -EPIPE-like errors. Never raises SIGPIPE. */
static ssize_t send_iov(int fd, struct iovec *iov, unsigned int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Write-through from guest memory; returns bytes the fd took. */
static uint32_t write_direct(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t len)
{
	uint32_t done = 0;

	while (done < len) {
		struct iovec part[SLICE_MAX];
		unsigned int n = iov_slice(data, cnt, done, len - done, part, SLICE_MAX);
		ssize_t w = send_iov(c->fd, part, n);

		if (w == -EAGAIN)
			break;
		if (w <= 0) {
			vsock_io_write_side_dead(c);
			return len;
		}
		done += (uint32_t)w;
	}
	return done;
}

int vsock_io_buffer(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t from,
		    uint32_t len)
{
	uint32_t size = c->v->buf_size, tail, first;

	if (!c->buf && !(c->buf = malloc(size)))
		return -ENOMEM;
	tail = (c->buf_off + c->buf_len) % size;
	first = min_u32(len, size - tail);
	iov_to_buf(data, cnt, from, c->buf + tail, first);
	iov_to_buf(data, cnt, from + first, c->buf, len - first);
	c->buf_len += len;
	return 0;
}

/* Guest payload of len bytes (already checked against our credit). */
int vsock_io_write(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t len)
{
	uint32_t done = 0;

	c->rx_cnt += len;
	if (c->fd < 0 || c->host_wr_dead) {
		c->fwd_cnt += len;
		vsock_io_credit_freed(c);
		return 0;
	}
	if (!c->buf_len)
		done = write_direct(c, data, cnt, len);
	if (c->host_wr_dead)
		c->fwd_cnt += len;
	else if (done < len && vsock_io_buffer(c, data, cnt, done, len - done))
		return -ENOMEM;
	else
		c->fwd_cnt += done;
	vsock_io_credit_freed(c);
	vsock_conn_rearm(c);
	return 0;
}

uint32_t vsock_io_sendable(const struct vsock_conn *c)
{
	return c->host_wr_dead ? 0 : c->buf_len - c->seq_part;
}

/* The fd became writable: push out the ring, then pass on a pending guest SHUTDOWN. */
void vsock_io_flush(struct vsock_conn *c)
{
	uint32_t size = c->v->buf_size;

	if (c->type == VIRTIO_VSOCK_TYPE_SEQPACKET) {
		vsock_seq_flush(c);
		return;
	}
	while (c->buf_len && !c->host_wr_dead) {
		uint32_t first = min_u32(c->buf_len, size - c->buf_off);
		struct iovec iov[2] = { { c->buf + c->buf_off, first }, { c->buf, c->buf_len - first } };
		ssize_t w = send_iov(c->fd, iov, c->buf_len > first ? 2 : 1);

		if (w == -EAGAIN)
			break;
		if (w <= 0) {
			vsock_io_write_side_dead(c);
			break;
		}
		c->buf_off = (uint32_t)((c->buf_off + (uint32_t)w) % size);
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	if (!c->buf_len) {
		/* Kept only under back-pressure: idle connections hold no buffer. */
		free(c->buf);
		c->buf = NULL;
		c->buf_off = 0;
	}
	vsock_io_credit_freed(c);
	vsock_conn_drained(c);
}

/* No more host data: SHUTDOWN(SEND) after the data already delivered. */
void vsock_io_host_eof(struct vsock_conn *c)
{
	struct pollfd pfd = { .fd = c->fd };

	c->host_eof = true;
	c->readable = false;
	c->shut_to_guest |= VIRTIO_VSOCK_SHUTDOWN_SEND;
	c->pending |= VSOCK_PEND_SHUTDOWN;
	/* A peer that closed (not just shut down writing) shows HUP now: one SHUTDOWN(both). */
	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)))
		vsock_io_write_side_dead(c);
	maybe_host_gone(c);
}

/* Read host data straight into the rx chain after the header; 0 if nothing was read. */
uint32_t vsock_io_read_rw(struct vsock_conn *c, const struct virtq_elem *elem, uint32_t max)
{
	const struct iovec *in = &elem->iov[elem->out_num];
	size_t room = iov_length(in, elem->in_num);
	struct iovec part[SLICE_MAX];
	struct vsock_pkt pkt;
	unsigned int n;
	ssize_t r;

	if (room <= VSOCK_HDR_LEN)
		return 0;
	max = min_u32(min_u32(max, VSOCK_MAX_PAYLOAD), (uint32_t)(room - VSOCK_HDR_LEN));
	n = iov_slice(in, elem->in_num, VSOCK_HDR_LEN, max, part, SLICE_MAX);
	do
		r = readv(c->fd, part, (int)n);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN) {
		c->readable = false;
		vsock_conn_rearm(c);
		return 0;
	}
	if (r < 0) {
		vsock_conn_rst(c);
		return 0;
	}
	if (r == 0) {
		vsock_io_host_eof(c);
		vsock_conn_rearm(c);
		return 0;
	}
	c->tx_cnt += (uint32_t)r;
	vsock_pkt_for_conn(c, VIRTIO_VSOCK_OP_RW, &pkt);
	pkt.len = (uint32_t)r;
	if (vsock_pkt_write(elem, &pkt))
		return 0;
	c->last_fwd_sent = c->fwd_cnt;
	c->pending &= ~VSOCK_PEND_CREDIT_UPDATE;
	return VSOCK_HDR_LEN + (uint32_t)r;
}

/* A nonblocking connect finished: RESPONSE, or RST with the reason logged. */
static void connect_done(struct vsock_conn *c, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (!err && (events & EPOLLERR))
		err = ECONNREFUSED;
	if (err) {
		log_debug("vsock: host connect for port %u failed: %s", c->local_port, strerror(err));
		vsock_conn_rst(c);
		return;
	}
	c->state = VSOCK_CONN_ESTABLISHED;
	c->pending |= VSOCK_PEND_RESPONSE;
	vsock_dev_ready(c);
	vsock_conn_rearm(c);
}

void vsock_io_on_host(void *opaque, uint32_t events)
{
	struct vsock_conn *c = opaque;
	struct vsock *v = c->v;

	if (c->state == VSOCK_CONN_CONNECTING) {
		connect_done(c, events);
	} else {
		if (events & EPOLLHUP)
			vsock_io_write_side_dead(c);
		if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->watched & EPOLLIN)) {
			c->readable = true;
			vsock_dev_ready(c);
		}
		if (vsock_io_sendable(c) && (events & (EPOLLOUT | EPOLLERR)))
			vsock_io_flush(c);
		if (c->state != VSOCK_CONN_FREE && !(c->pending & VSOCK_PEND_RST))
			vsock_conn_rearm(c);
	}
	vsock_dev_kick_rx(v);
}
