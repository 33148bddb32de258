/* TSI proxy: validation of the guest's request and the host-side connect (inet and confined UNIX). */
#define LOG_MODULE "tsi"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/tsi/tsi_priv.h"
#include "util/log.h"

#define REQ_SIZE sizeof(struct krun_tsi_request)

static bool inet_family(uint16_t f)
{
	return f == AF_INET || f == AF_INET6;
}

/* Fields checked in wire order; the first bad one decides the errno the guest sees. */
static int check_fields(const struct krun_tsi_request *r)
{
	if (r->magic != KRUN_TSI_MAGIC || r->version != KRUN_TSI_VERSION)
		return -EPROTO;
	if (r->op == KRUN_TSI_OP_DNS)
		return r->family || r->port || r->path_len ? -EINVAL : 0;
	if (r->op == KRUN_TSI_OP_DGRAM) {
		if (!inet_family(r->family))
			return -EAFNOSUPPORT;
		if (r->type != SOCK_DGRAM)
			return -EPROTONOSUPPORT;
		return r->port || r->path_len ? -EINVAL : 0;
	}
	if (r->op != KRUN_TSI_OP_CONNECT)
		return -EOPNOTSUPP;
	if (!inet_family(r->family) && r->family != AF_UNIX)
		return -EAFNOSUPPORT;
	/* UDP is inet only; the proxy checks that it came on a seqpacket connection. */
	if (r->type != SOCK_STREAM && (r->type != SOCK_DGRAM || !inet_family(r->family)))
		return -EPROTONOSUPPORT;
	if (inet_family(r->family) && (r->path_len || !r->port))
		return -EINVAL;
	if (r->family == AF_UNIX && (r->port || !r->path_len || r->path_len > KRUN_TSI_PATH_MAX))
		return -EINVAL;
	return 0;
}

int tsi_req_check(const uint8_t *buf, size_t len, size_t *need)
{
	struct krun_tsi_request r;
	int err;

	*need = REQ_SIZE;
	if (len < REQ_SIZE)
		return 1;
	memcpy(&r, buf, sizeof(r));
	err = check_fields(&r);
	if (err)
		return err;
	*need = REQ_SIZE + r.path_len;
	if (len < *need)
		return 1;
	if (len > *need)
		return -EPROTO;  /* payload before our response: the init broke the protocol */
	if (r.family == AF_UNIX && memchr(buf + REQ_SIZE, '\0', r.path_len))
		return -EINVAL;
	return 0;
}

unsigned int tsi_req_timeout(const struct tsi_proxy *p, uint32_t timeout_ms)
{
	return timeout_ms && timeout_ms < p->timeout_ms ? timeout_ms : p->timeout_ms;
}

