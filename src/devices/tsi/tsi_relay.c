/* TSI proxy: the byte relay between the guest's socketpair end and the host socket. */
#define LOG_MODULE "tsi"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include "devices/tsi/tsi_priv.h"
#include "util/log.h"

/* This direction is over: drop what is left and tell the sender it is not read any more. */
static void pipe_kill(struct tsi_pipe *pp, int from, int to)
{
	pp->len = pp->off = 0;
	if (!pp->eof)
		shutdown(from, SHUT_RD);
	if (!pp->shut)
		shutdown(to, SHUT_WR);
	pp->eof = pp->shut = true;
}

/*
 * Datagram mode: one message at a time, whole (the seqpacket pair and the host UDP socket
 * both keep boundaries). Only the guest's side ends; a UDP error (ICMP unreachable, a
 * datagram too big) loses one datagram, as UDP does, and a zero-length one is skipped
 * because an empty seqpacket message would read as EOF in the device. Addressed (OP_DGRAM):
 * each message carries its peer in a struct krun_tsi_dgram, so empty datagrams pass too.
 */
#define DGRAM_HDR sizeof(struct krun_tsi_dgram)

static ssize_t dgram_recv(const struct tsi_conn *c, struct tsi_pipe *pp, int from, bool from_guest)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct krun_tsi_dgram h;
	ssize_t n;

	if (!c->addressed || from_guest)
		return recv(from, pp->buf, TSI_RELAY_BUF, 0);
	n = recvfrom(from, pp->buf + DGRAM_HDR, TSI_RELAY_BUF - DGRAM_HDR, 0,
		     (struct sockaddr *)&ss, &len);
	if (n < 0)
		return n;
	tsi_req_dgram_header(&ss, &h);
	memcpy(pp->buf, &h, sizeof(h));
	return n + (ssize_t)DGRAM_HDR;
}

static bool dgram_read(const struct tsi_conn *c, struct tsi_pipe *pp, int from, int to,
		       bool from_guest)
{
	ssize_t n;

	if (pp->eof || pp->len)
		return false;
	n = dgram_recv(c, pp, from, from_guest);
	if (n > 0) {
		pp->off = 0;
		pp->len = (size_t)n;
		return true;
	}
	if (n == 0 && from_guest)
		pp->eof = true;
	else if (n < 0 && from_guest && errno != EAGAIN && errno != EINTR)
		pipe_kill(pp, from, to);
	return n == 0 || (n < 0 && errno != EAGAIN);
}

/* The guest's message to its destination; a malformed one is dropped (-1 with EINVAL). */
static ssize_t dgram_send(const struct tsi_conn *c, const struct tsi_pipe *pp, int to, bool to_host)
{
	struct sockaddr_storage ss;
	struct krun_tsi_dgram h;
	socklen_t len;

	if (!c->addressed || !to_host)
		return send(to, pp->buf, pp->len, MSG_NOSIGNAL);
	if (pp->len < DGRAM_HDR) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&h, pp->buf, sizeof(h));
	len = tsi_req_dgram_peer(c->hfamily, &h, &ss);
	if (!len) {
		errno = EINVAL;
		return -1;
	}
	return sendto(to, pp->buf + DGRAM_HDR, pp->len - DGRAM_HDR, MSG_NOSIGNAL,
		      (struct sockaddr *)&ss, len);
}

static bool dgram_write(const struct tsi_conn *c, struct tsi_pipe *pp, int to, bool to_host)
{
	ssize_t n;

	if (!pp->len)
		return false;
	n = dgram_send(c, pp, to, to_host);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	pp->len = 0;    /* sent, or refused for good: the next one */
	return true;
}

static void dgram_pump(const struct tsi_conn *c, struct tsi_pipe *pp, int from, int to,
		       bool from_guest)
{
	unsigned int budget = 64;   /* a busy socket must not starve the loop */
	bool progress = true;

	while (progress && !pp->shut && budget--) {
		progress = dgram_read(c, pp, from, to, from_guest);
		progress |= dgram_write(c, pp, to, from_guest);
	}
	if (pp->eof && !pp->len && !pp->shut)
		pp->shut = true;
}

static bool pipe_read(struct tsi_pipe *pp, int from, int to)
{
	ssize_t n;

	if (pp->len && pp->off + pp->len == TSI_RELAY_BUF) {
		memmove(pp->buf, pp->buf + pp->off, pp->len);
		pp->off = 0;
	}
	if (pp->eof || pp->off + pp->len == TSI_RELAY_BUF)
		return false;
	n = recv(from, pp->buf + pp->off + pp->len, TSI_RELAY_BUF - pp->off - pp->len, 0);
	if (n > 0)
		pp->len += (size_t)n;
	else if (n == 0 || errno == ECONNRESET)
		pp->eof = true;     /* a reset ends this direction like EOF: the data got through */
	else if (errno != EAGAIN && errno != EINTR)
		pipe_kill(pp, from, to);
	return n >= 0 || pp->eof;
}

static bool pipe_write(struct tsi_pipe *pp, int from, int to)
{
	ssize_t n;

	if (!pp->len)
		return false;
	n = send(to, pp->buf + pp->off, pp->len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			pipe_kill(pp, from, to);
		return false;
	}
	pp->off += (size_t)n;
	pp->len -= (size_t)n;
	if (!pp->len)
		pp->off = 0;
	return n > 0;
}

