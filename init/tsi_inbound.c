/*
 * TSI guest side, inbound (the host's port map): the host proxy connects to our vsock port
 * KRUN_TSI_INBOUND_PORT, sends struct krun_tsi_inbound, then the stream; a child per
 * connection connects to the guest program's 127.0.0.1:port (or [::1]) and relays both ways.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

#define HEADER_TIMEOUT_S 10
#define VMADDR_CID_ANY 0xffffffffu
/* Bytes in flight per direction: the pipe between the two sockets, or the copy buffer. */
#define RELAY_BYTES (1u << 20)

/*
 * One direction of the relay. With a pipe, splice() moves the bytes: TCP's side is then
 * zero-copy (its pages go into and out of the pipe by reference) and the vsock side costs
 * the one copy it always does; without splice (an old kernel), a plain buffer.
 */
struct dir {
	int pipe[2];        /* -1: copy through buf */
	char *buf;
	size_t off, len;    /* bytes waiting: in the pipe, or at buf + off */
	size_t cap;
	/*
	 * Filling would block with bytes still waiting: the pipe may be full (it counts pages,
	 * not bytes), so polling for input would spin. Cleared once some bytes leave.
	 */
	bool stalled;
	bool eof, shut;
};

static int local_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static bool dir_init(struct dir *d)
{
	int size;

	memset(d, 0, sizeof(*d));
	if (pipe2(d->pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
		fcntl(d->pipe[1], F_SETPIPE_SZ, RELAY_BYTES);
		size = fcntl(d->pipe[1], F_GETPIPE_SZ);
		d->cap = size > 0 ? (size_t)size : 65536;
		return true;
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->cap = RELAY_BYTES;
	d->buf = malloc(d->cap);
	return d->buf != NULL;
}

/* splice() refuses these fds (EINVAL): the copy buffer from now on. */
static bool to_copy(struct dir *d)
{
	if (d->len || d->buf)
		return false;
	d->buf = malloc(RELAY_BYTES);
	if (!d->buf)
		return false;
	close(d->pipe[0]);
	close(d->pipe[1]);
	d->pipe[0] = d->pipe[1] = -1;
	d->cap = RELAY_BYTES;
	return true;
}

static ssize_t fill(struct dir *d, int from)
{
	ssize_t n;

	if (d->pipe[1] < 0)
		return read(from, d->buf + d->off + d->len, d->cap - d->off - d->len);
	n = splice(from, NULL, d->pipe[1], NULL, d->cap - d->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n < 0 && errno == EINVAL && to_copy(d))
		return fill(d, from);
	return n;
}

static ssize_t drain(struct dir *d, int to)
{
	ssize_t n;

	if (d->pipe[0] < 0) {
		n = send(to, d->buf + d->off, d->len, MSG_NOSIGNAL);
		if (n > 0)
			d->off = (size_t)n == d->len ? 0 : d->off + (size_t)n;   /* empty: start over */
		return n;
	}
	return splice(d->pipe[0], NULL, to, NULL, d->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

/*
 * Moves what can move from `from` to `to` now, until both would block: one poll then serves
 * as many bytes as the sockets hold. A failed direction ends like EOF.
 */
static void pump(struct dir *d, int from, int to)
{
	bool progress = true;

	while (progress && !d->shut) {
		ssize_t n;

		progress = false;
		if (!d->eof && d->off + d->len < d->cap) {
			n = fill(d, from);
			if (n > 0)
				d->len += (size_t)n;
			else if (n == 0 || (errno != EAGAIN && errno != EINTR))
				d->eof = true;
			d->stalled = n < 0 && d->len;
			progress = n > 0;
		}
		if (d->len) {
			n = drain(d, to);
			if (n > 0) {
				d->len -= (size_t)n;
				d->stalled = false;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				d->len = 0;     /* what is left in a pipe stays there */
				d->eof = true;
			}
			progress |= n > 0;
		}
	}
	if (d->eof && !d->len && !d->shut) {
		shutdown(to, SHUT_WR);
		d->shut = true;
	}
}

static short want(const struct dir *in, const struct dir *out)
{
	return (short)((!in->eof && !in->stalled && in->off + in->len < in->cap ? POLLIN : 0) |
		       (out->len ? POLLOUT : 0));
}

static void relay(int a, int b)
{
	static struct dir ab, ba;

	if (!dir_init(&ab) || !dir_init(&ba))
		return;
	fcntl(a, F_SETFL, O_NONBLOCK);
	fcntl(b, F_SETFL, O_NONBLOCK);
	while (!ab.shut || !ba.shut) {
		struct pollfd p[2] = {
			{ .fd = a, .events = want(&ab, &ba) },
			{ .fd = b, .events = want(&ba, &ab) },
		};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return;
		pump(&ab, a, b);
		pump(&ba, b, a);
	}
}

static void __attribute__((noreturn)) serve(int v)
{
	struct timeval tv = { .tv_sec = HEADER_TIMEOUT_S };
	struct krun_tsi_inbound in;
	int s;

	setsockopt(v, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(v, &in, sizeof(in), MSG_WAITALL) != (ssize_t)sizeof(in) ||
	    in.magic != KRUN_TSI_MAGIC || in.version != KRUN_TSI_VERSION || !in.guest_port)
		_exit(1);
	s = local_connect(in.guest_port);
	if (s < 0)
		_exit(1);   /* nobody listens: the host's client sees the connection close */
	relay(v, s);
	_exit(0);
}

static void __attribute__((noreturn)) accept_loop(int lfd)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_IGN);   /* children reap themselves */
	for (;;) {
		int v = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (v < 0)
			continue;
		if (fork() == 0) {
			close(lfd);
			serve(v);
		}
		close(v);
	}
}

void tsi_inbound_start(void)
{
	struct tsi_sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = KRUN_TSI_INBOUND_PORT,
				      .svm_cid = VMADDR_CID_ANY };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	uint64_t size = TSI_VSOCK_BUF_BYTES;
	pid_t pid;

	/* Accepted sockets inherit it: the host may send that much before we read. */
	if (fd >= 0) {
		setsockopt(fd, AF_VSOCK, TSI_SO_VM_SOCKETS_BUFFER_MAX_SIZE, &size, sizeof(size));
		setsockopt(fd, AF_VSOCK, TSI_SO_VM_SOCKETS_BUFFER_SIZE, &size, sizeof(size));
	}
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, SOMAXCONN)) {
		log_debug("tsi: no inbound listener: %m");
		if (fd >= 0)
			close(fd);
		return;
	}
	pid = fork();
	if (pid == 0)
		accept_loop(fd);
	if (pid < 0)
		log_error("tsi: fork: %m");
	close(fd);
}
