/*
 * virtio-vsock seqpacket connections (virtio 1.2 section 5.10.6.6): a guest message is the RW
 * packets up to one with VIRTIO_VSOCK_SEQ_EOM and goes to the host socket as one message; a
 * host message goes to the guest as fragments of what its rx buffers and credit allow, EOM on
 * the last. Credit (5.10.6.3) counts payload bytes exactly as for streams.
 */
#define LOG_MODULE "vsock"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "devices/vsock/vsock_priv.h"
#include "util/iov.h"
#include "util/log.h"

#define SLICE_MAX 64

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Bytes sent, or -errno; a message socket takes all or nothing. */
static ssize_t send_msg(int fd, struct iovec *iov, unsigned int cnt)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = cnt };
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* The peer is gone for good (as opposed to one message it would not take). */
static bool fatal_send_error(ssize_t err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN || err == -EBADF;
}

/* A message the host socket refused on its own (too big, unreachable): dropped, credited. */
static void drop_msg(struct vsock_conn *c, uint32_t len, ssize_t err)
{
	log_debug("vsock: host dropped a %u-byte message on port %u: %zd", len, c->local_port, err);
	c->fwd_cnt += len;
}

/* Sends the oldest complete message in the ring: 0 done, -EAGAIN blocked. */
static int send_head(struct vsock_conn *c)
{
	uint32_t size = c->v->buf_size, len = c->seq_msgs[c->seq_head];
	uint32_t first = min_u32(len, size - c->buf_off);
	struct iovec iov[2] = { { c->buf + c->buf_off, first }, { c->buf, len - first } };
	ssize_t w = send_msg(c->fd, iov, len > first ? 2 : 1);

	if (w == -EAGAIN)
		return -EAGAIN;
	if (fatal_send_error(w)) {
		vsock_io_write_side_dead(c);
		return 0;
	}
	if (w < 0)
		drop_msg(c, len, w);
	else
		c->fwd_cnt += len;
	c->buf_off = (c->buf_off + len) % size;
	c->buf_len -= len;
	c->seq_head = (c->seq_head + 1) % VSOCK_SEQ_MSGS;
	c->seq_count--;
	return 0;
}

void vsock_seq_flush(struct vsock_conn *c)
{
	while (c->seq_count && !c->host_wr_dead && send_head(c) == 0)
		;
	if (!c->buf_len) {
		free(c->buf);
		c->buf = NULL;
		c->buf_off = 0;
	}
	vsock_io_credit_freed(c);
	vsock_conn_drained(c);
}

/* The message at the ring's tail is complete: queue it, or drop it when the queue is full. */
static void end_msg(struct vsock_conn *c)
{
	if (c->seq_count == VSOCK_SEQ_MSGS) {
		log_warn_guest("vsock: %u messages queued on port %u, dropping one", VSOCK_SEQ_MSGS,
			       c->local_port);
		c->buf_len -= c->seq_part;
		drop_msg(c, c->seq_part, -ENOBUFS);
	} else {
		c->seq_msgs[(c->seq_head + c->seq_count) % VSOCK_SEQ_MSGS] = c->seq_part;
		c->seq_count++;
	}
	c->seq_part = 0;
}

/* A whole message in one packet with nothing queued before it: straight from guest memory. */
static int write_direct(struct vsock_conn *c, const struct iovec *data, unsigned int cnt,
			uint32_t len)
{
	struct iovec part[SLICE_MAX];
	unsigned int n = iov_slice(data, cnt, 0, len, part, SLICE_MAX);
	ssize_t w;

	if (iov_length(part, n) != len)
		return -EAGAIN;     /* more segments than one sendmsg here: go through the ring */
	w = send_msg(c->fd, part, n);
	if (w == -EAGAIN)
		return -EAGAIN;
	if (fatal_send_error(w))
		vsock_io_write_side_dead(c);
	else if (w < 0)
		drop_msg(c, len, w);
	else
		c->fwd_cnt += len;
	return 0;
}

