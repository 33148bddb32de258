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
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

#define RELAY_BUF 65536
#define HEADER_TIMEOUT_S 10
#define VMADDR_CID_ANY 0xffffffffu

struct dir {
	char buf[RELAY_BUF];
	size_t off, len;
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

/* Moves what can move from `from` to `to` now; a failed direction ends like EOF. */
static void pump(struct dir *d, int from, int to, short rev_from, short rev_to)
{
	ssize_t n;

	if ((rev_from & (POLLIN | POLLHUP | POLLERR)) && !d->eof && !d->len) {
		n = read(from, d->buf, sizeof(d->buf));
		if (n > 0) {
			d->off = 0;
			d->len = (size_t)n;
		} else if (n == 0 || errno != EAGAIN) {
			d->eof = true;
		}
	}
	if (d->len && (rev_to & (POLLOUT | POLLERR | POLLHUP) || rev_from)) {
		n = send(to, d->buf + d->off, d->len, MSG_NOSIGNAL);
		if (n > 0) {
			d->off += (size_t)n;
			d->len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN) {
			d->len = 0;
			d->eof = true;
		}
	}
	if (d->eof && !d->len && !d->shut) {
		shutdown(to, SHUT_WR);
		d->shut = true;
	}
}

static void relay(int a, int b)
{
	static struct dir ab, ba;

	fcntl(a, F_SETFL, O_NONBLOCK);
	fcntl(b, F_SETFL, O_NONBLOCK);
	while (!ab.shut || !ba.shut) {
		struct pollfd p[2] = {
			{ .fd = a, .events = (short)((!ab.eof && !ab.len ? POLLIN : 0) | (ba.len ? POLLOUT : 0)) },
			{ .fd = b, .events = (short)((!ba.eof && !ba.len ? POLLIN : 0) | (ab.len ? POLLOUT : 0)) },
		};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return;
		pump(&ab, a, b, p[0].revents, p[1].revents);
		pump(&ba, b, a, p[1].revents, p[0].revents);
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
	pid_t pid;

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
