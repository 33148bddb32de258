/* libFuzzer target: the TSI proxy's handling of the request bytes a hostile guest init sends. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/tsi/tsi_priv.h"
#include "fuzz_util.h"
#include "util/log.h"

/*
 * Input: one mode byte, then:
 *   even mode byte: the bytes of a request (struct krun_tsi_request + path) as the proxy reads
 *     them from the guest, checked with tsi_req_check. A valid AF_UNIX CONNECT is connected
 *     for real (tsi_req_connect) against a proxy whose one share "share" holds a listening
 *     socket and symlinks leading out of it; a valid inet request (CONNECT or DGRAM) is never
 *     connected (no real network traffic): its address goes through the OP_DGRAM peer
 *     conversion and back instead;
 *   odd mode byte: a raw struct krun_tsi_dgram (20 bytes) through that conversion, for a host
 *     socket of family AF_INET6 when bit 1 is set, else AF_INET.
 * Scratch tree (under TMPDIR):
 *   share/inside.sock        listening; the only socket a guest may reach
 *   share/file               a regular file (not a socket)
 *   share/sub/               with back.sock -> ../inside.sock and esc.sock -> ../../outside/outside.sock
 *   share/in.sock -> inside.sock, share/up -> .., share/out.sock -> ../outside/outside.sock,
 *   share/abs -> <top>/outside, share/absout.sock -> <top>/outside/outside.sock,
 *   share/cwd -> /proc/self/cwd
 *   outside/outside.sock     listening: a connection arriving here is a confinement failure
 */
#define REQ_SIZE sizeof(struct krun_tsi_request)

static char top[80], share_dir[128], outside_dir[128];
static char inside_sock[160], outside_sock[160];
static int inside_lfd = -1, outside_lfd = -1;
static struct tsi_share_fd share;
static struct tsi_proxy proxy;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void path_at(char *out, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n)
		abort();
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64))
		abort();
	return fd;
}

static void link_at(const char *target, const char *dir, const char *name)
{
	char path[256];

	path_at(path, sizeof(path), dir, name);
	if (symlink(target, path))
		abort();
}

static void cleanup(void)
{
	static const char *const share_entries[] = {
		"inside.sock", "file", "sub/back.sock", "sub/esc.sock", "in.sock", "up", "out.sock",
		"abs", "absout.sock", "cwd",
	};
	char path[256];

	close(inside_lfd);
	close(outside_lfd);
	close(share.dirfd);
	for (size_t i = 0; i < sizeof(share_entries) / sizeof(share_entries[0]); i++) {
		path_at(path, sizeof(path), share_dir, share_entries[i]);
		unlink(path);
	}
	path_at(path, sizeof(path), share_dir, "sub");
	rmdir(path);
	rmdir(share_dir);
	unlink(outside_sock);
	rmdir(outside_dir);
	rmdir(top);
}

static void make_tree(void)
{
	char path[256];
	int fd;

	path_at(share_dir, sizeof(share_dir), top, "share");
	path_at(outside_dir, sizeof(outside_dir), top, "outside");
	path_at(path, sizeof(path), share_dir, "sub");
	if (mkdir(share_dir, 0700) || mkdir(outside_dir, 0700) || mkdir(path, 0700))
		abort();
	path_at(inside_sock, sizeof(inside_sock), share_dir, "inside.sock");
	path_at(outside_sock, sizeof(outside_sock), outside_dir, "outside.sock");
	inside_lfd = listen_at(inside_sock);
	outside_lfd = listen_at(outside_sock);
	path_at(path, sizeof(path), share_dir, "file");
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		abort();
	close(fd);
	path_at(path, sizeof(path), share_dir, "sub");
	link_at("../inside.sock", path, "back.sock");
	link_at("../../outside/outside.sock", path, "esc.sock");
	link_at("inside.sock", share_dir, "in.sock");
	link_at("..", share_dir, "up");
	link_at("../outside/outside.sock", share_dir, "out.sock");
	link_at(outside_dir, share_dir, "abs");
	link_at(outside_sock, share_dir, "absout.sock");
	link_at("/proc/self/cwd", share_dir, "cwd");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	log_set_level(getenv("FUZZ_LOG") ? LOG_LEVEL_TRACE : LOG_LEVEL_OFF);
	snprintf(top, sizeof(top), "%s/krun-fuzz-tsi.XXXXXX", tmp && strlen(tmp) < 50 ? tmp : "/tmp");
	if (!mkdtemp(top))
		abort();
	make_tree();
	share.tag = "share";
	share.dirfd = open(share_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (share.dirfd < 0)
		abort();
	proxy.shares = &share;
	proxy.nr_shares = 1;
	proxy.timeout_ms = TSI_DEFAULT_TIMEOUT_MS;
	proxy.max_conns = TSI_DEFAULT_MAX_CONNS;
	atexit(cleanup);
	return 0;
}

/* Connections that reached a listener: none may ever reach the one outside the share. */
static unsigned int drain(int lfd)
{
	unsigned int n = 0;
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		n++;
	}
	return n;
}

