/* TSI host proxy: request validation, relay to loopback listeners, errors, confined AF_UNIX. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/krun_tsi.h"
#include "devices/tsi/tsi.h"
#include "devices/vsock/vsock.h"
#include "harness.h"
#include "util/evloop.h"

#define BIG (300 * 1024)

static struct evloop *loop;
static pthread_t loop_thread;
static bool loop_running = true;
static const struct vsock_backend_ops *ops;
static void *proxy;
static char base_dir[32], share_dir[64], outside_dir[64];
static int dns_lfd;     /* the "resolver" the proxy sends OP_DNS to */
static int call_efd;
/* A call to ops->connect made on the loop thread, as the device does. */
static struct { uint32_t port; uint16_t type; int ret, fd; int done_efd; } call;

static void on_call(void *opaque, uint32_t events)
{
	uint64_t v;

	(void)opaque;
	(void)events;
	if (read(call_efd, &v, sizeof(v)) != sizeof(v))
		return;
	call.fd = -1;
	call.ret = ops->connect(proxy, call.port, 5000, call.type, &call.fd);
	v = 1;
	if (write(call.done_efd, &v, sizeof(v)) != sizeof(v))
		abort();
}

static int device_connect_type(uint32_t port, uint16_t type, int *fd)
{
	uint64_t v = 1;

	call.port = port;
	call.type = type;
	if (write(call_efd, &v, sizeof(v)) != sizeof(v) || read(call.done_efd, &v, sizeof(v)) != sizeof(v))
		abort();
	*fd = call.fd;
	return call.ret;
}

static int device_connect(uint32_t port, int *fd)
{
	return device_connect_type(port, VIRTIO_VSOCK_TYPE_STREAM, fd);
}

static void *run_loop(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static int listen_on(int family, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len))
		abort();
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				      ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static struct krun_tsi_request inet_req(int family, const char *addr, uint16_t port)
{
	struct krun_tsi_request r = {
		.magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION, .op = KRUN_TSI_OP_CONNECT,
		.family = (uint16_t)family, .type = SOCK_STREAM, .port = port,
	};

	inet_pton(family, addr, r.addr);
	return r;
}

