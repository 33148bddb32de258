/*
 * One virtio-console port's data path (virtio 1.2 section 5.3.6): its receiveq is fed from the
 * host input fd, its transmitq is written byte-exact to the host output fd. Buffering is
 * bounded by the guest's own buffers: input is read only into posted receive buffers, and
 * output holds at most the one chain being written (on EAGAIN the port stops popping its
 * transmitq until the fd is writable again).
 */
#define LOG_MODULE "console"
#include "devices/console_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/iov.h"
#include "util/log.h"

#define RX_ROUNDS 16
#define SLICE_MAX 64

/*
 * Our own nonblocking description of a pipe or terminal (reopened through /proc so the
 * caller's description keeps its flags); a regular file or socket is dup'ed as it is
 * (sockets are then used with MSG_DONTWAIT).
 */
static int own_fd(int fd, int mode, bool *sock)
{
	struct stat st;
	char path[64];
	int nfd;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return -errno;
	*sock = S_ISSOCK(st.st_mode);
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0)
			return nfd;
	}
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return nfd < 0 ? -errno : nfd;
}

int console_port_init(struct console_port *p, struct console *c, unsigned int id, int in_fd, int out_fd)
{
	int ret = 0;

	p->c = c;
	p->id = id;
	p->in_fd = own_fd(in_fd, O_RDONLY, &p->in_sock);
	if (p->in_fd < -1) {
		ret = p->in_fd;
		p->in_fd = -1;
	}
	p->out_fd = ret ? -1 : own_fd(out_fd, O_WRONLY, &p->out_sock);
	if (p->out_fd < -1) {
		ret = p->out_fd;
		p->out_fd = -1;
	}
	p->in_pollable = true;
	return ret;
}

void console_port_close(struct console_port *p)
{
	if (p->in_fd >= 0)
		close(p->in_fd);
	if (p->out_fd >= 0)
		close(p->out_fd);
	p->in_fd = p->out_fd = -1;
}

bool console_port_host_connected(const struct console_port *p)
{
	return p->out_fd >= 0 || (p->in_fd >= 0 && !p->in_eof);
}

/*
 * EPIPE must not kill the host process, and the library must not change process-wide signal
 * dispositions: sockets get MSG_NOSIGNAL; for pipes SIGPIPE is blocked in this thread around
 * the write and a SIGPIPE it raised is consumed before unblocking.
 */
