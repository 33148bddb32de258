/*
 * TSI proxy, inbound (krun_set_port_map "HOST:GUEST"): a host listener per entry; each
 * accepted connection becomes a vsock connection to the guest init's KRUN_TSI_INBOUND_PORT,
 * which starts with struct krun_tsi_inbound and then carries the stream both ways.
 */
#define LOG_MODULE "tsi"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/tsi/tsi_priv.h"
#include "devices/vsock/vsock.h"
#include "util/evloop.h"
#include "util/log.h"

/* "HOST:GUEST", both 1..65535. */
static int parse_entry(const char *s, uint16_t *host, uint16_t *guest)
{
	unsigned int h, g;
	int n = 0;

	if (sscanf(s, "%5u:%5u%n", &h, &g, &n) != 2 || s[n] || !h || !g || h > 65535 || g > 65535)
		return -EINVAL;
	*host = (uint16_t)h;
	*guest = (uint16_t)g;
	return 0;
}

static int listen_on(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int one = 1, fd;

	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 64)) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void header_for(const struct tsi_listener *l, int hfd, struct krun_tsi_inbound *in)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);

	memset(in, 0, sizeof(*in));
	in->magic = KRUN_TSI_MAGIC;
	in->version = KRUN_TSI_VERSION;
	in->guest_port = l->guest_port;
	if (getpeername(hfd, (struct sockaddr *)&ss, &len))
		return;
	in->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		in->peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		memcpy(in->peer_addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		in->peer_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		memcpy(in->peer_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
}

/* One accepted host connection: our pair end relays it, the device gets the other end. */
static void bring_in(struct tsi_listener *l, int hfd)
{
	struct tsi_proxy *p = l->p;
	struct krun_tsi_inbound in;
	struct tsi_conn *c;
	int sv[2];

	if (!p->dev || p->nr_conns >= p->max_conns ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
		close(hfd);
		return;
	}
	if (virtio_vsock_connect_guest(p->dev, KRUN_TSI_INBOUND_PORT, sv[1])) {
		close(sv[0]);   /* the device closed sv[1] */
		close(hfd);
		return;
	}
	c = tsi_conn_alloc(p, sv[0]);
	if (!c) {
		close(sv[0]);
		close(hfd);
		return;
	}
	c->hfd = hfd;
	header_for(l, hfd, &in);
	if (tsi_relay_start(c, &in, sizeof(in)))
		tsi_conn_close(c);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct tsi_listener *l = opaque;

	(void)events;
	/* Bounded per wakeup: the loop serves the device between batches. */
	for (int i = 0; i < 16; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		bring_in(l, fd);
	}
}

int tsi_inbound_open(struct tsi_proxy *p, const struct tsi_config *cfg)
{
	const char *addr = cfg->inbound_addr ? cfg->inbound_addr : "127.0.0.1";

	if (!cfg->nr_port_map)
		return 0;
	p->listeners = calloc(cfg->nr_port_map, sizeof(*p->listeners));
	if (!p->listeners)
		return -ENOMEM;
	for (unsigned int i = 0; i < cfg->nr_port_map; i++) {
		struct tsi_listener *l = &p->listeners[i];
		uint16_t host;
		int ret = parse_entry(cfg->port_map[i], &host, &l->guest_port);

		l->p = p;
		l->fd = ret ? ret : listen_on(addr, host);
		p->nr_listeners++;
		if (l->fd < 0) {
			log_error("tsi: port map %s: %s", cfg->port_map[i], strerror(-l->fd));
			return l->fd;
		}
	}
	return 0;
}

void tsi_inbound_watch(struct tsi_proxy *p)
{
	for (unsigned int i = 0; i < p->nr_listeners; i++) {
		struct tsi_listener *l = &p->listeners[i];

		if (l->fd < 0 || l->watched)
			continue;
		if (evloop_add(p->loop, l->fd, EPOLLIN, on_accept, l))
			log_error("tsi: cannot watch a port-map listener");
		else
			l->watched = true;
	}
}

void tsi_inbound_close(struct tsi_proxy *p)
{
	for (unsigned int i = 0; i < p->nr_listeners; i++) {
		if (p->listeners[i].fd < 0)
			continue;
		if (p->listeners[i].watched)
			evloop_del(p->loop, p->listeners[i].fd);
		close(p->listeners[i].fd);
	}
	free(p->listeners);
	p->listeners = NULL;
	p->nr_listeners = 0;
}
