/*
 * Guest half of the TSI scenarios (tests/e2e/tsi.sh), built static: N threads each connect
 * to HOST PORT (an echo server on the host's loopback), half of them non-blocking, and check
 * what a program sees of an impersonated socket: TCP_NODELAY, getpeername, getsockname, fd
 * flags, then an exact echo. Prints "OK N" when every connection passed. HOST "unix" makes
 * PORT the path of a UNIX socket (on a share: the host's listener answers). A fourth argument
 * "udp" makes each connection a connected UDP socket that must get back datagrams of several
 * sizes whole, one recv() each (the host runs a UDP echo server). "udpto PORT2" instead: each
 * connection is one unconnected UDP socket talking to two echo servers (PORT and PORT2 on
 * HOST) in turn with sendto() (and sendmsg() when KRUN_TSI_SENDMSG=1 asks the init to trap
 * it), checking that recvfrom() and recvmsg() name the server each answer came from; with
 * PAUSE_S, once more after that many seconds. "slow PORT2" (TCP): one more thread connects to PORT2 on HOST
 * first, a listener whose backlog is full so that connect hangs; the N connections must all
 * finish while it still waits (a slow connect holds up only its own thread).
 * "burst KIB [open|udp]": one connection writes KIB KiB of the stream byte i = i % 251 and
 * the program ends as soon as the last write() returns: after close(), or with the socket
 * still open ("open"), or as 1000-byte datagrams of a connected UDP socket ("udp"); nothing
 * is printed, the host server checks what arrived. "serve PORT KIB" (in place of HOST PORT):
 * accept one connection on the guest's 127.0.0.1:PORT, write KIB KiB of that stream, close,
 * end (the port map's way).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_storage dest;
static socklen_t dest_len;
static bool udp;
static struct sockaddr_storage dest2;   /* udpto: the second server */
static bool udpto;
static bool with_sendmsg;
static unsigned int pause_s;    /* udpto: then one more echo after this pause */   /* KRUN_TSI_SENDMSG=1: the init traps sendmsg too */
static struct sockaddr_storage slow_dest;
static volatile int slow_done;
static int failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int bad(int i, const char *what)
{
	pthread_mutex_lock(&lock);
	fprintf(stderr, "conn %d: %s (errno %d: %s)\n", i, what, errno, strerror(errno));
	failures++;
	pthread_mutex_unlock(&lock);
	return -1;
}

static int connect_nb(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);

	if (connect(fd, (struct sockaddr *)&dest, dest_len) == 0)
		return 0;
	if (errno != EINPROGRESS || poll(&p, 1, 30000) != 1)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		errno = err;
		return -1;
	}
	return 0;
}

static int check_names(int i, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0 || len != dest_len ||
	    memcmp(&ss, &dest, len) != 0)
		return bad(i, "getpeername differs from the connect address");
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != dest.ss_family)
		return bad(i, "getsockname");
	return 0;
}

static int echo(int i, int fd, bool nb)
{
	char msg[64], buf[64];
	size_t got = 0;
	int n = snprintf(msg, sizeof(msg), "hello from connection %d\n", i);

	if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n)
		return bad(i, "send");
	while (got < (size_t)n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;
		if (nb && poll(&p, 1, 30000) != 1)
			return bad(i, "poll for the echo");
		r = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (r <= 0)
			return bad(i, "recv");
		got += (size_t)r;
	}
	return got == (size_t)n && !memcmp(buf, msg, got) ? 0 : bad(i, "echo differs");
}

/* Each datagram comes back as one, of its own size: boundaries survive the relay. */
static int echo_udp(int i, int fd)
{
	static const size_t sizes[] = { 1, 100, 1400, 8000, 30000 };
	static __thread char msg[30000], buf[65536];

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		for (size_t j = 0; j < sizes[k]; j++)
			msg[j] = (char)(j * 3 + (size_t)i + k);
		if (send(fd, msg, sizes[k], 0) != (ssize_t)sizes[k])
			return bad(i, "send datagram");
		if (poll(&p, 1, 30000) != 1)
			return bad(i, "poll for the datagram");
		r = recv(fd, buf, sizeof(buf), 0);
		if (r != (ssize_t)sizes[k] || memcmp(buf, msg, sizes[k]))
			return bad(i, "datagram differs");
	}
	return 0;
}

