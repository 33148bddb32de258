/*
 * TSI guest side, inbound (the host's port map): the host proxy connects to our vsock port
 * KRUN_TSI_INBOUND_PORT, sends struct krun_tsi_inbound, then the stream; we connect to the
 * guest program's 127.0.0.1:port (or [::1]) and relay both ways. One process serves every
 * connection from one poll loop: a process per connection cost a fork and an exit each,
 * about 2-4 ms of emulated CPU under QEMU TCG, more than the rest of a short connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

#define HEADER_TIMEOUT_MS 10000
#define VMADDR_CID_ANY 0xffffffffu
/* Bytes in flight per direction: the pipe between the two sockets, or the copy buffer. */
#define RELAY_BYTES (1u << 20)
/*
 * Connections relayed at once; more wait in the vsock listener's backlog. Each holds six
 * fds (two sockets, two pipes), within the fd limit we raise to FD_LIMIT.
 */
#define MAX_LINKS 256
#define FD_LIMIT 4096
/* At the VM's end: one close's wait for the host's answer (PID 1 bounds the whole drain). */
#define DRAIN_LINGER_S 1

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

enum link_state {
	LINK_FREE = 0,
	LINK_HEADER,        /* reading struct krun_tsi_inbound from the host */
	LINK_CONNECTING,    /* to the guest program, IPv4 then IPv6 */
	LINK_RELAY,
};

/* One host connection: its vsock socket, our socket to the guest program, the relay between. */
struct link {
	enum link_state state;
	int v, s;
	struct krun_tsi_inbound hdr;
	size_t hdr_got;
	bool tried_v6;
	long deadline;      /* header and connect, in tsi_now_ms() time */
	struct dir vs, sv;  /* vsock -> program, program -> vsock */
};

static struct link links[MAX_LINKS];
static unsigned int nr_links;
/* The relay process, as PID 1 knows it; in the relay, whether PID 1 asked it to finish. */
static pid_t relay_pid;
static volatile sig_atomic_t draining;

