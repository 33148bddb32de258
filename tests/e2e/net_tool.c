/*
 * A small TCP load tool for tests/e2e/net_load.sh and bench/net.sh, built static for the guest
 * (musl-gcc) and for the host. One server, several clients; addresses are numeric (IPv4 or IPv6).
 *
 *   net_tool server ADDR PORT          serve until a client sends QUIT (one thread a connection)
 *   net_tool wait ADDR PORT SECONDS    retry a one-byte echo until it works (a port map's server
 *                                      may not listen yet: the host side accepts, then closes)
 *   net_tool echo ADDR PORT N          open N connections at once, then each echoes a message
 *   net_tool send ADDR PORT MIB        stream MIB to the server, compare the server's checksum
 *   net_tool recv ADDR PORT MIB        stream MIB from the server, compare with its checksum
 *   net_tool rate ADDR PORT SECONDS    connect, echo one byte, close, as often as it can
 *   net_tool quit ADDR PORT            stop the server
 *
 * Protocol: the client's first line is the command: "E" (echo until EOF), "S BYTES" (the client
 * sends BYTES then shuts down its write side; the server answers "OK BYTES SUM"), "G BYTES"
 * (the server sends BYTES of a fixed pseudo-random stream, then "OK BYTES SUM"), "Q" (answer
 * "BYE", exit 0). SUM is a 64-bit hash over 8-byte words of the stream and its length.
 * Clients print one line starting with "OK" (exit 0) or "FAIL" (exit 1); details on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (128u * 1024u)
#define IO_TIMEOUT_S 120

static struct sockaddr_storage dest;
static socklen_t dest_len;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the stream: its generator and its checksum */

struct sum {
	uint64_t h, n;
	unsigned char pend[8];
	unsigned int npend;
};

static void mix(struct sum *s, uint64_t w)
{
	s->h = (s->h ^ w) * 0x100000001b3ull;
	s->h ^= s->h >> 31;
}

static void sum_init(struct sum *s)
{
	memset(s, 0, sizeof(*s));
	s->h = 0xcbf29ce484222325ull;
}

static void sum_add(struct sum *s, const unsigned char *p, size_t len)
{
	s->n += len;
	while (s->npend && len) {
		s->pend[s->npend++] = *p++;
		len--;
		if (s->npend == 8) {
			uint64_t w;
			memcpy(&w, s->pend, 8);
			mix(s, w);
			s->npend = 0;
		}
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		mix(s, w);
	}
	while (len--)
		s->pend[s->npend++] = *p++;
}

static uint64_t sum_final(const struct sum *s0)
{
	struct sum s = *s0;

	if (s.npend) {
		uint64_t w = 0;
		memcpy(&w, s.pend, s.npend);
		mix(&s, w);
	}
	mix(&s, s.n);
	return s.h;
}

static void gen_fill(uint64_t *state, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t x = *state;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		*state = x;
		memcpy(buf + i, &x, 8);
	}
}

/* ---- sockets */