/* Sends a request (+ path), reads the response with a deadline; -1 on any transport trouble. */
static int exchange(int fd, const struct krun_tsi_request *r, const char *path,
		    struct krun_tsi_response *resp)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	if (send(fd, r, sizeof(*r), MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
		return -1;
	/* The proxy may refuse on the header alone and close before the path: read its answer. */
	if (path && send(fd, path, r->path_len, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
	    errno != ECONNRESET)
		return -1;
	while (got < sizeof(*resp)) {
		if (poll(&pfd, 1, 5000) != 1)
			return -1;
		ssize_t n = recv(fd, (char *)resp + got, sizeof(*resp) - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return resp->magic == KRUN_TSI_MAGIC ? 0 : -1;
}

/* The proxy's error for a request, or -1; the connection must then end. */
static int request_error(const struct krun_tsi_request *r, const char *path)
{
	struct krun_tsi_response resp;
	struct pollfd pfd;
	char c;
	int fd, err = -1;

	if (device_connect(KRUN_TSI_PORT, &fd))
		return -2;
	fcntl(fd, F_SETFL, 0);
	if (exchange(fd, r, path, &resp) == 0)
		err = resp.error;
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	/* EOF, or a reset when the proxy closed with our surplus bytes unread. */
	if (err > 0 && (poll(&pfd, 1, 5000) != 1 || recv(fd, &c, 1, 0) > 0))
		err = -3;   /* refused, yet the connection stayed open */
	close(fd);
	return err;
}

static void test_other_port_refused(void)
{
	int fd;

	CHECK_EQ(device_connect(KRUN_TSI_PORT + 7, &fd), -ECONNREFUSED);
}

static void test_bad_requests(void)
{
	struct krun_tsi_request r = inet_req(AF_INET, "127.0.0.1", 9);

	r.magic ^= 1;
	CHECK_EQ(request_error(&r, NULL), EPROTO);
	r = inet_req(AF_INET, "127.0.0.1", 9);
	r.version = 2;
	CHECK_EQ(request_error(&r, NULL), EPROTO);
	r = inet_req(AF_INET, "127.0.0.1", 9);
	r.op = 77;
	CHECK_EQ(request_error(&r, NULL), EOPNOTSUPP);
	r.op = KRUN_TSI_OP_CONNECT;
	r.family = AF_PACKET;
	CHECK_EQ(request_error(&r, NULL), EAFNOSUPPORT);
	r.family = AF_INET;
	r.type = SOCK_RAW;
	CHECK_EQ(request_error(&r, NULL), EPROTONOSUPPORT);
	r.type = SOCK_STREAM;
	r.port = 0;
	CHECK_EQ(request_error(&r, NULL), EINVAL);
	r.port = 9;
	r.path_len = 3;
	CHECK_EQ(request_error(&r, "abc"), EINVAL);
	r.family = AF_UNIX;
	r.port = 0;
	r.path_len = KRUN_TSI_PATH_MAX + 1;
	CHECK_EQ(request_error(&r, NULL), EINVAL);
	r.path_len = 5;
	CHECK_EQ(request_error(&r, "sh\0/s"), EINVAL);
}

struct server {
	int lfd, fd;
	size_t got;
	unsigned long long sum;
};

static void *server_echo(void *arg)
{
	struct server *s = arg;
	static char buf[65536];
	ssize_t n;

	s->fd = accept(s->lfd, NULL, NULL);
	s->got = 0;
	while ((n = recv(s->fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			s->sum = s->sum * 31 + (unsigned char)buf[i];
		s->got += (size_t)n;
	}
	/* Guest's half-close arrived: answer with BIG bytes, then close. */
	for (size_t off = 0; off < BIG; off += sizeof(buf)) {
		size_t len = BIG - off < sizeof(buf) ? BIG - off : sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)((off + i) * 7);
		if (send(s->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
			break;
	}
	close(s->fd);
	return NULL;
}

/* Byte-exact both ways with half-close in each direction. */
static void relay_roundtrip(int family, const char *addr)
{
	struct server s = { .fd = -1 };
	struct krun_tsi_response resp;
	struct krun_tsi_request r;
	static char buf[BIG];
	unsigned long long sum = 0;
	size_t got = 0;
	pthread_t th;
	uint16_t port;
	int fd;
	ssize_t n;

	s.lfd = listen_on(family, addr, &port);
	r = inet_req(family, addr, port);
	pthread_create(&th, NULL, server_echo, &s);
	CHECK_EQ(device_connect(KRUN_TSI_PORT, &fd), 0);
	fcntl(fd, F_SETFL, 0);
	CHECK_EQ(exchange(fd, &r, NULL, &resp), 0);
	CHECK_EQ(resp.error, 0);
	CHECK_EQ(resp.family, family);
	CHECK(resp.port != 0);
	for (size_t i = 0; i < BIG; i++) {
		buf[i] = (char)(i * 13 + 5);
		sum = sum * 31 + (unsigned char)buf[i];
	}
	CHECK_EQ(send(fd, buf, BIG, MSG_NOSIGNAL), BIG);
	shutdown(fd, SHUT_WR);
	while ((n = recv(fd, buf + got, BIG - got, 0)) > 0)
		got += (size_t)n;
	pthread_join(th, NULL);
	close(s.lfd);
	CHECK_EQ(n, 0);
	CHECK_EQ(s.got, BIG);
	CHECK(s.sum == sum);
	CHECK_EQ(got, BIG);
	for (size_t i = 0; i < BIG; i++)
		CHECK_EQ((unsigned char)buf[i], (unsigned char)(i * 7));
	close(fd);
}

static void test_relay_ipv4(void)
{
	relay_roundtrip(AF_INET, "127.0.0.1");
}

static void test_relay_ipv6(void)
{
	relay_roundtrip(AF_INET6, "::1");
}

static void test_refused_port(void)
{
	uint16_t port;
	int lfd = listen_on(AF_INET, "127.0.0.1", &port);
	struct krun_tsi_request r;

	close(lfd);
	r = inet_req(AF_INET, "127.0.0.1", port);
	CHECK_EQ(request_error(&r, NULL), ECONNREFUSED);
}

static int unix_listener(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 4))
		abort();
	return fd;
}

static int unix_error(const char *path)
{
	struct krun_tsi_request r = {
		.magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION, .op = KRUN_TSI_OP_CONNECT,
		.family = AF_UNIX, .type = SOCK_STREAM, .path_len = (uint16_t)strlen(path),
	};

	return request_error(&r, path);
}

static void test_unix_confined(void)
{
	char in[128], out[128], link[128], file[128];
	int lin, lout, fd;

	snprintf(in, sizeof(in), "%s/sock", share_dir);
	snprintf(out, sizeof(out), "%s/sock", outside_dir);
	snprintf(link, sizeof(link), "%s/escape", share_dir);
	snprintf(file, sizeof(file), "%s/file", share_dir);
	lin = unix_listener(in);
	lout = unix_listener(out);
	unlink(link);
	CHECK_EQ(symlink(out, link), 0);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	/* A socket in the share: accepted; its peer is the test's listener. */
	CHECK_EQ(unix_error("sh/sock"), 0);
	fd = accept(lin, NULL, NULL);
	CHECK(fd >= 0);
	close(fd);
	/* Every way out of the share is refused, and nothing reaches the outside listener. */
	CHECK_EQ(unix_error("sh/escape"), EACCES);
	CHECK_EQ(unix_error("sh/../out/sock"), EACCES);
	CHECK_EQ(unix_error("sh//tmp/x"), EACCES);
	CHECK_EQ(unix_error("sh/../../../../../proc/self/cwd"), EACCES);
	CHECK_EQ(unix_error("nosuch/sock"), ENOENT);
	CHECK_EQ(unix_error("sh/"), EINVAL);
	CHECK_EQ(unix_error("sh"), EINVAL);
	CHECK_EQ(unix_error("sh/missing"), ENOENT);
	CHECK_EQ(unix_error("sh/file"), ECONNREFUSED);
	fcntl(lout, F_SETFL, O_NONBLOCK);
	CHECK(accept(lout, NULL, NULL) < 0 && errno == EAGAIN);
	close(lin);
	close(lout);
}

/* OP_DNS: a stream to the configured resolver, bytes (DNS-over-TCP frames) unchanged. */
static void test_dns(void)
{
	struct krun_tsi_request r = {
		.magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION, .op = KRUN_TSI_OP_DNS,
		.type = SOCK_STREAM,
	};
	struct krun_tsi_response resp;
	char buf[16];
	int fd, sfd;

	CHECK_EQ(device_connect(KRUN_TSI_PORT, &fd), 0);
	fcntl(fd, F_SETFL, 0);
	CHECK_EQ(exchange(fd, &r, NULL, &resp), 0);
	CHECK_EQ(resp.error, 0);
	sfd = accept(dns_lfd, NULL, NULL);
	CHECK(sfd >= 0);
	CHECK_EQ(send(fd, "\0\3abc", 5, 0), 5);
	CHECK_EQ(recv(sfd, buf, 5, MSG_WAITALL), 5);
	CHECK(!memcmp(buf, "\0\3abc", 5));
	CHECK_EQ(send(sfd, "\0\2xy", 4, 0), 4);
	CHECK_EQ(recv(fd, buf, 4, MSG_WAITALL), 4);
	CHECK(!memcmp(buf, "\0\2xy", 4));
	close(sfd);
	close(fd);
	r.family = AF_INET;
	CHECK_EQ(request_error(&r, NULL), EINVAL);
}

static void test_no_leaks(void)
{
	/* Every connection above ended; give the loop a moment to see the last closes. */
	for (int i = 0; i < 100 && tsi_proxy_nr_conns(proxy); i++)
		usleep(10000);
	CHECK_EQ(tsi_proxy_nr_conns(proxy), 0);
}

static int setup(void)
{
	struct tsi_share share = { .tag = "sh" };
	struct tsi_config cfg = { .shares = &share, .nr_shares = 1 };
	char dns[32];
	uint16_t dns_port;

	snprintf(base_dir, sizeof(base_dir), "/tmp/test_tsi.XXXXXX");
	if (!mkdtemp(base_dir))
		return -1;
	snprintf(share_dir, sizeof(share_dir), "%s/sh", base_dir);
	snprintf(outside_dir, sizeof(outside_dir), "%s/out", base_dir);
	if (mkdir(share_dir, 0700) || mkdir(outside_dir, 0700))
		return -1;
	share.host_dir = share_dir;
	dns_lfd = listen_on(AF_INET, "127.0.0.1", &dns_port);
	snprintf(dns, sizeof(dns), "127.0.0.1:%u", dns_port);
	cfg.dns_server = dns;
	loop = evloop_create();
	cfg.loop = loop;
	call_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call.done_efd = eventfd(0, EFD_CLOEXEC);
	if (!loop || call_efd < 0 || call.done_efd < 0 || tsi_proxy_create(&cfg, &ops, &proxy) ||
	    evloop_add(loop, call_efd, EPOLLIN, on_call, NULL))
		return -1;
	return pthread_create(&loop_thread, NULL, run_loop, loop);
}

static int udp_bound(int family, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (family == AF_INET)
		inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) || getsockname(fd, (struct sockaddr *)&ss, &len))
		abort();
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
				      ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* The echo server's side, done inline: one datagram in, the same back to its sender. */
static ssize_t udp_echo_one(int sfd)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	struct pollfd pfd = { .fd = sfd, .events = POLLIN };
	static char buf[65536];
	ssize_t n;

	if (poll(&pfd, 1, 5000) != 1)
		return -1;
	n = recvfrom(sfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
	if (n >= 0 && sendto(sfd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen) != n)
		return -1;
	return n;
}

static ssize_t recv_timeout(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 5000) == 1 ? recv(fd, buf, len, 0) : -1;
}

/* A UDP request on a seqpacket connection: each message is one datagram, both ways. */
static void udp_roundtrip(int family, const char *addr)
{
	static const size_t sizes[] = { 1, 5, 1400, 9000, 60000 };
	static char out[60000], in[65536];
	struct krun_tsi_response resp;
	struct krun_tsi_request r;
	uint16_t port;
	int sfd = udp_bound(family, addr, &port), fd;

	r = inet_req(family, addr, port);
	r.type = SOCK_DGRAM;
	CHECK_EQ(device_connect_type(KRUN_TSI_PORT, VIRTIO_VSOCK_TYPE_SEQPACKET, &fd), 0);
	fcntl(fd, F_SETFL, 0);
	CHECK_EQ(exchange(fd, &r, NULL, &resp), 0);
	CHECK_EQ(resp.error, 0);
	CHECK_EQ(resp.family, family);
	CHECK(resp.port != 0);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 11 + 3);
	/* Two datagrams in flight at once must stay two. */
	CHECK_EQ(send(fd, out, sizes[0], 0), (ssize_t)sizes[0]);
	CHECK_EQ(send(fd, out, sizes[1], 0), (ssize_t)sizes[1]);
	CHECK_EQ(udp_echo_one(sfd), (ssize_t)sizes[0]);
	CHECK_EQ(udp_echo_one(sfd), (ssize_t)sizes[1]);
	CHECK_EQ(recv_timeout(fd, in, sizeof(in)), (ssize_t)sizes[0]);
	CHECK_EQ(recv_timeout(fd, in, sizeof(in)), (ssize_t)sizes[1]);
	for (size_t k = 2; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		CHECK_EQ(send(fd, out, sizes[k], 0), (ssize_t)sizes[k]);
		CHECK_EQ(udp_echo_one(sfd), (ssize_t)sizes[k]);
		CHECK_EQ(recv_timeout(fd, in, sizeof(in)), (ssize_t)sizes[k]);
		CHECK(!memcmp(in, out, sizes[k]));
	}
	close(fd);
	close(sfd);
}

static void test_udp_ipv4(void)
{
	udp_roundtrip(AF_INET, "127.0.0.1");
}

static void test_udp_ipv6(void)
{
	udp_roundtrip(AF_INET6, "::1");
}

/* Datagrams only on a seqpacket connection, and a seqpacket connection carries only UDP. */
static void test_udp_type_mismatch(void)
{
	struct krun_tsi_request r = inet_req(AF_INET, "127.0.0.1", 9);
	struct krun_tsi_response resp;
	int fd;

	r.type = SOCK_DGRAM;
	CHECK_EQ(request_error(&r, NULL), EPROTOTYPE);
	r.type = SOCK_STREAM;
	CHECK_EQ(device_connect_type(KRUN_TSI_PORT, VIRTIO_VSOCK_TYPE_SEQPACKET, &fd), 0);
	fcntl(fd, F_SETFL, 0);
	CHECK_EQ(exchange(fd, &r, NULL, &resp), 0);
	CHECK_EQ(resp.error, EPROTOTYPE);
	close(fd);
}

/* OP_DGRAM: an unconnected host socket; each message names its peer (struct krun_tsi_dgram). */
static int dgram_open(int family, struct krun_tsi_response *resp)
{
	struct krun_tsi_request r = { .magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION,
				      .op = KRUN_TSI_OP_DGRAM, .family = (uint16_t)family,
				      .type = SOCK_DGRAM };
	int fd;

	if (device_connect_type(KRUN_TSI_PORT, VIRTIO_VSOCK_TYPE_SEQPACKET, &fd))
		return -1;
	fcntl(fd, F_SETFL, 0);
	if (exchange(fd, &r, NULL, resp)) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct krun_tsi_dgram dgram_peer(int family, const char *addr, uint16_t port)
{
	struct krun_tsi_dgram h = { .family = (uint16_t)family, .port = port };

	inet_pton(family, addr, h.addr);
	return h;
}

/* Sends len bytes to h's peer on fd; the echo must come back from that same peer. */
static int dgram_echo(int fd, int sfd, const struct krun_tsi_dgram *h, size_t len)
{
	static uint8_t out[sizeof(*h) + 2000], in[sizeof(*h) + 65536];

	memcpy(out, h, sizeof(*h));
	for (size_t i = 0; i < len; i++)
		out[sizeof(*h) + i] = (uint8_t)(i * 5 + len);
	if (send(fd, out, sizeof(*h) + len, 0) != (ssize_t)(sizeof(*h) + len) ||
	    udp_echo_one(sfd) != (ssize_t)len)
		return -1;
	if (recv_timeout(fd, in, sizeof(in)) != (ssize_t)(sizeof(*h) + len))
		return -2;
	return memcmp(in, out, sizeof(*h) + len) ? -3 : 0;
}

static void dgram_two_peers(int family, const char *addr)
{
	struct krun_tsi_response resp;
	uint16_t p1, p2;
	int s1 = udp_bound(family, addr, &p1), s2 = udp_bound(family, addr, &p2);
	int fd = dgram_open(family, &resp);
	struct krun_tsi_dgram h1 = dgram_peer(family, addr, p1), h2 = dgram_peer(family, addr, p2);

	CHECK(fd >= 0);
	CHECK_EQ(resp.error, 0);
	CHECK_EQ(resp.family, family);
	CHECK(resp.port != 0);
	/* One host socket for both peers, an empty datagram included (the header carries it). */
	CHECK_EQ(dgram_echo(fd, s1, &h1, 100), 0);
	CHECK_EQ(dgram_echo(fd, s2, &h2, 0), 0);
	CHECK_EQ(dgram_echo(fd, s1, &h1, 1400), 0);
	close(fd);
	close(s1);
	close(s2);
}

static void test_dgram_ipv4(void)
{
	dgram_two_peers(AF_INET, "127.0.0.1");
}

static void test_dgram_ipv6(void)
{
	dgram_two_peers(AF_INET6, "::1");
}

/* An IPv6 channel reaches IPv4 peers, named as AF_INET both ways (never v4-mapped). */
static void test_dgram_ipv6_to_ipv4(void)
{
	struct krun_tsi_response resp;
	uint16_t port;
	int sfd = udp_bound(AF_INET, "127.0.0.1", &port), fd = dgram_open(AF_INET6, &resp);
	struct krun_tsi_dgram h = dgram_peer(AF_INET, "127.0.0.1", port);

	CHECK(fd >= 0);
	CHECK_EQ(resp.error, 0);
	CHECK_EQ(dgram_echo(fd, sfd, &h, 42), 0);
	close(fd);
	close(sfd);
}

/* Malformed messages are dropped, the channel lives on; bad requests are refused. */
static void test_dgram_bad(void)
{
	struct krun_tsi_request r = { .magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION,
				      .op = KRUN_TSI_OP_DGRAM, .family = AF_INET, .type = SOCK_DGRAM };
	struct krun_tsi_response resp;
	uint16_t port;
	int sfd = udp_bound(AF_INET, "127.0.0.1", &port), fd;
	struct krun_tsi_dgram h = dgram_peer(AF_INET, "127.0.0.1", port), bad = h;

	CHECK_EQ(request_error(&r, NULL), EPROTOTYPE);     /* on a stream connection */
	r.port = 53;
	fd = -1;
	CHECK_EQ(device_connect_type(KRUN_TSI_PORT, VIRTIO_VSOCK_TYPE_SEQPACKET, &fd), 0);
	fcntl(fd, F_SETFL, 0);
	CHECK_EQ(exchange(fd, &r, NULL, &resp), 0);
	CHECK_EQ(resp.error, EINVAL);
	close(fd);
	fd = dgram_open(AF_INET, &resp);
	CHECK(fd >= 0);
	CHECK_EQ(send(fd, "short", 5, 0), 5);
	bad.port = 0;
	CHECK_EQ(send(fd, &bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	bad = h;
	bad.family = AF_INET6;  /* an IPv6 peer for an IPv4 socket */
	CHECK_EQ(send(fd, &bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	CHECK_EQ(dgram_echo(fd, sfd, &h, 7), 0);
	close(fd);
	close(sfd);
}

/* ---- the end: what the guest sent before the device went away still reaches the host */

struct slow_reader {
	int fd;
	unsigned int delay_ms;  /* before the first read; ~0u: never read */
	size_t got;
	unsigned long long sum;
};

static void *read_slowly(void *arg)
{
	struct slow_reader *r = arg;
	static char buf[65536];
	ssize_t n;

	if (r->delay_ms == ~0u)
		return NULL;
	usleep(r->delay_ms * 1000);
	while ((n = recv(r->fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			r->sum = r->sum * 31 + (unsigned char)buf[i];
		r->got += (size_t)n;
	}
	return NULL;
}

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A connection whose host peer does not read: the "device" writes until nothing more fits
 * (our pair end, the proxy's buffer, the host socket's buffers), then closes. *sum covers
 * what was written. Returns the byte count (0 when the connection failed); *host is the
 * accepted peer.
 */
static size_t fill_to_stall(int lfd, int *host, unsigned long long *sum)
{
	struct krun_tsi_response resp;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct krun_tsi_request r;
	static char buf[65536];
	size_t sent = 0;
	int fd, idle = 0;

	getsockname(lfd, (struct sockaddr *)&sin, &len);
	r = inet_req(AF_INET, "127.0.0.1", ntohs(sin.sin_port));
	*sum = 0;
	*host = -1;
	if (device_connect(KRUN_TSI_PORT, &fd))
		return 0;
	fcntl(fd, F_SETFL, 0);
	if (exchange(fd, &r, NULL, &resp) || resp.error) {
		close(fd);
		return 0;
	}
	*host = accept(lfd, NULL, NULL);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* Idle three rounds in a row: the proxy's loop has moved all it can. */
	while (idle < 3) {
		ssize_t n;
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)((sent + i) * 13 + 1);
		n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				*sum = *sum * 31 + (unsigned char)buf[i];
			sent += (size_t)n;
			idle = 0;
			continue;
		}
		idle++;
		usleep(30000);
	}
	close(fd);
	return sent;
}

/*
 * The device's reset at the VM's end, from this thread once the loop is stopped (the last
 * test): one host peer reads after a while and must get every byte the guest had sent, the
 * other never reads and must not hold the reset beyond its bound.
 */
static void test_reset_passes_last_bytes(void)
{
	struct slow_reader slow = { .delay_ms = 300 }, never = { .delay_ms = ~0u };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	unsigned long long sum = 0, ignored;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 64 << 10;
	socklen_t len = sizeof(sin);
	pthread_t th[2];
	size_t sent;
	long t0, took;

	/* A small receive buffer: the host kernel holds little, the proxy and the pair the rest. */
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 2) ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len))
		abort();
	sent = fill_to_stall(lfd, &slow.fd, &sum);
	CHECK(fill_to_stall(lfd, &never.fd, &ignored) > TSI_RELAY_BUF);
	CHECK(sent > TSI_RELAY_BUF);
	evloop_stop(loop);
	pthread_join(loop_thread, NULL);
	loop_running = false;
	pthread_create(&th[0], NULL, read_slowly, &slow);
	pthread_create(&th[1], NULL, read_slowly, &never);
	t0 = mono_ms();
	ops->reset(proxy);
	took = mono_ms() - t0;
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK_EQ(slow.got, sent);
	CHECK(slow.sum == sum);
	CHECK(took >= (long)TSI_LINGER_MS - 100);  /* waited for the peer that never reads */
	CHECK(took <= (long)TSI_LINGER_MS + 1500); /* and not much longer (slack for a loaded host) */
	CHECK_EQ(tsi_proxy_nr_conns(proxy), 0);
	close(slow.fd);
	close(never.fd);
	close(lfd);
}

static void remove_tree(void)
{
	static const char *const files[] = { "sh/sock", "sh/escape", "sh/file", "out/sock", "sh", "out" };
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", base_dir, files[i]);
		if (unlink(path))
			rmdir(path);
	}
	rmdir(base_dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (setup()) {
		printf("FAIL setup\n");
		return 1;
	}
	RUN_TEST(test_other_port_refused);
	RUN_TEST(test_bad_requests);
	RUN_TEST(test_relay_ipv4);
	RUN_TEST(test_relay_ipv6);
	RUN_TEST(test_refused_port);
	RUN_TEST(test_unix_confined);
	RUN_TEST(test_dns);
	RUN_TEST(test_udp_ipv4);
	RUN_TEST(test_udp_ipv6);
	RUN_TEST(test_udp_type_mismatch);
	RUN_TEST(test_dgram_ipv4);
	RUN_TEST(test_dgram_ipv6);
	RUN_TEST(test_dgram_ipv6_to_ipv4);
	RUN_TEST(test_dgram_bad);
	RUN_TEST(test_no_leaks);
	RUN_TEST(test_reset_passes_last_bytes);     /* last: it stops the loop */
	if (loop_running) {
		evloop_stop(loop);
		pthread_join(loop_thread, NULL);
	}
	ops->destroy(proxy);
	evloop_destroy(loop);
	remove_tree();
	return HARNESS_EXIT();
}