/* Move what can move now; the half-close follows the last byte. */
static void pump(struct tsi_pipe *pp, int from, int to)
{
	bool progress = true;

	while (progress && !pp->shut) {
		progress = pipe_read(pp, from, to);
		progress |= pipe_write(pp, from, to);
	}
	if (pp->eof && !pp->len && !pp->shut) {
		shutdown(to, SHUT_WR);
		pp->shut = true;
	}
}

static uint32_t want_in(const struct tsi_pipe *pp)
{
	return !pp->eof && pp->len < TSI_RELAY_BUF ? EPOLLIN : 0;
}

static uint32_t want_out(const struct tsi_pipe *pp)
{
	return pp->len ? EPOLLOUT : 0;
}

static void run(struct tsi_conn *c)
{
	if (c->dgram) {
		dgram_pump(c, &c->up, c->gfd, c->hfd, true);
		dgram_pump(c, &c->down, c->hfd, c->gfd, false);
		if (c->up.shut)     /* the guest closed its socket: UDP has no close to wait for */
			c->down.shut = true;
	} else {
		pump(&c->up, c->gfd, c->hfd);
		pump(&c->down, c->hfd, c->gfd);
	}
	if (c->up.shut && c->down.shut) {
		tsi_conn_close(c);
		return;
	}
	tsi_conn_watch(c, want_in(&c->up) | want_out(&c->down), want_in(&c->down) | want_out(&c->up));
}

int tsi_relay_start(struct tsi_conn *c, const void *prefix, size_t len)
{
	c->up.buf = malloc(TSI_RELAY_BUF);
	c->down.buf = malloc(TSI_RELAY_BUF);
	if (!c->up.buf || !c->down.buf || len > TSI_RELAY_BUF)
		return -ENOMEM;
	if (len)
		memcpy(c->down.buf, prefix, len);
	c->down.len = len;
	c->state = TSI_RELAY;
	run(c);
	return 0;
}

void tsi_relay_on_guest(void *opaque, uint32_t events)
{
	struct tsi_conn *c = opaque;

	(void)events;
	if (c->state != TSI_RELAY)
		tsi_proxy_on_handshake(c, false);
	else
		run(c);
}

void tsi_relay_on_host(void *opaque, uint32_t events)
{
	struct tsi_conn *c = opaque;

	(void)events;
	if (c->state != TSI_RELAY)
		tsi_proxy_on_handshake(c, true);
	else
		run(c);
}

/* The guest's bytes for the host that this connection still holds: its buffer and the pair. */
static size_t up_left(const struct tsi_conn *c)
{
	int unread = 0;

	if (c->state != TSI_RELAY || c->up.shut)
		return 0;
	if (!c->up.eof && ioctl(c->gfd, FIONREAD, &unread) < 0)
		unread = 0;
	return c->up.len + (size_t)(unread > 0 ? unread : 0);
}

/* Still passing the guest's bytes on: not at EOF, or EOF with bytes the host has not taken. */
static bool lingering(const struct tsi_conn *c)
{
	return c->state == TSI_RELAY && !c->up.shut;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Where this connection waits in the linger's poll: room on the host socket, or guest bytes. */
static void linger_event(const struct tsi_conn *c, struct pollfd *pfd)
{
	if (c->up.len)
		*pfd = (struct pollfd){ .fd = c->hfd, .events = POLLOUT };
	else
		*pfd = (struct pollfd){ .fd = c->gfd, .events = POLLIN };
}

/*
 * Closing a TCP socket with unread input resets the connection, and a reset discards what the
 * host kernel has not yet delivered of ours: read the input away first (nobody will read it),
 * so that close() ends the stream in order after our last byte.
 */
static void discard_host_input(struct tsi_conn *c)
{
	unsigned int budget = 64;

	if (c->state != TSI_RELAY || c->dgram || c->hfd < 0 || !c->down.buf)
		return;
	while (budget-- && recv(c->hfd, c->down.buf, TSI_RELAY_BUF, MSG_DONTWAIT) > 0)
		;
}

static void linger_pump(struct tsi_conn *c)
{
	if (c->dgram)
		dgram_pump(c, &c->up, c->gfd, c->hfd, true);
	else
		pump(&c->up, c->gfd, c->hfd);
}

/*
 * The guest side is gone (device reset or end): the guest's last bytes may still wait in the
 * pair and in our buffer for a host socket that was slow to take them. Pass them on, all
 * connections at once, until done or ms pass; the host kernel delivers what it has taken
 * after we close. What is left then is dropped, and said so at debug level.
 */
void tsi_relay_linger(struct tsi_proxy *p, unsigned int ms)
{
	long end = mono_ms() + ms;
	struct pollfd *pfd = calloc(p->nr_conns ? p->nr_conns : 1, sizeof(*pfd));
	unsigned int n;

	for (;;) {
		n = 0;
		for (struct tsi_conn *c = p->conns; c; c = c->next) {
			if (lingering(c))
				linger_pump(c);
			if (lingering(c) && pfd)
				linger_event(c, &pfd[n++]);
		}
		if (!n || !pfd || mono_ms() >= end)
			break;
		if (poll(pfd, n, (int)(end - mono_ms())) < 0 && errno != EINTR)
			break;
	}
	free(pfd);
	for (struct tsi_conn *c = p->conns; c; c = c->next) {
		discard_host_input(c);
		if (up_left(c))
			log_debug("tsi: dropping %zu bytes the guest sent: the host peer did not take "
				  "them within %u ms", up_left(c), ms);
	}
}
