/*
 * TSI guest side: a program's connect(). TCP to a non-local address (or to a local port no
 * guest program listens on: the host's loopback, as public libkrun does) and UNIX streams to
 * a socket on a virtio-fs share (tsi_unix.c) are impersonated: a vsock connection to the host
 * proxy replaces the program's socket. Everything else goes on into the kernel untouched.
 *
 * UDP: connect() on a datagram socket, by the same address rules (local ports a guest
 * program has bound stay local, e.g. the DNS stub), gets a SOCK_SEQPACKET vsock connection
 * whose messages the proxy relays as datagrams of a connected host UDP socket. Then send,
 * write, recv and read work as on a connected UDP socket; not covered: a second connect()
 * to change the peer (EISCONN). Unconnected sockets are tsi_udp.c's.
 *
 * Non-blocking sockets: the connect is completed before the program's call returns, so it
 * sees 0 or the final error at once instead of EINPROGRESS. POSIX allows that for
 * O_NONBLOCK (it happens on loopback too), and every correct event-loop client handles it;
 * the alternative (EINPROGRESS, then a socket that turns writable only after the host's
 * answer, with SO_ERROR telling its outcome) cannot be built from a vsock socket, which is
 * writable and error-free as soon as the proxy accepts. The cost: the calling thread waits
 * up to the connect timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

#define DEFAULT_TIMEOUT_MS 30000u

static bool v4_local(const uint8_t a[4])
{
	return a[0] == 127 || (a[0] | a[1] | a[2] | a[3]) == 0;
}

static bool v6_local(const struct in6_addr *a)
{
	return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a);
}

/*
 * The destination as a request, from the socket's domain and the address the program gave.
 * Returns 1 to impersonate, 0 to leave the call to the kernel (which also reports the
 * program's own mistakes: wrong family, short address, port 0).
 */
int tsi_classify_inet(int domain, const struct sockaddr_storage *ss, uint64_t len,
		    struct krun_tsi_request *r, bool *local)
{
	if (domain == AF_INET && ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		r->family = AF_INET;
		r->port = ntohs(sin->sin_port);
		memcpy(r->addr, &sin->sin_addr, 4);
		*local = v4_local(r->addr);
		return r->port != 0;
	}
	if (domain == AF_INET6 && ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		r->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			r->family = AF_INET;
			memcpy(r->addr, &sin6->sin6_addr.s6_addr[12], 4);
			*local = v4_local(r->addr);
		} else {
			r->family = AF_INET6;
			memcpy(r->addr, &sin6->sin6_addr, 16);
			*local = v6_local(&sin6->sin6_addr);
		}
		return r->port != 0;
	}
	return 0;
}

static int sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, level, name, &v, &len) < 0 ? -1 : v;
}

/* Stream sockets of TCP or UNIX, or inet datagram sockets of UDP. */
static bool our_type(int domain, int type, int proto)
{
	if (type == SOCK_STREAM)
		return proto == 0 || proto == IPPROTO_TCP;
	return type == SOCK_DGRAM && domain != AF_UNIX && (proto == 0 || proto == IPPROTO_UDP);
}

/* An unconnected, non-listening TCP, UDP or UNIX stream socket: the only kinds we take over. */
static bool plain_socket(int sfd, int *domain, int *type)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int proto = sockopt_int(sfd, SOL_SOCKET, SO_PROTOCOL);

	*domain = sockopt_int(sfd, SOL_SOCKET, SO_DOMAIN);
	*type = sockopt_int(sfd, SOL_SOCKET, SO_TYPE);
	if (*domain != AF_INET && *domain != AF_INET6 && *domain != AF_UNIX)
		return false;
	if (!our_type(*domain, *type, proto))
		return false;
	if (sockopt_int(sfd, SOL_SOCKET, SO_ACCEPTCONN) != 0)
		return false;
	return getpeername(sfd, (struct sockaddr *)&peer, &plen) < 0 && errno == ENOTCONN;
}

/* The program's SO_SNDTIMEO bounds a blocking connect, in Linux as here. */
static uint32_t send_timeout_ms(int sfd)
{
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);
	uint64_t ms;

	if (getsockopt(sfd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) < 0 || tv.tv_sec < 0)
		return 0;
	ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static void finish(struct tsi_pending *p)
{
	if (p->vfd >= 0)
		close(p->vfd);
	p->vfd = -1;
	p->used = false;
}

