/*
 * virtio-console, single port (virtio 1.2 section 5.3): receiveq 0 fed from in_fd, transmitq 1
 * written byte-exact to out_fd. Output never buffers more than the one chain being written: on
 * EAGAIN the device stops popping transmitq until out_fd is writable again.
 */
#define LOG_MODULE "console"
#include "devices/console.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_console.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "devices/console_tty.h"
#include "util/iov.h"
#include "util/log.h"
#include "virtio/device.h"

#define RX_Q 0
#define TX_Q 1
#define QUEUE_SIZE 256
#define RX_ROUNDS 16
#define SLICE_MAX 64

struct console {
	struct virtio_dev dev;
	struct virtio_console_config config;
	int in_fd, out_fd;          /* our own descriptions of the caller's fds */
	int tty_fd;                 /* caller's terminal we put in raw mode, or -1 */
	int size_fd;                /* terminal whose size we report, or -1 */
	int winch_fd;
	bool in_pollable, in_watched, in_eof;
	bool out_watched;
	bool tx_pending;            /* tx holds a popped chain written up to tx_off */
	size_t tx_off;
	struct virtq_elem tx, rx;
};

static struct console *to_console(struct virtio_dev *dev)
{
	return dev->priv;
}

/* EPIPE must not kill the host process: SIGPIPE is blocked around the write and consumed. */
static ssize_t write_nosigpipe(int fd, const struct iovec *iov, int cnt)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	ssize_t n;
	int err;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = writev(fd, iov, cnt);
	err = errno;
	if (n < 0 && err == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return n;
}

/* 0: chain fully written (or dropped after a hard error); -EAGAIN: out_fd is full. */
static int write_pending(struct console *c)
{
	size_t total = iov_length(c->tx.iov, c->tx.out_num);

	while (c->tx_off < total) {
		struct iovec part[SLICE_MAX];
		unsigned int n = iov_slice(c->tx.iov, c->tx.out_num, c->tx_off, total - c->tx_off,
					   part, SLICE_MAX);
		ssize_t w = write_nosigpipe(c->out_fd, part, (int)n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return -EAGAIN;
		if (w <= 0) {
			log_warn_guest("console output lost: %s", w < 0 ? strerror(errno) : "short write");
			return 0;
		}
		c->tx_off += (size_t)w;
	}
	return 0;
}

static void on_out_writable(void *opaque, uint32_t events);

static void process_tx(struct console *c)
{
	struct virtq *vq = &c->dev.vqs[TX_Q];

	for (;;) {
		if (!c->tx_pending) {
			int r = virtq_pop(vq, &c->tx);
			if (r < 0)
				virtio_dev_fail(&c->dev, "bad transmit chain");
			if (r <= 0)
				return;
			c->tx_pending = true;
			c->tx_off = 0;
		}
		if (c->out_fd >= 0 && write_pending(c) == -EAGAIN) {
			if (!c->out_watched)
				c->out_watched = evloop_add(c->dev.loop, c->out_fd, EPOLLOUT, on_out_writable, c) == 0;
			return;
		}
		c->tx_pending = false;
		virtq_push(vq, c->tx.head, 0);
		virtio_dev_notify_used(&c->dev, TX_Q);
	}
}

static void on_out_writable(void *opaque, uint32_t events)
{
	struct console *c = opaque;

	(void)events;
	evloop_del(c->dev.loop, c->out_fd);
	c->out_watched = false;
	process_tx(c);
}

static void stop_input(struct console *c, bool eof)
{
	if (c->in_watched)
		evloop_del(c->dev.loop, c->in_fd);
	c->in_watched = false;
	c->in_eof |= eof;
}

/* Fill receive buffers from in_fd; without buffers stop watching until the driver adds some. */
static void on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	struct virtq *vq = &c->dev.vqs[RX_Q];

	(void)events;
	for (int round = 0; round < RX_ROUNDS; round++) {
		int r = virtq_pop(vq, &c->rx);
		ssize_t n;

		if (r < 0)
			virtio_dev_fail(&c->dev, "bad receive chain");
		if (r <= 0) {
			stop_input(c, false);
			return;
		}
		n = c->rx.in_num ? readv(c->in_fd, &c->rx.iov[c->rx.out_num],
					 c->rx.in_num > IOV_MAX ? IOV_MAX : c->rx.in_num) : 0;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			virtq_unpop(vq);
			return;
		}
		if (n <= 0 && c->rx.in_num) {
			virtq_unpop(vq);
			stop_input(c, true);    /* EOF or error: the guest sees no more input */
			return;
		}
		virtq_push(vq, c->rx.head, (uint32_t)n);
		virtio_dev_notify_used(&c->dev, RX_Q);
	}
}

static void start_input(struct console *c)
{
	int ret;

	if (c->in_fd < 0 || c->in_eof || c->in_watched)
		return;
	if (c->in_pollable) {
		ret = evloop_add(c->dev.loop, c->in_fd, EPOLLIN, on_input, c);
		c->in_watched = ret == 0;
		/* epoll refuses regular files and /dev/null: those never block, read them now. */
		c->in_pollable = ret != -EPERM;
		if (ret == 0 || c->in_pollable)
			return;
	}
	on_input(c, EPOLLIN);
}

