/* libFuzzer target: a hostile vhost-user frontend's messages against a trivial device's backend. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* The socket and kick handlers are static: pull them in to call them without a loop thread. */
#include "virtio/vhost_user.c"
#include "virtio/vhost_user_ring.c"

#include "fuzz_util.h"
#include "util/iov.h"

/*
 * Input: one mode byte, a little-endian u16 count of guest memory bytes that follow (the
 * start of a 64 KiB memfd the frontend shares), then vhost-user messages back to back, each
 * a header and as many payload bytes as its size field says (cut short at the end).
 * Mode bit 0 attaches fds like QEMU does: the memfd to SET_MEM_TABLE (one per region it
 * claims) and an eventfd to SET_VRING_KICK/CALL/ERR unless the no-fd bit is set. Without
 * it no fds are sent. A header whose request is 0xff00 | i is not sent: it kicks ring i.
 * Everything is queued on a socketpair whose frontend end is then shut for writing, and
 * the backend's socket handler runs until it drops the connection.
 */
#define MEM_SIZE (64u << 10)
#define PSEUDO_KICK 0xff00u
#define RING_COUNT 2

struct echo {
	struct virtio_dev dev;
	uint8_t config[16];
};

static struct virtq_elem elem;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void echo_notify(struct virtio_dev *dev, unsigned int q)
{
	struct virtq *vq = &dev->vqs[q];
	uint8_t buf[256];
	bool pushed = false;

	for (int i = 0; i < 512 && virtq_pop(vq, &elem) == 1; i++) {
		size_t n = iov_to_buf(elem.iov, elem.out_num, 0, buf, sizeof(buf));

		n = iov_from_buf(elem.iov + elem.out_num, elem.in_num, 0, buf, n);
		virtq_push(vq, elem.head, (uint32_t)n);
		pushed = true;
	}
	if (pushed)
		virtio_dev_notify_used(dev, q);
}

static void echo_config_write(struct virtio_dev *dev, uint32_t offset, const void *data,
			      uint32_t len)
{
	/* The transport promised the range lies inside the config space. */
	if (offset > dev->config_size || len > dev->config_size - offset)
		abort();
	memcpy(dev->config + offset, data, len);
}

static void echo_destroy(struct virtio_dev *dev)
{
	(void)dev;  /* static here */
}

static const struct virtio_dev_ops echo_ops = {
	.name = "echo", .device_id = 0x7fff, .features = 1ull << 3,
	.num_queues = RING_COUNT, .queue_max_size = 256,
	.queue_notify = echo_notify, .config_write = echo_config_write, .destroy = echo_destroy,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	return 0;
}

static int send_msg(int fd, const uint8_t *msg, size_t len, const int *fds, unsigned int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
}

/* The fds QEMU would attach to this message (structured mode). */
static unsigned int attach(const struct vhost_user_hdr *h, const uint8_t *payload, size_t plen,
			   int memfd, int *fds)
{
	unsigned int n = 0;
	uint64_t v = 0;

	switch (h->request) {
	case VHOST_USER_SET_MEM_TABLE:
		if (plen >= 4) {
			uint32_t nr;
			memcpy(&nr, payload, 4);
			for (n = 0; n < nr && n < VHOST_USER_MAX_FDS; n++)
				fds[n] = dup(memfd);
		}
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		memcpy(&v, payload, plen < 8 ? plen : 8);
		if (!(v & VHOST_USER_VRING_NOFD))
			fds[n++] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		break;
	}
	return n;
}

/* Read the backend's replies: each a whole, well-formed message (spec "Communication"). */
static void drain(int fd)
{
	struct vhost_user_hdr h;
	uint8_t payload[VHOST_USER_CONFIG_HDR_SIZE + VHOST_USER_MAX_CONFIG];

	while (recv(fd, &h, sizeof(h), MSG_DONTWAIT | MSG_PEEK) > 0) {
		if (recv(fd, &h, sizeof(h), MSG_DONTWAIT) != sizeof(h) ||
		    h.flags != (VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY) || h.size > sizeof(payload) ||
		    (h.size && recv(fd, payload, h.size, MSG_DONTWAIT) != (ssize_t)h.size)) {
			fprintf(stderr, "fuzz_vhost_user: malformed reply: request %u flags %#x size %u\n",
				h.request, h.flags, h.size);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct echo echo;
	struct evloop *loop;
	struct vhost_user *vu = NULL;
	uint8_t *mem;
	size_t off = 3, memlen;
	int sv[2], memfd;
	uint16_t kicks[64];
	unsigned int nkicks = 0;
	int fds_before = t_open_fds();

	if (size < 3 || size > 16384)
		return 0;
	memlen = (size_t)data[1] | (size_t)data[2] << 8;
	if (memlen > size - off)
		memlen = size - off;
	memfd = memfd_create("fuzz-guest-ram", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, MEM_SIZE))
		abort();
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (mem == MAP_FAILED)
		abort();
	memcpy(mem, data + off, memlen);
	off += memlen;

	memset(&echo, 0, sizeof(echo));
	echo.dev = (struct virtio_dev){ .ops = &echo_ops, .priv = &echo, .config = echo.config,
					.config_size = sizeof(echo.config) };
	loop = evloop_create();
	if (!loop || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (vhost_user_create(&echo.dev, loop, sv[1], &vu))
		abort();

	/* Queue the stream; pseudo kicks are remembered by their position in it. */
	while (off < size) {
		struct vhost_user_hdr h = { 0 };
		size_t hlen = size - off < sizeof(h) ? size - off : sizeof(h), plen;
		int fds[VHOST_USER_MAX_FDS];
		unsigned int nfds = 0;

		memcpy(&h, data + off, hlen);
		plen = hlen < sizeof(h) ? 0 : h.size;
		if (plen > size - off - hlen)
			plen = size - off - hlen;
		if ((h.request & ~0xffu) == PSEUDO_KICK && hlen == sizeof(h)) {
			if (nkicks < 64)
				kicks[nkicks++] = (uint16_t)h.request;
			off += hlen;
			continue;
		}
		if (data[0] & 1)
			nfds = attach(&h, data + off + hlen, plen, memfd, fds);
		int sent = send_msg(sv[0], data + off, hlen + plen, fds, nfds);
		for (unsigned int i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (sent)
			break;  /* socket buffer full: the rest is not sent */
		off += hlen + plen;
		if (nkicks < 64)
			kicks[nkicks++] = 0;
	}
	shutdown(sv[0], SHUT_WR);

	/* One socket event per message, with the kicks between them. */
	for (unsigned int k = 0; k < nkicks && !vhost_user_closed(vu); k++) {
		if (kicks[k] == 0) {
			on_socket(vu, EPOLLIN);
		} else {
			unsigned int i = kicks[k] & 0xff;
			if (i < vu->nr_rings && vu->rings[i].kick_fd >= 0)
				on_kick(&vu->rings[i], EPOLLIN);
		}
		drain(sv[0]);
	}
	for (int i = 0; i < 256 && !vhost_user_closed(vu); i++) {
		on_socket(vu, EPOLLIN);
		drain(sv[0]);
	}
	if (!vhost_user_closed(vu))
		abort();    /* the stream ended: the backend must have seen the hang-up */
	vhost_user_destroy(vu);
	evloop_destroy(loop);
	close(sv[0]);
	munmap(mem, MEM_SIZE);
	close(memfd);
	fuzz_check_fds("fuzz_vhost_user", fds_before);
	return 0;
}