static int parse_addr(const char *addr, const char *port)
{
	char *end;
	long p = strtol(port, &end, 10);

	memset(&dest, 0, sizeof(dest));
	if (*end || p < 0 || p > 65535)
		return -1;
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&dest;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)p);
		dest_len = sizeof(*a);
		return inet_pton(AF_INET6, addr, &a->sin6_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)&dest;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)p);
	dest_len = sizeof(*a);
	return inet_pton(AF_INET, addr, &a->sin_addr) == 1 ? 0 : -1;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int dial(void)
{
	int fd = socket(dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	set_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&dest, dest_len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int send_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = send(fd, c, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Exactly len bytes; -1 on error or early EOF (errno 0 for EOF). */
static int recv_all(int fd, void *p, size_t len)
{
	char *c = p;

	while (len) {
		ssize_t n = recv(fd, c, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One line (without the newline), read a byte at a time so that no payload is consumed. */
static int recv_line(int fd, char *line, size_t size)
{
	size_t i = 0;

	for (;;) {
		char ch;
		ssize_t n = recv(fd, &ch, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		if (ch == '\n')
			break;
		if (i + 1 >= size)
			return errno = EPROTO, -1;
		line[i++] = ch;
	}
	line[i] = 0;
	return 0;
}

/* ---- server */

static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char line[96], reply[96];
	unsigned long long bytes = 0;
	static unsigned char zero;
	unsigned char *buf = malloc(CHUNK);
	struct sum s;

	sum_init(&s);
	set_timeouts(fd);
	if (!buf || recv_line(fd, line, sizeof(line)) < 0)
		goto out;
	if (!strcmp(line, "E")) {
		ssize_t n;
		while ((n = recv(fd, buf, CHUNK, 0)) > 0)
			if (send_all(fd, buf, (size_t)n) < 0)
				break;
	} else if (sscanf(line, "S %llu", &bytes) == 1) {
		ssize_t n;
		while ((n = recv(fd, buf, CHUNK, 0)) > 0)
			sum_add(&s, buf, (size_t)n);
		int len = snprintf(reply, sizeof(reply), "OK %" PRIu64 " %016" PRIx64 "\n", s.n, sum_final(&s));
		send_all(fd, reply, (size_t)len);
	} else if (sscanf(line, "G %llu", &bytes) == 1) {
		uint64_t state = 0x9e3779b97f4a7c15ull;
		unsigned long long left = bytes;
		while (left) {
			size_t n = left < CHUNK ? (size_t)left : CHUNK;
			gen_fill(&state, buf, CHUNK);
			sum_add(&s, buf, n);
			if (send_all(fd, buf, n) < 0)
				goto out;
			left -= n;
		}
		int len = snprintf(reply, sizeof(reply), "OK %" PRIu64 " %016" PRIx64 "\n", s.n, sum_final(&s));
		send_all(fd, reply, (size_t)len);
	} else if (!strcmp(line, "Q")) {
		send_all(fd, "BYE\n", 4);
		shutdown(fd, SHUT_WR);
		recv(fd, &zero, 1, 0); /* until the client closes: its BYE is not lost to a reset */
		exit(0);
	} else {
		fprintf(stderr, "net_tool server: bad command '%s'\n", line);
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static int server(void)
{
	int one = 1, fd = socket(dest.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pthread_attr_t attr;

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&dest, dest_len) < 0 || listen(fd, 512) < 0) {
		perror("net_tool server: listen");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (;;) {
		pthread_t t;
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			perror("net_tool server: accept");
			return 1;
		}
		if (pthread_create(&t, &attr, serve_conn, (void *)(intptr_t)c) != 0) {
			fprintf(stderr, "net_tool server: cannot start a thread\n");
			close(c);
		}
	}
}

/* ---- clients */

static int fail(const char *what)
{
	printf("FAIL %s\n", what);
	return 1;
}

/* One connection echoing one byte; 0 when the byte came back. */
static int ping(void)
{
	char b = 0;
	int fd = dial();

	if (fd < 0)
		return -1;
	int r = send_all(fd, "E\nx", 3) == 0 && shutdown(fd, SHUT_WR) == 0 && recv_all(fd, &b, 1) == 0 && b == 'x' ? 0 : -1;
	close(fd);
	return r;
}

static int wait_server(double seconds)
{
	double end = now() + seconds;

	for (;;) {
		if (ping() == 0)
			return printf("OK server answers\n"), 0;
		if (now() > end)
			return fail("server never answered");
		usleep(100000);
	}
}

struct echo_job {
	pthread_barrier_t *all_open;
	int index, ok;
};

static void *echo_conn(void *arg)
{
	struct echo_job *j = arg;
	char msg[80], back[80];
	int fd = dial(), len;

	if (fd < 0)
		fprintf(stderr, "conn %d: connect: %s\n", j->index, strerror(errno));
	pthread_barrier_wait(j->all_open);
	if (fd < 0)
		return NULL;
	len = snprintf(msg, sizeof(msg), "hello from connection %d\n", j->index);
	if (send_all(fd, "E\n", 2) < 0 || send_all(fd, msg, (size_t)len) < 0)
		fprintf(stderr, "conn %d: send: %s\n", j->index, strerror(errno));
	else if (recv_all(fd, back, (size_t)len) < 0)
		fprintf(stderr, "conn %d: recv: %s\n", j->index, errno ? strerror(errno) : "early EOF");
	else if (memcmp(msg, back, (size_t)len) != 0)
		fprintf(stderr, "conn %d: the echo differs\n", j->index);
	else
		j->ok = 1;
	close(fd);
	return NULL;
}

static int echo_many(int n)
{
	pthread_barrier_t all_open;
	pthread_attr_t attr;
	pthread_t *t = calloc((size_t)n, sizeof(*t));
	struct echo_job *jobs = calloc((size_t)n, sizeof(*jobs));
	int ok = 0, started = 0;
	double t0 = now();

	if (!t || !jobs || n < 1 || pthread_barrier_init(&all_open, NULL, (unsigned int)n) != 0)
		return fail("echo: setup");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (int i = 0; i < n; i++) {
		jobs[i] = (struct echo_job){ .all_open = &all_open, .index = i };
		if (pthread_create(&t[i], &attr, echo_conn, &jobs[i]) != 0)
			break;
		started++;
	}
	if (started < n) {
		fprintf(stderr, "only %d threads started\n", started);
		_exit(1); /* the started threads wait at the barrier forever */
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		ok += jobs[i].ok;
	}
	if (ok != n) {
		printf("FAIL echo: %d of %d connections failed\n", n - ok, n);
		return 1;
	}
	printf("OK echo %d concurrent connections in %.2f s\n", n, now() - t0);
	return 0;
}

static int parse_ok(const char *line, unsigned long long *bytes, uint64_t *sum)
{
	return sscanf(line, "OK %llu %" SCNx64, bytes, sum) == 2 ? 0 : -1;
}

static int stream(bool out, unsigned long long bytes)
{
	unsigned char *buf = malloc(CHUNK);
	char line[96];
	unsigned long long peer_bytes;
	uint64_t peer_sum, mine, state = 0x9e3779b97f4a7c15ull;
	struct sum s;
	double t0, t1;
	int fd;

	sum_init(&s);
	if (!buf)
		return fail("stream: out of memory");
	if ((fd = dial()) < 0) {
		fprintf(stderr, "connect: %s\n", strerror(errno));
		return fail("stream: cannot connect");
	}
	t0 = now();
	snprintf(line, sizeof(line), "%c %llu\n", out ? 'S' : 'G', bytes);
	if (send_all(fd, line, strlen(line)) < 0)
		return fail("stream: send command");
	if (out) {
		for (unsigned long long left = bytes; left;) {
			size_t n = left < CHUNK ? (size_t)left : CHUNK;
			gen_fill(&state, buf, CHUNK);
			sum_add(&s, buf, n);
			if (send_all(fd, buf, n) < 0) {
				fprintf(stderr, "send after %llu bytes: %s\n", bytes - left, strerror(errno));
				return fail("stream: send");
			}
			left -= n;
		}
		shutdown(fd, SHUT_WR);
	} else {
		for (unsigned long long left = bytes; left;) {
			ssize_t n = recv(fd, buf, left < CHUNK ? (size_t)left : CHUNK, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fprintf(stderr, "recv after %llu bytes: %s\n", bytes - left, n ? strerror(errno) : "early EOF");
				return fail("stream: recv");
			}
			sum_add(&s, buf, (size_t)n);
			left -= (unsigned long long)n;
		}
	}
	if (recv_line(fd, line, sizeof(line)) < 0 || parse_ok(line, &peer_bytes, &peer_sum) < 0) {
		fprintf(stderr, "no checksum line from the server: %s\n", errno ? strerror(errno) : "EOF");
		return fail("stream: no checksum from the server");
	}
	t1 = now();
	close(fd);
	mine = sum_final(&s);
	if (peer_bytes != s.n || peer_sum != mine) {
		printf("FAIL %s: %llu bytes sum %016" PRIx64 " here, %llu bytes sum %016" PRIx64 " at the server\n",
		       out ? "send" : "recv", (unsigned long long)s.n, mine, peer_bytes, peer_sum);
		return 1;
	}
	printf("OK %s %llu bytes in %.3f s = %.1f MiB/s sum %016" PRIx64 "\n", out ? "send" : "recv", bytes,
	       t1 - t0, (double)bytes / 1048576.0 / (t1 - t0), mine);
	return 0;
}

static int rate(double seconds)
{
	double t0 = now(), end = t0 + seconds, t;
	long n = 0;

	do {
		if (ping() < 0) {
			fprintf(stderr, "connection %ld: %s\n", n, errno ? strerror(errno) : "no echo");
			return fail("rate: a connection failed");
		}
		n++;
	} while ((t = now()) < end);
	printf("OK rate %ld connections in %.3f s = %.1f conn/s\n", n, t - t0, (double)n / (t - t0));
	return 0;
}

static int quit(void)
{
	char line[16];
	int fd = dial();

	if (fd < 0 || send_all(fd, "Q\n", 2) < 0 || recv_line(fd, line, sizeof(line)) < 0 || strcmp(line, "BYE"))
		return fail("quit: no BYE from the server");
	close(fd);
	printf("OK quit\n");
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: net_tool server|wait|echo|send|recv|rate|quit ADDR PORT [N|MIB|SECONDS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd;
	double arg = 0;

	if (argc < 4 || argc > 5)
		return usage();
	cmd = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (parse_addr(argv[2], argv[3]) < 0) {
		fprintf(stderr, "net_tool: bad address %s port %s\n", argv[2], argv[3]);
		return 2;
	}
	if (argc == 5) {
		char *end;
		arg = strtod(argv[4], &end);
		if (*end || arg <= 0)
			return usage();
	}
	if (!strcmp(cmd, "server") && argc == 4)
		return server();
	if (!strcmp(cmd, "quit") && argc == 4)
		return quit();
	if (argc != 5)
		return usage();
	if (!strcmp(cmd, "wait"))
		return wait_server(arg);
	if (!strcmp(cmd, "echo"))
		return echo_many((int)arg);
	if (!strcmp(cmd, "send") || !strcmp(cmd, "recv"))
		return stream(cmd[0] == 's', (unsigned long long)(arg * 1048576.0));
	if (!strcmp(cmd, "rate"))
		return rate(arg);
	return usage();
}