static bool update_size(struct console *c)
{
	uint16_t cols, rows;

	if (!console_tty_size(c->size_fd, &cols, &rows))
		return false;
	c->config.cols = cols;
	c->config.rows = rows;
	return true;
}

static void on_winch(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(c->winch_fd, &v, sizeof(v)) < 0)
		return;
	if (update_size(c) &&
	    virtio_dev_has_feature(&c->dev, VIRTIO_CONSOLE_F_SIZE) && c->dev.transport.signal_config)
		c->dev.transport.signal_config(&c->dev);
}

static int console_activate(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	if (c->winch_fd >= 0 && evloop_add(dev->loop, c->winch_fd, EPOLLIN, on_winch, c))
		log_debug("console size updates unavailable");
	start_input(c);
	return 0;
}

static void console_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct console *c = to_console(dev);

	if (q == RX_Q)
		start_input(c);
	else if (q == TX_Q && !c->out_watched)
		process_tx(c);
}

static void console_reset(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	stop_input(c, false);
	if (c->out_watched)
		evloop_del(dev->loop, c->out_fd);
	if (c->winch_fd >= 0 && dev->loop)
		evloop_del(dev->loop, c->winch_fd);
	c->out_watched = false;
	c->tx_pending = false;
}

/* 5.3.4: a write to emerg_wr outputs one character even before the queues work. */
static void console_config_write(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len)
{
	struct console *c = to_console(dev);
	struct iovec iov = { (void *)data, 1 };

	if (offset == offsetof(struct virtio_console_config, emerg_wr) && len == 4 && c->out_fd >= 0 &&
	    virtio_dev_has_feature(dev, VIRTIO_CONSOLE_F_EMERG_WRITE) && write_nosigpipe(c->out_fd, &iov, 1) < 0)
		log_warn_guest("console emergency write lost");
}

static void console_destroy(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	console_tty_restore(c->tty_fd);
	console_tty_winch_put(c->winch_fd);
	if (c->in_fd >= 0)
		close(c->in_fd);
	if (c->out_fd >= 0)
		close(c->out_fd);
	free(c);
}

static const struct virtio_dev_ops console_ops = {
	.name = "virtio-console",
	.device_id = 3,
	.features = 1ull << VIRTIO_CONSOLE_F_EMERG_WRITE,
	.num_queues = 2,
	.queue_max_size = QUEUE_SIZE,
	.activate = console_activate,
	.queue_notify = console_queue_notify,
	.reset = console_reset,
	.config_write = console_config_write,
	.destroy = console_destroy,
};

static const struct virtio_dev_ops console_ops_size = {
	.name = "virtio-console",
	.device_id = 3,
	.features = (1ull << VIRTIO_CONSOLE_F_EMERG_WRITE) | (1ull << VIRTIO_CONSOLE_F_SIZE),
	.num_queues = 2,
	.queue_max_size = QUEUE_SIZE,
	.activate = console_activate,
	.queue_notify = console_queue_notify,
	.reset = console_reset,
	.config_write = console_config_write,
	.destroy = console_destroy,
};

/*
 * Our own nonblocking description of a pipe or terminal (reopened through /proc so the
 * caller's description keeps its flags); a regular file or socket is dup'ed as it is.
 */
static int own_fd(int fd, int mode)
{
	struct stat st;
	char path[64];
	int nfd;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		nfd = open(path, mode | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd >= 0)
			return nfd;
	}
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return nfd < 0 ? -errno : nfd;
}

int virtio_console_create(int in_fd, int out_fd, struct virtio_dev **out)
{
	struct console *c = calloc(1, sizeof(*c));
	bool sized;

	if (!c)
		return -ENOMEM;
	c->tty_fd = c->size_fd = c->winch_fd = -1;
	c->in_fd = own_fd(in_fd, O_RDONLY);
	c->out_fd = own_fd(out_fd, O_WRONLY);
	if (c->in_fd < -1 || c->out_fd < -1) {
		int err = c->in_fd < -1 ? c->in_fd : c->out_fd;
		c->in_fd = c->in_fd < 0 ? -1 : c->in_fd;
		c->out_fd = c->out_fd < 0 ? -1 : c->out_fd;
		console_destroy(&c->dev);
		return err;
	}
	c->in_pollable = true;
	if (console_tty_make_raw(in_fd))
		c->tty_fd = in_fd;
	c->size_fd = isatty(out_fd) ? out_fd : isatty(in_fd) ? in_fd : -1;
	sized = update_size(c);
	if (sized)
		c->winch_fd = console_tty_winch_get();
	c->config.max_nr_ports = 1;
	c->dev.ops = sized ? &console_ops_size : &console_ops;
	c->dev.priv = c;
	c->dev.config = (uint8_t *)&c->config;
	c->dev.config_size = sizeof(c->config);
	*out = &c->dev;
	return 0;
}