/* Guest payload of len bytes (already checked against our credit), flags from its header. */
int vsock_seq_write(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t len,
		    uint32_t flags)
{
	bool eom = flags & VIRTIO_VSOCK_SEQ_EOM;

	c->rx_cnt += len;
	if (eom && !len && !c->seq_part)
		return 0;   /* an empty message would read as EOF on the host socket: not carried */
	if (c->fd < 0 || c->host_wr_dead) {
		c->fwd_cnt += len;
		vsock_io_credit_freed(c);
		return 0;
	}
	if (eom && !c->buf_len && write_direct(c, data, cnt, len) == 0) {
		vsock_io_credit_freed(c);
		return 0;
	}
	if (len && vsock_io_buffer(c, data, cnt, 0, len))
		return -ENOMEM;
	c->seq_part += len;
	if (eom)
		end_msg(c);
	vsock_seq_flush(c);
	if (c->state != VSOCK_CONN_FREE && !(c->pending & VSOCK_PEND_RST))
		vsock_conn_rearm(c);
	return 0;
}

/* One host message into c->msg: 1 staged, 0 nothing (EAGAIN, EOF or RST handled). */
static int stage(struct vsock_conn *c)
{
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (!c->msg && !(c->msg = malloc(VSOCK_MAX_PAYLOAD))) {
		vsock_conn_rst(c);
		return 0;
	}
	iov = (struct iovec){ c->msg, VSOCK_MAX_PAYLOAD };
	do
		r = recvmsg(c->fd, &mh, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EAGAIN) {
		c->readable = false;
		free(c->msg);           /* idle connections hold no buffer */
		c->msg = NULL;
		vsock_conn_rearm(c);
		return 0;
	}
	if (r <= 0) {
		/* A zero-length message reads as EOF on a message socket: senders avoid it. */
		if (r < 0) {
			vsock_conn_rst(c);
		} else {
			vsock_io_host_eof(c);
			vsock_conn_rearm(c);
		}
		return 0;
	}
	if (mh.msg_flags & MSG_TRUNC)
		log_debug("vsock: host message over %u bytes truncated", VSOCK_MAX_PAYLOAD);
	c->msg_staged = true;
	c->msg_off = 0;
	c->msg_len = (uint32_t)r;
	c->msg_eor = mh.msg_flags & MSG_EOR;
	return 1;
}

/* The next fragment of the staged message after the header; bytes written, 0 if none. */
uint32_t vsock_seq_read(struct vsock_conn *c, const struct virtq_elem *elem, uint32_t max)
{
	const struct iovec *in = &elem->iov[elem->out_num];
	size_t room = iov_length(in, elem->in_num);
	struct vsock_pkt pkt;
	uint32_t n;

	if (room <= VSOCK_HDR_LEN || (!c->msg_staged && !stage(c)))
		return 0;
	n = min_u32(min_u32(max, VSOCK_MAX_PAYLOAD), (uint32_t)(room - VSOCK_HDR_LEN));
	n = min_u32(n, c->msg_len - c->msg_off);
	vsock_pkt_for_conn(c, VIRTIO_VSOCK_OP_RW, &pkt);
	pkt.len = n;
	if (c->msg_off + n == c->msg_len)   /* 5.10.6.6.1: EOM marks the message's last packet */
		pkt.flags = VIRTIO_VSOCK_SEQ_EOM | (c->msg_eor ? VIRTIO_VSOCK_SEQ_EOR : 0);
	if (iov_from_buf(in, elem->in_num, VSOCK_HDR_LEN, c->msg + c->msg_off, n) != n ||
	    vsock_pkt_write(elem, &pkt))
		return 0;
	c->msg_off += n;
	c->tx_cnt += n;
	if (c->msg_off == c->msg_len)
		c->msg_staged = false;
	c->last_fwd_sent = c->fwd_cnt;
	c->pending &= ~VSOCK_PEND_CREDIT_UPDATE;
	return VSOCK_HDR_LEN + n;
}