static void fail(int listener, struct tsi_pending *p, int error)
{
	tsi_reply(listener, p->id, -error);
	finish(p);
}

/* UDP rides a seqpacket connection: one message per datagram (virtio 1.2 5.10.6.6). */
static int open_vsock(int type)
{
	struct tsi_sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = KRUN_TSI_PORT,
				      .svm_cid = TSI_VMADDR_CID_HOST };
	int vtype = type == SOCK_DGRAM ? SOCK_SEQPACKET : SOCK_STREAM;
	int fd = socket(AF_VSOCK, vtype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint64_t size = TSI_VSOCK_BUF_BYTES;

	if (fd < 0)
		return -errno;
	/* More than the default 256 KiB in flight: the host streams on while the program reads. */
	setsockopt(fd, AF_VSOCK, TSI_SO_VM_SOCKETS_BUFFER_MAX_SIZE, &size, sizeof(size));
	setsockopt(fd, AF_VSOCK, TSI_SO_VM_SOCKETS_BUFFER_SIZE, &size, sizeof(size));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Takes over the socket: the request is built now, sent once the vsock connection is up. */
static void impersonate(int listener, const struct tsi_notif *n, const struct tsi_target *t,
			int sfd, struct krun_tsi_request *r, const struct sockaddr_storage *ss,
			uint64_t len, int domain, const char *path)
{
	struct tsi_pending *p = tsi_pending_alloc();
	uint32_t timeout;

	if (!p) {
		tsi_reply(listener, n->id, -ENOBUFS);
		return;
	}
	p->id = n->id;
	p->target_fd = (int)n->data.args[0];
	p->status_flags = fcntl(sfd, F_GETFL) & O_NONBLOCK;
	p->cloexec = tsi_target_cloexec(t, p->target_fd);
	p->domain = domain;
	p->peer = *ss;
	p->peer_len = domain == AF_INET ? sizeof(struct sockaddr_in) :
		      domain == AF_INET6 ? sizeof(struct sockaddr_in6) : (socklen_t)len;
	r->timeout_ms = send_timeout_ms(sfd);
	timeout = r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS;
	memcpy(p->req, r, sizeof(*r));
	memcpy(p->req + sizeof(*r), path, r->path_len);
	p->req_len = sizeof(*r) + r->path_len;
	p->deadline = tsi_now_ms() + (long)timeout + TSI_ANSWER_SLACK_MS;
	p->vfd = open_vsock(r->type);
	if (p->vfd < 0) {
		log_debug("tsi: no host proxy: %s", strerror(-p->vfd));
		fail(listener, p, ENETUNREACH);
	}
}

static void decide(int listener, const struct tsi_notif *n, const struct tsi_target *t,
		   const struct sockaddr_storage *ss, uint64_t len)
{
	struct krun_tsi_request r = { .magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION,
				      .op = KRUN_TSI_OP_CONNECT, .type = SOCK_STREAM };
	int sfd = tsi_target_getfd(t, (int)n->data.args[0]), domain, type, ours = 0;
	char path[KRUN_TSI_PATH_MAX + 1] = "";
	bool local = false;

	if (sfd >= 0 && plain_socket(sfd, &domain, &type)) {
		r.type = (uint16_t)type;
		if (domain == AF_UNIX)
			ours = tsi_unix_classify(t, ss, len, &r, path, sizeof(path));
		else
			ours = tsi_classify_inet(domain, ss, len, &r, &local) &&
			       !(local && (type == SOCK_DGRAM ? tsi_guest_udp_bound(r.port) :
					   tsi_guest_listens(r.port)));
	}
	if (ours)
		impersonate(listener, n, t, sfd, &r, ss, len, domain, path);
	else
		tsi_reply_continue(listener, n->id);
	if (sfd >= 0)
		close(sfd);
}

void tsi_connect_notif(int listener, const struct tsi_notif *n)
{
	struct sockaddr_storage ss;
	uint64_t len = n->data.args[2] & 0xffffffffu;
	struct tsi_target t;

	memset(&ss, 0, sizeof(ss));
	if (len < sizeof(sa_family_t) || len > sizeof(ss) || tsi_target_open(&t, listener, n)) {
		tsi_reply_continue(listener, n->id);
		return;
	}
	if (tsi_target_read(&t, n->data.args[1], &ss, (size_t)len) || !tsi_id_valid(listener, n->id))
		tsi_reply_continue(listener, n->id);
	else
		decide(listener, n, &t, &ss, len);
	tsi_target_close(&t);
}

/* The host's local address in the program's socket family (v4 in v4-mapped form for v6). */
static socklen_t local_name(const struct tsi_pending *p, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (p->domain == AF_UNIX) {
		ss->ss_family = AF_UNIX;    /* an unnamed socket, as a connecting one usually is */
		return sizeof(sa_family_t);
	}
	if (p->domain == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->resp.port);
		if (p->resp.family == AF_INET)
			memcpy(&sin->sin_addr, p->resp.addr, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(p->resp.port);
	if (p->resp.family == AF_INET6) {
		memcpy(&sin6->sin6_addr, p->resp.addr, 16);
	} else if (p->resp.family == AF_INET) {
		sin6->sin6_addr.s6_addr[10] = sin6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sin6->sin6_addr.s6_addr[12], p->resp.addr, 4);
	}
	return sizeof(*sin6);
}

/* The host connected: our vsock socket becomes the program's fd, same number and flags. */
static void install(int listener, struct tsi_pending *p)
{
	struct tsi_notif_addfd a = {
		.id = p->id, .flags = TSI_ADDFD_FLAG_SETFD, .srcfd = (uint32_t)p->vfd,
		.newfd = (uint32_t)p->target_fd, .newfd_flags = p->cloexec ? O_CLOEXEC : 0,
	};
	struct sockaddr_storage local;
	socklen_t llen = local_name(p, &local);

	if (fcntl(p->vfd, F_SETFL, p->status_flags) < 0 ||
	    ioctl(listener, TSI_IOCTL_NOTIF_ADDFD, &a) < 0) {
		/* ENOENT: the program is gone or was interrupted; the host side just closes. */
		if (errno != ENOENT)
			fail(listener, p, errno);
		else
			finish(p);
		return;
	}
	tsi_names_add(p->vfd, &p->peer, p->peer_len, &local, llen);
	tsi_reply(listener, p->id, 0);
	finish(p);
}

static void got_response(int listener, struct tsi_pending *p)
{
	if (p->resp.magic != KRUN_TSI_MAGIC) {
		log_debug("tsi: bad response from the host proxy");
		fail(listener, p, ECONNREFUSED);
	} else if (p->resp.error) {
		fail(listener, p, p->resp.error > 0 && p->resp.error < 4096 ? p->resp.error : EIO);
	} else {
		install(listener, p);
	}
}

static void send_request(int listener, struct tsi_pending *p)
{
	ssize_t n;

	if (p->req_off == 0 && sockopt_int(p->vfd, SOL_SOCKET, SO_ERROR) != 0) {
		log_debug("tsi: cannot reach the host proxy");
		fail(listener, p, ENETUNREACH);
		return;
	}
	n = send(p->vfd, p->req + p->req_off, p->req_len - p->req_off, MSG_NOSIGNAL);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		fail(listener, p, ENETUNREACH);
	else if (n > 0)
		p->req_off += (size_t)n;
}

void tsi_connect_progress(int listener, struct tsi_pending *p, short revents)
{
	ssize_t n;

	(void)revents;
	if (p->req_off < p->req_len) {
		send_request(listener, p);
		return;
	}
	n = recv(p->vfd, (char *)&p->resp + p->resp_got, sizeof(p->resp) - p->resp_got, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		fail(listener, p, ECONNREFUSED);    /* the proxy hung up without an answer */
		return;
	}
	if (n > 0)
		p->resp_got += (size_t)n;
	if (p->resp_got == sizeof(p->resp))
		got_response(listener, p);
}

void tsi_connect_timeout(int listener, struct tsi_pending *p)
{
	fail(listener, p, ETIMEDOUT);
}
