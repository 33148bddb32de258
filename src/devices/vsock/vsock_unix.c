/* virtio-vsock host-side UNIX port map (krun_add_vsock_port2): connect on REQUEST, or listen. */
#define LOG_MODULE "vsock"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/vsock/vsock_priv.h"
#include "util/unixsock.h"
#include "util/log.h"

#define LISTEN_BACKLOG 32
#define ACCEPTS_PER_EVENT 16

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (!len || len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

static int listen_on(struct vsock_port *p)
{
	struct sockaddr_un sa;
	int fd, ret = unix_addr(p->path, &sa);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file left by an earlier run (nobody listens on it) is replaced. */
	if (unixsock_is_stale(p->path))
		unlink(p->path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
		ret = -errno;
		close(fd);
		log_error("vsock port %u: cannot listen on %s: %s", p->port, p->path, strerror(-ret));
		return ret;
	}
	p->listen_fd = fd;
	return 0;
}

int vsock_unix_open(struct vsock *v, const struct vsock_port_map *ports, unsigned int n)
{
	unsigned int i;

	v->ports = calloc(n ? n : 1, sizeof(*v->ports));
	if (!v->ports)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct vsock_port *p = &v->ports[v->nr_ports];

		*p = (struct vsock_port){ .port = ports[i].port, .listen = ports[i].listen,
					  .listen_fd = -1, .v = v, .path = strdup(ports[i].path) };
		if (!p->path)
			return -ENOMEM;
		v->nr_ports++;
		if (p->listen) {
			int ret = listen_on(p);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* Each accepted host connection becomes a host-initiated connection to the guest's port. */
static void on_accept(void *opaque, uint32_t events)
{
	struct vsock_port *p = opaque;

	(void)events;
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (virtio_vsock_connect_guest(&p->v->dev, p->port, fd))
			log_warn_guest("vsock port %u: host connection refused (connection limit)", p->port);
	}
}

void vsock_unix_start(struct vsock *v)
{
	for (unsigned int i = 0; i < v->nr_ports; i++) {
		struct vsock_port *p = &v->ports[i];

		if (p->listen_fd < 0 || p->watched)
			continue;
		p->watched = evloop_add(v->dev.loop, p->listen_fd, EPOLLIN, on_accept, p) == 0;
		if (!p->watched)
			log_warn("vsock port %u: cannot watch %s", p->port, p->path);
	}
}

void vsock_unix_stop(struct vsock *v)
{
	for (unsigned int i = 0; i < v->nr_ports; i++) {
		if (v->ports[i].watched)
			evloop_del(v->dev.loop, v->ports[i].listen_fd);
		v->ports[i].watched = false;
	}
}

/* The sockets we bound are ours to remove. */
void vsock_unix_close(struct vsock *v)
{
	for (unsigned int i = 0; i < v->nr_ports; i++) {
		struct vsock_port *p = &v->ports[i];

		if (p->watched && v->dev.loop)
			evloop_del(v->dev.loop, p->listen_fd);
		if (p->listen_fd >= 0) {
			close(p->listen_fd);
			unlink(p->path);
		}
		free(p->path);
	}
	free(v->ports);
	v->ports = NULL;
	v->nr_ports = 0;
}

/*
 * A UNIX connect completes or fails at once (a full backlog is EAGAIN, which we treat as a
 * refusal rather than retrying: the guest sees RST, as for a closed port).
 */
int vsock_unix_connect_port(struct vsock *v, uint32_t port, uint16_t type, int *fd)
{
	int stype = type == VIRTIO_VSOCK_TYPE_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM;
	struct sockaddr_un sa;
	int s, ret;

	for (unsigned int i = 0; i < v->nr_ports; i++) {
		struct vsock_port *p = &v->ports[i];

		if (p->port != port || p->listen)
			continue;
		ret = unix_addr(p->path, &sa);
		if (ret)
			return ret;
		s = socket(AF_UNIX, stype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -errno;
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			ret = -errno;
			close(s);
			return ret == -ENOENT ? -ECONNREFUSED : ret;
		}
		*fd = s;
		return 0;
	}
	return -ENOENT;
}
