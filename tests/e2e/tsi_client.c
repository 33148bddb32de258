/*
 * Guest half of the TSI scenarios (tests/e2e/tsi.sh), built static: N threads each connect
 * to HOST PORT (an echo server on the host's loopback), half of them non-blocking, and check
 * what a program sees of an impersonated socket: TCP_NODELAY, getpeername, getsockname, fd
 * flags, then an exact echo. Prints "OK N" when every connection passed. HOST "unix" makes
 * PORT the path of a UNIX socket (on a share: the host's listener answers). A fourth argument
 * "udp" makes each connection a connected UDP socket that must get back datagrams of several
 * sizes whole, one recv() each (the host runs a UDP echo server).
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

static void *conn(void *arg)
{
	int i = (int)(long)arg, one = 1;
	bool nb = i % 2;

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

int main(int argc, char **argv)
{
	pthread_t th[64];
	int n = argc > 3 ? atoi(argv[3]) : 1;

	if (argc < 3 || n < 1 || n > 64 || parse(argv[1], argv[2])) {
		fprintf(stderr, "usage: %s HOST PORT [CONNECTIONS<=64 [udp]]\n", argv[0]);
		return 2;
	}
	udp = argc > 4 && !strcmp(argv[4], "udp");
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, conn, (void *)(long)i);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	if (failures)
		return 1;
	printf("OK %d\n", n);
	return 0;
}