static void *conn_udp(int i)
{
	int fd = socket(dest.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		bad(i, "socket");
	else if (connect(fd, (struct sockaddr *)&dest, dest_len) < 0)
		bad(i, "connect");
	else if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
		bad(i, "fd flags changed");
	else if (!check_names(i, fd))
		echo_udp(i, fd);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* One datagram to `to` by sendto() or sendmsg(); its echo by recvfrom() or recvmsg(). */
static int echo_to(int i, int fd, const struct sockaddr_storage *to, size_t size, bool use_msg)
{
	static __thread char out[2000], in[2000];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	struct iovec iov = { .iov_base = out, .iov_len = size };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = dest_len, .msg_iov = &iov,
			    .msg_iovlen = 1 };
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;

	for (size_t j = 0; j < size; j++)
		out[j] = (char)(j * 7 + (size_t)i);
	r = use_msg ? sendmsg(fd, &m, 0) : sendto(fd, out, size, 0, (const struct sockaddr *)to, dest_len);
	if (r != (ssize_t)size)
		return bad(i, use_msg ? "sendmsg with an address" : "sendto");
	if (poll(&p, 1, 30000) != 1)
		return bad(i, "poll for the answer");
	iov = (struct iovec){ .iov_base = in, .iov_len = sizeof(in) };
	m = (struct msghdr){ .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
			     .msg_iovlen = 1 };
	r = use_msg ? recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *)&from, &flen) : recvmsg(fd, &m, 0);
	if (!use_msg)
		flen = m.msg_namelen;
	if (r != (ssize_t)size || memcmp(in, out, size))
		return bad(i, "answer differs");
	if (flen != dest_len || memcmp(&from, to, dest_len))
		return bad(i, "the answer's source is not the server it went to");
	return 0;
}

static void *conn_udpto(int i)
{
	static const size_t sizes[] = { 0, 1, 100, 1400 };
	int fd = socket(dest.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);

	if (fd < 0) {
		bad(i, "socket");
		return NULL;
	}
	for (size_t k = 0; k < 2 * sizeof(sizes) / sizeof(sizes[0]); k++)
		if (echo_to(i, fd, k % 2 ? &dest2 : &dest, sizes[k / 2],
			    with_sendmsg && (k / 2 + (size_t)i) % 2))
			break;
	/* The init sweeps the channels of closed sockets every 5 s: a live one must survive. */
	if (pause_s && !failures) {
		sleep(pause_s);
		echo_to(i, fd, &dest, 10, false);
	}
	if (getsockname(fd, (struct sockaddr *)&me, &len) < 0 || me.ss_family != dest.ss_family ||
	    ((struct sockaddr_in *)&me)->sin_port == 0)
		bad(i, "getsockname: no port after sendto");
	close(fd);
	return NULL;
}

static void *conn(void *arg)
{
	int i = (int)(long)arg, one = 1;
	bool nb = i % 2;

	if (udpto)
		return conn_udpto(i);
	if (udp)
		return conn_udp(i);
	int fd = socket(dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (nb ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0) {
		bad(i, "socket");
		return NULL;
	}
	bool tcp = dest.ss_family != AF_UNIX;

	if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		bad(i, "TCP_NODELAY before connect");
	else if ((nb ? connect_nb(fd) : connect(fd, (struct sockaddr *)&dest, dest_len)) < 0)
		bad(i, "connect");
	else if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		bad(i, "TCP_NODELAY after connect");
	else if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC) || !!(fcntl(fd, F_GETFL) & O_NONBLOCK) != nb)
		bad(i, "fd flags changed");
	else if (!check_names(i, fd))
		echo(i, fd, nb);
	close(fd);
	return NULL;
}