ssize_t console_port_write(struct console_port *p, const struct iovec *iov, int cnt)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	ssize_t n;
	int err;

	if (p->out_sock) {
		struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
		return sendmsg(p->out_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = writev(p->out_fd, iov, cnt);
	err = errno;
	if (n < 0 && err == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

/* 0: chain fully written (or dropped: the host end is gone); -EAGAIN: out_fd is full. */
static int write_pending(struct console_port *p)
{
	size_t total = iov_length(p->tx.iov, p->tx.out_num);

	while (p->tx_off < total && !p->out_dead) {
		struct iovec part[SLICE_MAX];
		unsigned int n = iov_slice(p->tx.iov, p->tx.out_num, p->tx_off, total - p->tx_off,
					   part, SLICE_MAX);
		ssize_t w = console_port_write(p, part, (int)n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		if (w <= 0) {
			/* Reader gone (EPIPE) or a hard error: drop this and all later output. */
			log_warn("console port %u: host output closed (%s), dropping further output",
				 p->id, w < 0 ? strerror(errno) : "short write");
			p->out_dead = true;
			if (p->id != 0 && p->c->output_closed) {
				p->c->output_closed(p->c->opaque);
				p->c->output_closed = NULL;
			}
			break;
		}
		p->tx_off += (size_t)w;
	}
	return 0;
}

static void on_out_writable(void *opaque, uint32_t events)
{
	struct console_port *p = opaque;

	(void)events;
	evloop_del(p->c->dev.loop, p->out_fd);
	p->out_watched = false;
	console_port_process_tx(p);
}

void console_port_process_tx(struct console_port *p)
{
	struct virtio_dev *dev = &p->c->dev;
	unsigned int q = console_txq(p->id);

	while (!p->out_watched) {
		if (!p->tx_pending) {
			int r = virtq_pop(&dev->vqs[q], &p->tx);
			if (r < 0)
				virtio_dev_fail(dev, "bad transmit chain");
			if (r <= 0)
				return;
			p->tx_pending = true;
			p->tx_off = 0;
		}
		if (p->out_fd >= 0 && write_pending(p) == -EAGAIN) {
			p->out_watched = evloop_add(dev->loop, p->out_fd, EPOLLOUT, on_out_writable, p) == 0;
			if (p->out_watched)
				return;
			p->out_dead = true;     /* cannot wait for it: never spin, drop instead */
			log_warn("console port %u: cannot wait for the host output", p->id);
		}
		p->tx_pending = false;
		virtq_push(&dev->vqs[q], p->tx.head, 0);
		virtio_dev_notify_used(dev, q);
	}
}

/*
 * 5.3.6.2 and Linux's driver: with MULTIPORT a port discards data that arrives while the
 * guest has it closed, so input waits for the guest's PORT_OPEN (the driver sends one for
 * the console port itself once it is hvc0). Without MULTIPORT port 0 takes data any time.
 */
static bool guest_listens(const struct console_port *p)
{
	return p->c->multiport ? p->guest_open : p->id == 0;
}

void console_port_stop_input(struct console_port *p)
{
	if (p->in_watched)
		evloop_del(p->c->dev.loop, p->in_fd);
	p->in_watched = false;
}

/* Host input ended: once every byte before it is in the used ring, the guest may see EOF. */
static void input_ended(struct console_port *p)
{
	console_port_stop_input(p);
	p->in_eof = true;
	if (p->id != 0 && p->c->multiport)
		console_ctrl_queue(p, CONSOLE_SEND_OPEN);
}

static ssize_t read_input(struct console_port *p)
{
	struct iovec *iov = &p->rx.iov[p->rx.out_num];
	int cnt = p->rx.in_num > IOV_MAX ? IOV_MAX : p->rx.in_num;

	if (p->in_sock) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
		return recvmsg(p->in_fd, &msg, MSG_DONTWAIT);
	}
	return readv(p->in_fd, iov, cnt);
}

/* Fill receive buffers from in_fd; without buffers stop watching until the driver adds some. */
static void on_input(void *opaque, uint32_t events)
{
	struct console_port *p = opaque;
	struct virtio_dev *dev = &p->c->dev;
	unsigned int q = console_rxq(p->id);
	/* epoll calls again while input remains; a plain file is read until the buffers run out. */
	unsigned int rounds = p->in_watched ? RX_ROUNDS : VIRTQ_MAX_SIZE;

	(void)events;
	for (unsigned int round = 0; round < rounds; round++) {
		int r = virtq_pop(&dev->vqs[q], &p->rx);
		ssize_t n;

		if (r < 0)
			virtio_dev_fail(dev, "bad receive chain");
		if (r <= 0) {
			console_port_stop_input(p);
			return;
		}
		/*
		 * Nothing to fill (no writable buffer, or only empty ones): hand it back. A read
		 * into 0 bytes returns 0, which would look like the host's EOF.
		 */
		if (!iov_length(&p->rx.iov[p->rx.out_num], p->rx.in_num)) {
			virtq_push(&dev->vqs[q], p->rx.head, 0);
			continue;
		}
		n = read_input(p);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			virtq_unpop(&dev->vqs[q]);
			return;
		}
		if (n <= 0) {
			virtq_unpop(&dev->vqs[q]);
			input_ended(p);         /* EOF or error: the guest sees no more input */
			return;
		}
		virtq_push(&dev->vqs[q], p->rx.head, (uint32_t)n);
		virtio_dev_notify_used(dev, q);
	}
}

void console_port_start_input(struct console_port *p)
{
	int ret;

	if (p->in_fd < 0 || p->in_eof || p->in_watched || !guest_listens(p))
		return;
	if (p->in_pollable) {
		ret = evloop_add(p->c->dev.loop, p->in_fd, EPOLLIN, on_input, p);
		p->in_watched = ret == 0;
		/* epoll refuses regular files and /dev/null: those never block, read them now. */
		p->in_pollable = ret != -EPERM;
		if (ret == 0 || p->in_pollable)
			return;
	}
	on_input(p, EPOLLIN);
}

void console_port_reset(struct console_port *p)
{
	console_port_stop_input(p);
	if (p->out_watched)
		evloop_del(p->c->dev.loop, p->out_fd);
	p->out_watched = false;
	p->tx_pending = false;
	p->guest_ready = p->guest_open = false;
	p->send = 0;
}