static socklen_t inet_addr(const struct krun_tsi_request *r, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (r->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(r->port);
		memcpy(&sin->sin_addr, r->addr, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(r->port);
	memcpy(&sin6->sin6_addr, r->addr, 16);
	return sizeof(*sin6);
}

static int start_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	if (connect(fd, sa, len) == 0)
		return 0;
	return errno == EINPROGRESS ? 1 : -errno;
}

static int connect_inet(const struct krun_tsi_request *r, int *fd)
{
	struct sockaddr_storage ss;
	socklen_t len = inet_addr(r, &ss);
	int type = r->type == SOCK_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
	int s = socket(r->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), ret;

	if (s < 0)
		return -errno;
	ret = start_connect(s, (struct sockaddr *)&ss, len);
	if (ret < 0) {
		close(s);
		return ret;
	}
	*fd = s;
	return ret;
}

/* OP_DGRAM: an unconnected UDP socket on an ephemeral port; AF_INET6 also reaches IPv4. */
static int open_dgram(const struct krun_tsi_request *r, int *fd)
{
	struct krun_tsi_request any = { .family = r->family };
	struct sockaddr_storage ss;
	socklen_t len = inet_addr(&any, &ss);
	int s = socket(r->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), off = 0, err;

	if (s < 0)
		return -errno;
	if (r->family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	if (bind(s, (struct sockaddr *)&ss, len) < 0) {
		err = -errno;
		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

socklen_t tsi_req_dgram_peer(int sock_family, const struct krun_tsi_dgram *h,
			     struct sockaddr_storage *ss)
{
	struct krun_tsi_request r = { .family = h->family, .port = h->port };

	if (!h->port || !inet_family(h->family) ||
	    (h->family == AF_INET6 && sock_family != AF_INET6))
		return 0;
	memcpy(r.addr, h->addr, sizeof(r.addr));
	if (h->family == AF_INET && sock_family == AF_INET6) {
		r.family = AF_INET6;
		memset(r.addr, 0, 10);
		r.addr[10] = r.addr[11] = 0xff;
		memcpy(r.addr + 12, h->addr, 4);
	}
	return inet_addr(&r, ss);
}

void tsi_req_dgram_header(const struct sockaddr_storage *ss, struct krun_tsi_dgram *h)
{
	memset(h, 0, sizeof(*h));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		h->family = AF_INET;
		h->port = ntohs(sin->sin_port);
		memcpy(h->addr, &sin->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		h->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			h->family = AF_INET;
			memcpy(h->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			h->family = AF_INET6;
			memcpy(h->addr, &sin6->sin6_addr, 16);
		}
	}
}

static const struct tsi_share_fd *find_share(const struct tsi_proxy *p, const char *tag, size_t n)
{
	for (unsigned int i = 0; i < p->nr_shares; i++)
		if (strlen(p->shares[i].tag) == n && !memcmp(p->shares[i].tag, tag, n))
			return &p->shares[i];
	return NULL;
}

/*
 * "<tag>/<relative path>" resolved beneath the share's directory only: no "..", absolute
 * symlinks or /proc magic links can lead out of it. Returns an O_PATH fd or -errno.
 */
static int open_in_share(const struct tsi_proxy *p, const char *path)
{
	const char *slash = strchr(path, '/');
	const struct tsi_share_fd *sh;
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	if (!slash || !slash[1])
		return -EINVAL;
	sh = find_share(p, path, (size_t)(slash - path));
	if (!sh)
		return -ENOENT;
	fd = syscall(SYS_openat2, sh->dirfd, slash + 1, &how, sizeof(how));
	if (fd < 0)
		return errno == EXDEV || errno == ELOOP ? -EACCES : -errno;
	return (int)fd;
}

static int connect_unix(const struct tsi_proxy *p, const char *path, int *fd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int pfd = open_in_share(p, path), s, ret;
	struct stat st;

	if (pfd < 0)
		return pfd;
	if (fstat(pfd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		close(pfd);
		return -ECONNREFUSED;   /* what connect() says for a path that is no socket */
	}
	/* The kernel follows the fd's magic link to the very inode we checked. */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "/proc/self/fd/%d", pfd);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		ret = -errno;
		close(pfd);
		return ret;
	}
	ret = start_connect(s, (struct sockaddr *)&sun, sizeof(sun));
	close(pfd);
	/* A full backlog: a blocking connect would wait; the guest sees it as refused. */
	if (ret == -EAGAIN)
		ret = -ECONNREFUSED;
	if (ret < 0) {
		close(s);
		return ret;
	}
	*fd = s;
	return ret;
}

int tsi_req_connect(struct tsi_proxy *p, const struct krun_tsi_request *req, const char *path,
		    int *fd)
{
	if (req->op == KRUN_TSI_OP_DNS) {
		if (!p->dns.family)
			return -ENETUNREACH;
		return connect_inet(&p->dns, fd);
	}
	if (req->op == KRUN_TSI_OP_DGRAM)
		return open_dgram(req, fd);
	if (req->family == AF_UNIX)
		return connect_unix(p, path, fd);
	return connect_inet(req, fd);
}

int tsi_req_finish(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

void tsi_req_response(int fd, int error, struct krun_tsi_response *resp)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);

	memset(resp, 0, sizeof(*resp));
	resp->magic = KRUN_TSI_MAGIC;
	resp->error = error;
	if (error || fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	resp->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
		resp->port = ntohs(sin->sin_port);
		memcpy(resp->addr, &sin->sin_addr, 4);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
		resp->port = ntohs(sin6->sin6_port);
		memcpy(resp->addr, &sin6->sin6_addr, 16);
	}
}
