/*
 * TSI proxy: a vsock device backend. Each guest connection to (CID 2, KRUN_TSI_PORT) gets one
 * end of a socketpair (the device pumps it); on our end we read the init's request, connect
 * the real host socket, answer, then relay bytes (tsi_relay.c). All on the device's loop.
 */
#define LOG_MODULE "tsi"
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "devices/tsi/tsi_priv.h"
#include "devices/vsock/vsock.h"
#include "util/evloop.h"
#include "util/log.h"

static void close_watched(struct tsi_conn *c, int *fd, uint32_t *watch)
{
	if (*fd < 0)
		return;
	if (*watch)
		evloop_del(c->p->loop, *fd);
	*watch = 0;
	close(*fd);
	*fd = -1;
}

void tsi_conn_close(struct tsi_conn *c)
{
	struct tsi_proxy *p = c->p;

	for (struct tsi_conn **pp = &p->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	close_watched(c, &c->gfd, &c->gwatch);
	close_watched(c, &c->hfd, &c->hwatch);
	if (c->tfd >= 0) {
		evloop_del(p->loop, c->tfd);    /* no-op when never added */
		close(c->tfd);
	}
	free(c->up.buf);
	free(c->down.buf);
	free(c);
	p->nr_conns--;
}

static int watch_one(struct tsi_conn *c, int fd, uint32_t *cur, uint32_t want, evloop_fn fn)
{
	int ret = 0;

	if (fd < 0 || want == *cur)
		return 0;
	if (!want)
		evloop_del(c->p->loop, fd);
	else if (!*cur)
		ret = evloop_add(c->p->loop, fd, want, fn, c);
	else
		ret = evloop_modify(c->p->loop, fd, want);
	if (!ret)
		*cur = want;
	return ret;
}

int tsi_conn_watch(struct tsi_conn *c, uint32_t gev, uint32_t hev)
{
	int ret = watch_one(c, c->gfd, &c->gwatch, gev, tsi_relay_on_guest);

	if (!ret)
		ret = watch_one(c, c->hfd, &c->hwatch, hev, tsi_relay_on_host);
	if (ret) {
		log_warn("cannot watch a socket: %d", ret);
		tsi_conn_close(c);
	}
	return ret;
}

static int arm_timer(struct tsi_conn *c, unsigned int ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (long)(ms % 1000) * 1000000L } };

	return timerfd_settime(c->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* The one response; the pair is fresh and empty, so 28 bytes always fit at once. */
static int respond(struct tsi_conn *c, int error)
{
	struct krun_tsi_response resp;

	tsi_req_response(c->hfd, error, &resp);
	return send(c->gfd, &resp, sizeof(resp), MSG_NOSIGNAL) == (ssize_t)sizeof(resp) ? 0 : -EIO;
}

/* Answer with an error and end the connection. */
static void fail(struct tsi_conn *c, int error)
{
	log_debug("tsi: connection refused: %s", strerror(error));
	if (respond(c, error))
		log_debug("tsi: cannot send the error response");
	tsi_conn_close(c);
}

/* Connected (or failed): answer, then relay. */
static void connected(struct tsi_conn *c, int error)
{
	struct itimerspec off = { { 0, 0 }, { 0, 0 } };

	if (error) {
		fail(c, error);
		return;
	}
	timerfd_settime(c->tfd, 0, &off, NULL);
	if (respond(c, 0) || tsi_relay_start(c, NULL, 0)) {
		tsi_conn_close(c);
		return;
	}
}

static void start_connect(struct tsi_conn *c)
{
	struct krun_tsi_request req;
	char path[KRUN_TSI_PATH_MAX + 1] = "";
	int ret;

	memcpy(&req, c->req, sizeof(req));
	/* Datagrams need the message boundaries only a seqpacket connection keeps, and only them. */
	if ((req.type == SOCK_DGRAM) != c->dgram || (c->dgram && req.op == KRUN_TSI_OP_DNS)) {
		fail(c, EPROTOTYPE);
		return;
	}
	c->addressed = req.op == KRUN_TSI_OP_DGRAM;
	c->hfamily = req.family;
	if (req.family == AF_UNIX) {
		memcpy(path, c->req + sizeof(req), req.path_len);
		path[req.path_len] = '\0';
	}
	ret = tsi_req_connect(c->p, &req, path, &c->hfd);
	if (ret < 0) {
		fail(c, -ret);
		return;
	}
	if (ret == 0) {
		connected(c, 0);
		return;
	}
	c->state = TSI_CONNECTING;
	if (arm_timer(c, tsi_req_timeout(c->p, req.timeout_ms)) == 0)
		tsi_conn_watch(c, 0, EPOLLOUT);
	else
		fail(c, EIO);
}

/* Request bytes, never more than the request itself: what follows is payload. */
static void read_request(struct tsi_conn *c)
{
	for (;;) {
		size_t need;
		int ret = tsi_req_check(c->req, c->req_len, &need);
		ssize_t n;

		if (ret < 0) {
			fail(c, -ret);
			return;
		}
		if (ret == 0) {
			tsi_conn_watch(c, 0, 0);   /* cannot fail: only removes */
			start_connect(c);
			return;
		}
		n = recv(c->gfd, c->req + c->req_len, need - c->req_len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			tsi_conn_close(c);  /* the guest gave up */
			return;
		}
		if (n < 0)
			return;
		c->req_len += (size_t)n;
	}
}

void tsi_proxy_on_handshake(struct tsi_conn *c, bool host)
{
	if (c->state == TSI_READ_REQ && !host)
		read_request(c);
	else if (c->state == TSI_CONNECTING && host)
		connected(c, tsi_req_finish(c->hfd));
}

static void on_timer(void *opaque, uint32_t events)
{
	struct tsi_conn *c = opaque;
	uint64_t ticks;

	(void)events;
	if (read(c->tfd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	if (c->state == TSI_CONNECTING)
		fail(c, ETIMEDOUT);
	else if (c->state == TSI_READ_REQ)
		tsi_conn_close(c);
}

struct tsi_conn *tsi_conn_alloc(struct tsi_proxy *p, int gfd)
{
	struct tsi_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->p = p;
	c->gfd = gfd;
	c->hfd = -1;
	c->tfd = -1;
	c->next = p->conns;
	p->conns = c;
	p->nr_conns++;
	return c;
}

static struct tsi_conn *conn_new(struct tsi_proxy *p, int gfd)
{
	struct tsi_conn *c = tsi_conn_alloc(p, gfd);

	if (!c)
		return NULL;
	c->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (c->tfd < 0 || evloop_add(p->loop, c->tfd, EPOLLIN, on_timer, c) ||
	    arm_timer(c, TSI_REQUEST_TIMEOUT_MS) || tsi_conn_watch(c, EPOLLIN, 0)) {
		c->gfd = -1;    /* the caller still owns it */
		tsi_conn_close(c);
		return NULL;
	}
	return c;
}

static int proxy_connect(void *opaque, uint32_t port, uint32_t peer_port, uint16_t type, int *fd)
{
	bool dgram = type == VIRTIO_VSOCK_TYPE_SEQPACKET;
	struct tsi_proxy *p = opaque;
	struct tsi_conn *c;
	int sv[2];

	(void)peer_port;
	if (port != KRUN_TSI_PORT || !p->loop)
		return -ECONNREFUSED;
	if (p->nr_conns >= p->max_conns) {
		log_warn_guest("tsi: connection limit (%u) reached", p->max_conns);
		return -ECONNREFUSED;
	}
	/* Seqpacket pair for a seqpacket connection: the device maps messages 1:1 (5.10.6.6). */
	if (socketpair(AF_UNIX, (dgram ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       0, sv) < 0)
		return -errno;
	c = conn_new(p, sv[0]);
	if (!c) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	c->dgram = dgram;
	*fd = sv[1];
	return 0;
}

/*
 * The device calls this after closing its ends of the pairs, at a reset (the guest's driver,
 * or the VMM stopping the device) and at its end: the guest's last bytes go out first.
 */
static void proxy_reset(void *opaque)
{
	struct tsi_proxy *p = opaque;

	tsi_relay_linger(p, TSI_LINGER_MS);
	for (struct tsi_conn *c = p->conns, *next; c; c = next) {
		next = c->next;
		tsi_conn_close(c);
	}
}

static void proxy_destroy(void *opaque)
{
	struct tsi_proxy *p = opaque;

	proxy_reset(p);
	tsi_inbound_close(p);
	for (unsigned int i = 0; p->shares && i < p->nr_shares; i++) {
		if (p->shares[i].dirfd >= 0)
			close(p->shares[i].dirfd);
		free(p->shares[i].tag);
	}
	free(p->shares);
	free(p);
}

static const struct vsock_backend_ops proxy_ops = {
	.connect = proxy_connect,
	.activate = tsi_proxy_activate,
	.reset = proxy_reset,
	.destroy = proxy_destroy,
};

void tsi_proxy_activate(void *opaque, struct evloop *loop)
{
	struct tsi_proxy *p = opaque;

	if (p->loop && p->loop != loop) {
		log_warn("tsi: the proxy is bound to another loop");
		return;
	}
	p->loop = loop;
	tsi_inbound_watch(p);
}

void tsi_proxy_set_device(void *opaque, struct virtio_dev *dev)
{
	((struct tsi_proxy *)opaque)->dev = dev;
}

unsigned int tsi_proxy_nr_conns(void *opaque)
{
	return ((struct tsi_proxy *)opaque)->nr_conns;
}

static int open_shares(struct tsi_proxy *p, const struct tsi_config *cfg)
{
	p->shares = calloc(cfg->nr_shares ? cfg->nr_shares : 1, sizeof(*p->shares));
	if (!p->shares)
		return -ENOMEM;
	for (unsigned int i = 0; i < cfg->nr_shares; i++) {
		struct tsi_share_fd *s = &p->shares[p->nr_shares];

		s->tag = strdup(cfg->shares[i].tag);
		s->dirfd = open(cfg->shares[i].host_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		p->nr_shares++;
		if (!s->tag || s->dirfd < 0)
			return s->tag ? -errno : -ENOMEM;
	}
	return 0;
}

int tsi_proxy_create(const struct tsi_config *cfg, const struct vsock_backend_ops **ops,
		     void **opaque)
{
	struct tsi_proxy *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	p->loop = cfg->loop;
	p->timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : TSI_DEFAULT_TIMEOUT_MS;
	if (p->timeout_ms > TSI_MAX_TIMEOUT_MS)
		p->timeout_ms = TSI_MAX_TIMEOUT_MS;
	p->max_conns = cfg->max_conns ? cfg->max_conns : TSI_DEFAULT_MAX_CONNS;
	ret = open_shares(p, cfg);
	if (!ret)
		tsi_dns_config(p, cfg->dns_server);
	if (!ret)
		ret = tsi_inbound_open(p, cfg);
	if (!ret && p->loop)
		tsi_inbound_watch(p);
	if (ret) {
		proxy_destroy(p);
		return ret;
	}
	*ops = &proxy_ops;
	*opaque = p;
	return 0;
}