/* A non-blocking connect to the guest program's port: 0 done, 1 in progress, -1 failed. */
static int local_connect(struct link *l, bool v6)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(l->hdr.guest_port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(l->hdr.guest_port),
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -1;
	ret = v6 ? connect(fd, (struct sockaddr *)&sin6, sizeof(sin6)) :
		   connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	if (ret < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	l->s = fd;
	l->tried_v6 = v6;
	return ret == 0 ? 0 : 1;
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

/* A direction with nothing to free yet. */
static void dir_clear(struct dir *d)
{
	memset(d, 0, sizeof(*d));
	d->pipe[0] = d->pipe[1] = -1;
}

static void dir_free(struct dir *d)
{
	if (d->pipe[0] >= 0)
		close(d->pipe[0]);
	if (d->pipe[1] >= 0)
		close(d->pipe[1]);
	free(d->buf);
	dir_clear(d);
}

static void link_close(struct link *l)
{
	dir_free(&l->vs);
	dir_free(&l->sv);
	close(l->v);
	if (l->s >= 0)
		close(l->s);
	l->state = LINK_FREE;
	nr_links--;
}

static void start_relay(struct link *l)
{
	l->state = LINK_RELAY;
	if (!dir_init(&l->vs) || !dir_init(&l->sv)) {
		link_close(l);
		return;
	}
	pump(&l->vs, l->v, l->s);
	pump(&l->sv, l->s, l->v);
}

/* Nobody listens on IPv4 (refused): IPv6 next; nobody there either: the host sees a close. */
static void connect_next(struct link *l, int ret)
{
	while (ret < 0 && !l->tried_v6) {
		if (l->s >= 0)
			close(l->s);
		l->s = -1;
		ret = local_connect(l, true);
	}
	if (ret < 0) {
		link_close(l);
		return;
	}
	l->state = ret ? LINK_CONNECTING : LINK_RELAY;
	if (!ret)
		start_relay(l);
}

static void read_header(struct link *l)
{
	ssize_t n = recv(l->v, (char *)&l->hdr + l->hdr_got, sizeof(l->hdr) - l->hdr_got, 0);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		link_close(l);
		return;
	}
	if (n < 0)
		return;
	l->hdr_got += (size_t)n;
	if (l->hdr_got < sizeof(l->hdr))
		return;
	if (l->hdr.magic != KRUN_TSI_MAGIC || l->hdr.version != KRUN_TSI_VERSION ||
	    !l->hdr.guest_port) {
		link_close(l);
		return;
	}
	connect_next(l, local_connect(l, false));
}

static void connect_done(struct link *l)
{
	int err = 0;
	socklen_t len = sizeof(err);

	/* Writable (or failed) after a non-blocking connect: SO_ERROR tells which. */
	if (getsockopt(l->s, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	connect_next(l, err ? -1 : 0);
}

static void link_progress(struct link *l)
{
	if (l->state == LINK_HEADER)
		read_header(l);
	else if (l->state == LINK_CONNECTING)
		connect_done(l);
	else if (l->state == LINK_RELAY) {
		pump(&l->vs, l->v, l->s);
		pump(&l->sv, l->s, l->v);
		if (l->vs.shut && l->sv.shut)
			link_close(l);
	}
}

/* The link's two poll entries; an fd it wants nothing from is left out (no POLLHUP spin). */
static void link_events(const struct link *l, struct pollfd *pv, struct pollfd *ps)
{
	short ev = 0, es = 0;

	if (l->state == LINK_HEADER)
		ev = POLLIN;
	else if (l->state == LINK_CONNECTING)
		es = POLLOUT;
	else if (l->state == LINK_RELAY) {
		ev = want(&l->vs, &l->sv);
		es = want(&l->sv, &l->vs);
	}
	*pv = (struct pollfd){ .fd = ev ? l->v : -1, .events = ev };
	*ps = (struct pollfd){ .fd = es ? l->s : -1, .events = es };
}

static void accept_some(int lfd)
{
	/* Bounded per wakeup: the connections already in flight get served in between. */
	for (unsigned int k = 0; k < 16 && nr_links < MAX_LINKS; k++) {
		int v = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct link *l = links;

		if (v < 0)
			return;
		while (l->state != LINK_FREE)
			l++;
		memset(l, 0, sizeof(*l));
		dir_clear(&l->vs);
		dir_clear(&l->sv);
		l->state = LINK_HEADER;
		l->v = v;
		l->s = -1;
		l->deadline = tsi_now_ms() + HEADER_TIMEOUT_MS;
		nr_links++;
	}
}

static int next_deadline(void)
{
	long now = tsi_now_ms(), best = -1;

	for (unsigned int i = 0; i < MAX_LINKS; i++) {
		const struct link *l = &links[i];
		long left;

		if (l->state != LINK_HEADER && l->state != LINK_CONNECTING)
			continue;
		left = l->deadline - now;
		if (left < 0)
			left = 0;
		if (best < 0 || left < best)
			best = left;
	}
	return (int)best;
}

static void expire(void)
{
	long now = tsi_now_ms();

	for (unsigned int i = 0; i < MAX_LINKS; i++)
		if ((links[i].state == LINK_HEADER || links[i].state == LINK_CONNECTING) &&
		    links[i].deadline <= now)
			link_close(&links[i]);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= FD_LIMIT)
		return;
	rl.rlim_cur = FD_LIMIT;
	if (rl.rlim_max < FD_LIMIT)
		rl.rlim_max = FD_LIMIT;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		log_debug("tsi: inbound: cannot raise the fd limit: %m");
}

/*
 * Finishing (the program has ended, the VM is about to): links still setting up are dropped;
 * a relaying one passes on what the guest program wrote (all of it is readable now), then
 * closes its vsock socket lingering: close() returns once the host device answered the full
 * SHUTDOWN with its RST, which it sends only after the bytes left for the host side.
 */
static void drain_links(void)
{
	struct linger lg = { .l_onoff = 1, .l_linger = DRAIN_LINGER_S };

	for (unsigned int i = 0; i < MAX_LINKS; i++) {
		struct link *l = &links[i];

		if (l->state == LINK_FREE)
			continue;
		if (l->state == LINK_RELAY)
			pump(&l->sv, l->s, l->v);
		if (l->state == LINK_RELAY && l->sv.len)
			continue;   /* the vsock socket is full: poll for room */
		if (l->state == LINK_RELAY)
			setsockopt(l->v, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		link_close(l);
	}
}

/* One poll round over the listener and the links in use. */
static void serve_round(int lfd)
{
	static struct pollfd pfd[1 + 2 * MAX_LINKS];
	static unsigned int slot[MAX_LINKS];
	unsigned int n = 0;

	if (draining)
		drain_links();
	if (draining && !nr_links)
		_exit(0);
	pfd[0] = (struct pollfd){ .fd = nr_links < MAX_LINKS && !draining ? lfd : -1,
				  .events = POLLIN };
	for (unsigned int i = 0; i < MAX_LINKS; i++) {
		if (links[i].state == LINK_FREE)
			continue;
		link_events(&links[i], &pfd[1 + 2 * n], &pfd[2 + 2 * n]);
		slot[n++] = i;
	}
	/* The signal may land between the check above and poll: then look again soon. */
	if (poll(pfd, 1 + 2 * n, draining ? 10 : next_deadline()) < 0)
		return;
	for (unsigned int k = 0; k < n; k++)
		if (pfd[1 + 2 * k].revents || pfd[2 + 2 * k].revents)
			link_progress(&links[slot[k]]);
	expire();
	if (pfd[0].revents)
		accept_some(lfd);
}

static void on_drain(int sig)
{
	(void)sig;
	draining = 1;
}

static void __attribute__((noreturn)) serve_loop(int lfd)
{
	struct sigaction sa = { .sa_handler = on_drain };   /* no SA_RESTART: poll returns */
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR1, &sa, NULL);
	raise_fd_limit();
	fcntl(lfd, F_SETFL, O_NONBLOCK);    /* accept_some takes until the backlog is empty */
	for (;;)
		serve_round(lfd);
}

void tsi_inbound_drain(long end)
{
	if (relay_pid <= 0 || kill(relay_pid, SIGUSR1) < 0)
		return;
	while (waitpid(relay_pid, NULL, WNOHANG) == 0 && tsi_now_ms() < end)
		usleep(2000);
	relay_pid = 0;
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
		serve_loop(fd);
	if (pid < 0)
		log_error("tsi: fork: %m");
	relay_pid = pid;
	close(fd);
}