static void check_unix(const struct krun_tsi_request *req, const uint8_t *bytes)
{
	char path[KRUN_TSI_PATH_MAX + 1];
	struct krun_tsi_response resp;
	int fd = -1, ret;

	memcpy(path, bytes, req->path_len);
	path[req->path_len] = '\0';
	ret = tsi_req_connect(&proxy, req, path, &fd);
	if (ret >= 0) {
		tsi_req_response(fd, ret ? 0 : tsi_req_finish(fd), &resp);
		if (resp.magic != KRUN_TSI_MAGIC)
			__builtin_trap();
		close(fd);
	} else if (fd != -1) {
		__builtin_trap();       /* a failure must not hand out a descriptor */
	}
	if (drain(outside_lfd)) {
		fprintf(stderr, "fuzz_tsi: \"%s\" reached the socket outside the share\n", path);
		__builtin_trap();
	}
	/* The plain path to the share's socket must work: a check that refuses all is no check. */
	if (drain(inside_lfd) == 0 && !strcmp(path, "share/inside.sock")) {
		fprintf(stderr, "fuzz_tsi: \"%s\" did not connect (%d)\n", path, ret);
		__builtin_trap();
	}
}

static bool v4_mapped(const uint8_t *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	return !memcmp(a, prefix, sizeof(prefix));
}

/* Header -> host address -> header: what the guest sent must come back (IPv4 never mapped). */
static void check_dgram(const struct krun_tsi_dgram *h, int sock_family)
{
	struct sockaddr_storage ss, ss2;
	struct krun_tsi_dgram back, again;
	socklen_t len = tsi_req_dgram_peer(sock_family, h, &ss), len2;
	bool usable = h->port && (h->family == AF_INET || (h->family == AF_INET6 && sock_family == AF_INET6));
	size_t alen;

	if (!usable) {
		if (len)
			__builtin_trap();
		return;
	}
	if (!len || ss.ss_family != sock_family ||
	    len != (sock_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		__builtin_trap();
	tsi_req_dgram_header(&ss, &back);
	if (h->family == AF_INET6 && v4_mapped(h->addr)) {
		/* The guest named an IPv4 peer the IPv6 way: it comes back as AF_INET. */
		if (back.family != AF_INET || memcmp(back.addr, h->addr + 12, 4))
			__builtin_trap();
	} else {
		alen = h->family == AF_INET ? 4 : 16;
		if (back.family != h->family || memcmp(back.addr, h->addr, alen))
			__builtin_trap();
	}
	if (back.port != h->port)
		__builtin_trap();
	for (size_t i = back.family == AF_INET ? 4 : 16; i < sizeof(back.addr); i++)
		if (back.addr[i])
			__builtin_trap();
	/* And the header that came back is a fixed point: same address, same header. */
	len2 = tsi_req_dgram_peer(sock_family, &back, &ss2);
	if (len2 != len || memcmp(&ss, &ss2, len))
		__builtin_trap();
	tsi_req_dgram_header(&ss2, &again);
	if (memcmp(&again, &back, sizeof(back)))
		__builtin_trap();
}

static void check_request(const uint8_t *buf, size_t len)
{
	struct krun_tsi_request req;
	struct krun_tsi_dgram h = { 0 };
	size_t need = 0, need2 = 0;
	int ret = tsi_req_check(buf, len, &need);
	unsigned int timeout;

	if (ret == 1) {
		if (need <= len || need > REQ_SIZE + KRUN_TSI_PATH_MAX)
			__builtin_trap();
		return;
	}
	if (ret < 0)
		return;
	if (ret != 0 || need != len || len < REQ_SIZE)
		__builtin_trap();
	/* One byte short of a valid request only ever asks for that byte. */
	if (tsi_req_check(buf, len - 1, &need2) != 1 || need2 != len)
		__builtin_trap();
	memcpy(&req, buf, sizeof(req));
	timeout = tsi_req_timeout(&proxy, req.timeout_ms);
	if (!timeout || timeout > proxy.timeout_ms)
		__builtin_trap();
	if (req.op == KRUN_TSI_OP_CONNECT && req.family == AF_UNIX) {
		check_unix(&req, buf + REQ_SIZE);
		return;
	}
	if (req.op == KRUN_TSI_OP_DNS)
		return;         /* would reach the host's resolver */
	h.family = req.family;
	h.port = req.port ? req.port : 53;      /* OP_DGRAM requests carry port 0 */
	memcpy(h.addr, req.addr, sizeof(h.addr));
	check_dgram(&h, AF_INET6);
	check_dgram(&h, AF_INET);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct krun_tsi_dgram h;
	int fds_before = t_open_fds();

	if (size < 1 || size > 1 + REQ_SIZE + KRUN_TSI_PATH_MAX + 64)
		return 0;
	if (data[0] & 1) {
		if (size < 1 + sizeof(h))
			return 0;
		memcpy(&h, data + 1, sizeof(h));
		check_dgram(&h, data[0] & 2 ? AF_INET6 : AF_INET);
	} else {
		check_request(data + 1, size - 1);
	}
	fuzz_check_fds("fuzz_tsi", fds_before);
	return 0;
}