static int parse(const char *host, const char *port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&dest;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&dest;
	struct sockaddr_un *sun = (struct sockaddr_un *)&dest;

	if (!strcmp(host, "unix")) {
		if (strlen(port) >= sizeof(sun->sun_path))
			return -1;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, port);
		dest_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(port) + 1);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)atoi(port));
		dest_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)atoi(port));
		dest_len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void *slow_connect(void *arg)
{
	int fd = socket(slow_dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	(void)arg;
	if (fd >= 0)
		connect(fd, (struct sockaddr *)&slow_dest, dest_len);
	slow_done = 1;
	return NULL;
}

static int start_slow(const char *host, const char *port)
{
	struct sockaddr_storage first = dest;
	pthread_t th;

	if (parse(host, port))
		return -1;
	slow_dest = dest;
	dest = first;
	if (pthread_create(&th, NULL, slow_connect, NULL))
		return -1;
	usleep(300 * 1000);     /* let it reach the supervisor first */
	return 0;
}

/* The burst's bytes from offset off on: byte i of the stream is i % 251. */
static void burst_fill(unsigned char *buf, size_t len, size_t off)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((off + i) % 251);
}

#define BURST_PIECE (64u * 1024)

static int burst_write(int fd, size_t total, size_t piece)
{
	static unsigned char buf[BURST_PIECE];

	for (size_t off = 0; off < total;) {
		size_t len = total - off < piece ? total - off : piece;
		ssize_t n;

		burst_fill(buf, len, off);
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "burst: send at %zu: %s\n", off, strerror(errno));
			return 1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Write, then end at once: whatever is still on the way must reach the host all the same. */
static int burst(size_t kib, const char *how)
{
	bool dgram = how && !strcmp(how, "udp");
	int fd = socket(dest.ss_family, (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&dest, dest_len)) {
		fprintf(stderr, "burst: connect: %s\n", strerror(errno));
		return 1;
	}
	if (burst_write(fd, kib * 1024, dgram ? 1000 : BURST_PIECE))
		return 1;
	if (!how || strcmp(how, "open"))
		close(fd);
	_exit(0);
}

static int serve(const char *port, size_t kib)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 1) ||
	    (c = accept(fd, NULL, NULL)) < 0) {
		fprintf(stderr, "serve: %s\n", strerror(errno));
		return 1;
	}
	if (burst_write(c, kib * 1024, BURST_PIECE))
		return 1;
	close(c);
	_exit(0);
}

int main(int argc, char **argv)
{
	pthread_t th[64];
	int n = argc > 3 ? atoi(argv[3]) : 1;

	if (argc > 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2], (size_t)atol(argv[3]));
	if (argc < 3 || n < 1 || n > 64 || parse(argv[1], argv[2])) {
		fprintf(stderr, "usage: %s HOST PORT [CONNECTIONS<=64 [udp | udpto PORT2 [PAUSE_S] | "
			"slow PORT2 | burst KIB [open|udp]]]\n       %s serve PORT KIB\n", argv[0], argv[0]);
		return 2;
	}
	if (argc > 5 && !strcmp(argv[4], "burst"))
		return burst((size_t)atol(argv[5]), argc > 6 ? argv[6] : NULL);
	udp = argc > 4 && !strcmp(argv[4], "udp");
	udpto = argc > 5 && !strcmp(argv[4], "udpto");
	pause_s = udpto && argc > 6 ? (unsigned int)atoi(argv[6]) : 0;
	with_sendmsg = getenv("KRUN_TSI_SENDMSG") && !strcmp(getenv("KRUN_TSI_SENDMSG"), "1");
	if (udpto) {
		struct sockaddr_storage first = dest;
		if (parse(argv[1], argv[5]))
			return 2;
		dest2 = dest;
		dest = first;
	}
	if (argc > 5 && !strcmp(argv[4], "slow") && start_slow(argv[1], argv[5]))
		return 2;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, conn, (void *)(long)i);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	if (failures)
		return 1;
	if (argc > 5 && !strcmp(argv[4], "slow") && slow_done) {
		fprintf(stderr, "the slow connect finished first: nothing was shown\n");
		return 1;
	}
	printf("OK %d\n", n);
	fflush(stdout);
	_exit(0);   /* the slow connect may still wait */
	return 0;
}
