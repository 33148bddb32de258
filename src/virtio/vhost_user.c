/*
 * vhost-user backend, connection layer: reads each frontend request with its fds, bounds its
 * size, dispatches it (vhost_user_req.c) and answers as QEMU docs/interop/vhost-user.rst says.
 */
#define LOG_MODULE "vhost-user"
#include "virtio/vhost_user.h"

#include <errno.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/unixsock.h"
#include "virtio/vhost_user_int.h"

/* A frontend that stalls mid-message must not hold the loop thread forever. */
#define MSG_TIMEOUT_SEC 5

static void close_fds(struct vu_msg *m)
{
	for (unsigned int i = 0; i < m->nr_fds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nr_fds = 0;
}

static int collect_fds(struct msghdr *mh, struct vu_msg *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t k = 0; k < n; k++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
			if (m->nr_fds < VHOST_USER_MAX_FDS)
				m->fds[m->nr_fds++] = fd;
			else
				close(fd);
		}
	}
	return (mh->msg_flags & MSG_CTRUNC) ? -EMSGSIZE : 0;
}

/* Read exactly len bytes (after a first part arrived): a stalled peer times out. */
static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + done, len - done, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += n;
	}
	return 0;
}

/* One request: header with its fds in one recvmsg, then the payload. */
static int read_msg(int sock, struct vu_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
	struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;
	int ret;

	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	ret = collect_fds(&mh, m);
	if (!ret && (size_t)n < sizeof(m->hdr))
		ret = read_full(sock, (uint8_t *)&m->hdr + n, sizeof(m->hdr) - n);
	if (!ret && (m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION)
		ret = -EPROTO;
	if (!ret && m->hdr.size > MSG_MAX_PAYLOAD)
		ret = -EMSGSIZE;
	if (!ret)
		ret = read_full(sock, &m->p, m->hdr.size);
	return ret;
}

static int send_reply(struct vhost_user *vu, uint32_t request, const void *payload, uint32_t size)
{
	struct vhost_user_hdr hdr = {
		.request = request, .flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, .size = size,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	do {
		n = sendmsg(vu->sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(hdr) + size ? 0 : -EIO;
}

static int dispatch(struct vhost_user *vu, struct vu_msg *m)
{
	uint32_t req = m->hdr.request;
	const struct vhost_user_handler *h = vhost_user_handler(req);
	struct vu_reply r = { .size = 0 };
	bool need_reply = m->hdr.flags & VHOST_USER_FLAG_NEED_REPLY;
	int ret;

	if (!h) {
		/* Requests we never offered: the spec has the frontend not send them. */
		log_warn_guest("unsupported request %u", req);
		ret = -EOPNOTSUPP;
	} else if (m->hdr.size < h->min_size || m->hdr.size > h->max_size) {
		log_warn_guest("%s: bad payload size %u", vhost_user_request_name(req), m->hdr.size);
		ret = -EINVAL;
	} else {
		ret = h->fn(vu, m, &r);
		if (ret)
			log_warn_guest("%s failed: %d", vhost_user_request_name(req), ret);
	}
	close_fds(m);
	if (h && h->has_reply) {
		/* An empty payload tells the frontend the request failed (spec GET_CONFIG). */
		return send_reply(vu, req, &r.p, ret ? 0 : r.size);
	}
	if (need_reply) {
		/* Spec REPLY_ACK: zero for success, non-zero for failure. */
		uint64_t status = ret ? 1 : 0;
		return send_reply(vu, req, &status, sizeof(status));
	}
	return 0;
}

static void hang_up(struct vhost_user *vu)
{
	if (vu->closed)
		return;
	__atomic_store_n(&vu->closed, true, __ATOMIC_RELEASE);
	evloop_del(vu->loop, vu->sock);
	/* The frontend must see the end now; the fd itself is closed by vhost_user_destroy. */
	shutdown(vu->sock, SHUT_RDWR);
	vhost_user_reset_rings(vu);
	vhost_user_unmap_all(vu);
}

static void on_socket(void *opaque, uint32_t events)
{
	struct vhost_user *vu = opaque;
	struct vu_msg m = { .nr_fds = 0 };
	int ret;

	(void)events;
	ret = read_msg(vu->sock, &m);
	if (ret) {
		close_fds(&m);
		if (ret != -ECONNRESET)
			log_warn("%s: dropping the frontend: %s", vu->dev->ops->name, strerror(-ret));
		hang_up(vu);
		return;
	}
	log_trace("%s: %s size %u fds %u payload %#llx", vu->dev->ops->name,
		  vhost_user_request_name(m.hdr.request), m.hdr.size, m.nr_fds,
		  m.hdr.size >= 8 ? (unsigned long long)m.p.u64 : 0ull);
	ret = dispatch(vu, &m);
	if (ret) {
		log_warn("%s: cannot reply to the frontend: %s", vu->dev->ops->name, strerror(-ret));
		hang_up(vu);
	}
}

static void signal_queue(struct virtio_dev *dev, unsigned int q)
{
	struct vhost_user *vu = dev->transport.opaque;
	uint64_t one = 1;

	if (q >= vu->nr_rings)
		return;
	log_trace("%s: ring %u call", dev->ops->name, q);
	pthread_mutex_lock(&vu->call_lock);
	if (vu->rings[q].call_fd >= 0 && write(vu->rings[q].call_fd, &one, sizeof(one)) < 0)
		log_warn_guest("%s: call fd write failed: %d", dev->ops->name, -errno);
	pthread_mutex_unlock(&vu->call_lock);
}

static void signal_config(struct virtio_dev *dev)
{
	/* Needs the back-end channel (SLAVE_REQ), which we do not offer: configs are static. */
	log_debug("%s: config change not forwarded", dev->ops->name);
}

/* No status register over vhost-user: tell the frontend through each ring's error fd. */
static void needs_reset(struct virtio_dev *dev)
{
	struct vhost_user *vu = dev->transport.opaque;
	uint64_t one = 1;

	pthread_mutex_lock(&vu->call_lock);
	for (unsigned int i = 0; i < vu->nr_rings; i++)
		if (vu->rings[i].err_fd >= 0 && write(vu->rings[i].err_fd, &one, sizeof(one)) < 0)
			log_debug("%s: err fd write failed", dev->ops->name);
	pthread_mutex_unlock(&vu->call_lock);
}

int vhost_user_create(struct virtio_dev *dev, struct evloop *loop, int sock, struct vhost_user **out)
{
	struct timeval tv = { .tv_sec = MSG_TIMEOUT_SEC };
	struct vhost_user *vu;
	int ret;

	if (!dev || !loop || sock < 0 || dev->ops->num_queues == 0 ||
	    dev->ops->num_queues > VIRTIO_DEV_MAX_QUEUES)
		return -EINVAL;
	vu = calloc(1, sizeof(*vu));
	if (!vu)
		return -ENOMEM;
	*vu = (struct vhost_user){
		.dev = dev, .loop = loop, .sock = sock, .nr_rings = dev->ops->num_queues,
		/* The transport adds what our virtq implements (see virtio/virtq.h). */
		.offered = dev->ops->features | (1ull << VIRTIO_F_VERSION_1) |
			   (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VIRTIO_RING_F_EVENT_IDX) |
			   (1ull << VHOST_USER_F_PROTOCOL_FEATURES),
	};
	pthread_mutex_init(&vu->call_lock, NULL);
	gmem_init(&vu->mem);
	vhost_user_rings_init(vu);
	dev->transport = (struct virtio_dev_transport){
		.signal_queue = signal_queue, .signal_config = signal_config,
		.needs_reset = needs_reset, .notify_fd = vhost_user_notify_fd, .opaque = vu,
	};
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = evloop_add(loop, sock, EPOLLIN, on_socket, vu);
	if (ret) {
		pthread_mutex_destroy(&vu->call_lock);
		free(vu);
		return ret;
	}
	*out = vu;
	return 0;
}

void vhost_user_destroy(struct vhost_user *vu)
{
	if (!vu)
		return;
	hang_up(vu);
	close(vu->sock);
	virtio_dev_destroy(vu->dev);
	pthread_mutex_destroy(&vu->call_lock);
	free(vu);
}

bool vhost_user_closed(const struct vhost_user *vu)
{
	return __atomic_load_n(&vu->closed, __ATOMIC_ACQUIRE);
}

int vhost_user_listen(const char *path)
{
	struct sockaddr_un sa;
	int ret = unixsock_addr(path, &sa), fd;

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 4) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int vhost_user_accept(int listen_fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
	int ret, fd;

	do {
		ret = poll(&pfd, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return -ETIMEDOUT;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
