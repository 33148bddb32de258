/*
 * TSI guest side: unconnected UDP. sendto() with a destination, or sendmsg() whose msghdr
 * names one, on an inet UDP socket that is not connected: the supervisor sends the datagram
 * itself on the socket's channel (a seqpacket vsock connection of op KRUN_TSI_OP_DGRAM, to an
 * unconnected host UDP socket) and answers the call with its length. Datagrams from any peer
 * come back on the channel with their source; we hand each to the program's socket through a
 * raw socket on the loopback, from that very source. So recvfrom()/recvmsg() are never
 * intercepted and still see the true peer, and the socket stays the program's own: we only
 * bind it to an ephemeral port (as the kernel's sendto would) so it has an address to reach.
 *
 * A channel is found by the socket's inode; we cannot see the program's close(), so a sweep
 * drops the channels of sockets gone from /proc/net/udp{,6}. Not covered: ancillary data on
 * send (IP_PKTINFO, ...), MSG_MORE corking, sendmmsg(), and datagrams from peers the socket
 * never sent to through us only arrive on the host socket the proxy opened for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"
#include "tsi_pkt.h"

#define HDR sizeof(struct krun_tsi_dgram)
#define SWEEP_MS 5000
#define HANDSHAKE_TIMEOUT_S 5
/* How long a blocking sender waits for room on its channel before the datagram is lost. */
#define SEND_WAIT_MS 1000
/* Datagrams handed in per channel per poll round: one busy peer must not starve the rest. */
#define BATCH 64
#define MAX_IOV 1024    /* UIO_MAXIOV */

/* struct user_msghdr and struct iovec of the x86-64 ABI (the only one the filter traps). */
struct user_msghdr {
	uint64_t name;
	int32_t namelen;
	uint32_t pad;
	uint64_t iov, iovlen, control, controllen;
	uint32_t flags, pad2;
};

struct user_iovec {
	uint64_t base, len;
};

struct chan {
	bool used;
	ino_t ino;          /* of the program's socket */
	int vfd;
	/* Where datagrams from an IPv4 / IPv6 peer go in the guest; family 0: nowhere. */
	struct krun_tsi_dgram to4, to6;
};

static struct chan chans[TSI_MAX_UDP];
static unsigned int nr_chans;
static int raw4 = -1, raw6 = -1;
static long next_sweep;
static uint8_t msg[HDR + KRUN_TSI_DGRAM_MAX];
static uint8_t pkt[TSI_PKT_MAX];
static struct user_iovec iov[MAX_IOV];

void tsi_udp_init(void)
{
	raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw4 < 0 || raw6 < 0)
		log_debug("tsi: no raw socket: datagrams from the host cannot be handed in: %m");
}

static ino_t inode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static void chan_close(struct chan *c)
{
	close(c->vfd);
	c->used = false;
	nr_chans--;
}

/* The cheap test first: most sendmsg calls name no peer and go on into the kernel at once. */
static bool msg_names_peer(const struct tsi_notif *n)
{
	struct user_msghdr h = { 0 };
	struct iovec local = { .iov_base = &h, .iov_len = sizeof(h) };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)n->data.args[1], .iov_len = sizeof(h) };

	/* A failed read: let the full path decide (it re-reads from a verified process). */
	if (process_vm_readv((pid_t)n->pid, &local, 1, &remote, 1, 0) != (ssize_t)sizeof(h))
		return true;
	return h.name && h.namelen;
}

static int sockopt_int(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, name, &v, &len) < 0 ? -1 : v;
}

static bool unconnected_udp(int sfd, int *domain)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int proto = sockopt_int(sfd, SO_PROTOCOL);

	*domain = sockopt_int(sfd, SO_DOMAIN);
	if ((*domain != AF_INET && *domain != AF_INET6) || sockopt_int(sfd, SO_TYPE) != SOCK_DGRAM ||
	    (proto != 0 && proto != IPPROTO_UDP))
		return false;
	return getpeername(sfd, (struct sockaddr *)&peer, &plen) < 0 && errno == ENOTCONN;
}

/* sendto(fd, buf, len, flags, addr, alen): the destination and the data (into msg). */
static int read_sendto(const struct tsi_target *t, const struct tsi_notif *n,
		       struct sockaddr_storage *ss, uint64_t *alen, size_t *len)
{
	*alen = n->data.args[5] & 0xffffffffu;
	*len = (size_t)n->data.args[2];
	if (*alen < sizeof(sa_family_t) || *alen > sizeof(*ss) ||
	    tsi_target_read(t, n->data.args[4], ss, (size_t)*alen))
		return 1;
	if (*len > KRUN_TSI_DGRAM_MAX)
		return -EMSGSIZE;
	return *len && tsi_target_read(t, n->data.args[1], msg + HDR, *len) ? 1 : 0;
}

/* sendmsg(fd, msghdr, flags): the same, the data gathered from the iovecs. */
static int read_sendmsg(const struct tsi_target *t, const struct tsi_notif *n,
			struct sockaddr_storage *ss, uint64_t *alen, size_t *len)
{
	struct user_msghdr h;
	uint64_t total = 0;

	if (tsi_target_read(t, n->data.args[1], &h, sizeof(h)))
		return 1;
	*alen = (uint32_t)h.namelen;
	if (!h.name || *alen < sizeof(sa_family_t) || *alen > sizeof(*ss) ||
	    tsi_target_read(t, h.name, ss, (size_t)*alen))
		return 1;
	if (h.iovlen > MAX_IOV)
		return -EMSGSIZE;
	if (h.iovlen && tsi_target_read(t, h.iov, iov, (size_t)h.iovlen * sizeof(iov[0])))
		return 1;
	for (uint64_t i = 0; i < h.iovlen; i++) {
		if (iov[i].len > KRUN_TSI_DGRAM_MAX || total + iov[i].len > KRUN_TSI_DGRAM_MAX)
			return -EMSGSIZE;
		if (iov[i].len && tsi_target_read(t, iov[i].base, msg + HDR + total, iov[i].len))
			return 1;
		total += iov[i].len;
	}
	*len = (size_t)total;
	return 0;
}

/* Loopback for a wildcard: a datagram we hand in must reach the socket. */
static void set_to(struct krun_tsi_dgram *to, int family, const void *addr, uint16_t port)
{
	static const uint8_t any[16];

	to->family = (uint16_t)family;
	to->port = port;
	memcpy(to->addr, addr, family == AF_INET ? 4 : 16);
	if (memcmp(to->addr, any, family == AF_INET ? 4 : 16))
		return;
	if (family == AF_INET) {
		to->addr[0] = 127;
		to->addr[3] = 1;
	} else {
		to->addr[15] = 1;
	}
}

/* As the kernel's sendto would: an unbound socket gets an ephemeral port (on any address). */
static int bind_and_locate(int sfd, int domain, struct chan *c)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)domain };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len = sizeof(ss);

	if (getsockname(sfd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): getsockname filled it */
	if ((domain == AF_INET ? sin->sin_port : sin6->sin6_port) == 0) {
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)domain;
		len = domain == AF_INET ? sizeof(*sin) : sizeof(*sin6);
		if (bind(sfd, (struct sockaddr *)&ss, len) < 0 && errno != EINVAL)
			return -errno;
		len = sizeof(ss);
		if (getsockname(sfd, (struct sockaddr *)&ss, &len) < 0)
			return -errno;
	}
	memset(&c->to4, 0, sizeof(c->to4));
	memset(&c->to6, 0, sizeof(c->to6));
	if (domain == AF_INET) {
		set_to(&c->to4, AF_INET, &sin->sin_addr, ntohs(sin->sin_port));
	} else if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		set_to(&c->to4, AF_INET, &sin6->sin6_addr.s6_addr[12], ntohs(sin6->sin6_port));
	} else {
		set_to(&c->to6, AF_INET6, &sin6->sin6_addr, ntohs(sin6->sin6_port));
		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))    /* dual-stack unless V6ONLY */
			set_to(&c->to4, AF_INET, &sin6->sin6_addr.s6_addr[12], ntohs(sin6->sin6_port));
	}
	return 0;
}

/* The channel's handshake, synchronous: the proxy answers at once (it opens no connection). */
static int open_channel(int domain)
{
	struct tsi_sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = KRUN_TSI_PORT,
				      .svm_cid = TSI_VMADDR_CID_HOST };
	struct krun_tsi_request r = { .magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION,
				      .op = KRUN_TSI_OP_DGRAM, .family = (uint16_t)domain,
				      .type = SOCK_DGRAM };
	struct timeval tv = { .tv_sec = HANDSHAKE_TIMEOUT_S };
	struct krun_tsi_response resp;
	int fd = socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), err = ENETUNREACH;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, &r, sizeof(r), MSG_NOSIGNAL) == (ssize_t)sizeof(r) &&
	    recv(fd, &resp, sizeof(resp), 0) == (ssize_t)sizeof(resp) && resp.magic == KRUN_TSI_MAGIC) {
		err = resp.error > 0 && resp.error < 4096 ? resp.error : resp.error ? EIO : 0;
		if (!err && fcntl(fd, F_SETFL, O_NONBLOCK) == 0)
			return fd;
	}
	close(fd);
	return -err;
}

static struct chan *chan_find(ino_t ino)
{
	for (unsigned int i = 0; i < TSI_MAX_UDP; i++)
		if (chans[i].used && chans[i].ino == ino)
			return &chans[i];
	return NULL;
}

static struct chan *chan_get(int sfd, int domain, int *err)
{
	ino_t ino = inode_of(sfd);
	struct chan *c = ino ? chan_find(ino) : NULL;

	if (c || !ino)
		return c;
	if (nr_chans == TSI_MAX_UDP)
		tsi_udp_sweep();
	for (unsigned int i = 0; i < TSI_MAX_UDP && !c; i++)
		if (!chans[i].used)
			c = &chans[i];
	*err = -ENOBUFS;
	if (!c)
		return NULL;
	*err = bind_and_locate(sfd, domain, c);
	if (!*err)
		*err = c->vfd = open_channel(domain);
	if (*err < 0)
		return NULL;
	c->used = true;
	c->ino = ino;
	if (!nr_chans++)
		next_sweep = tsi_now_ms() + SWEEP_MS;
	return c;
}

/* The datagram in msg (header + len bytes) on the channel; a full channel loses it, as UDP may. */
static long chan_send(struct chan *c, size_t len, bool nonblock)
{
	struct pollfd p = { .fd = c->vfd, .events = POLLOUT };
	ssize_t n = send(c->vfd, msg, HDR + len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0 && errno == EAGAIN && !nonblock && poll(&p, 1, SEND_WAIT_MS) == 1)
		n = send(c->vfd, msg, HDR + len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n >= 0 || errno == EAGAIN)
		return n < 0 && nonblock ? -EAGAIN : (long)len;
	log_debug("tsi: udp channel lost: %m");
	chan_close(c);
	return -ENETUNREACH;
}

/* 1: the kernel's to answer; else 0 with *result the call's (a length or -errno). */
static int send_datagram(int listener, const struct tsi_target *t, const struct tsi_notif *n,
			 int sfd, long *result)
{
	bool is_msg = n->data.nr == SYS_sendmsg, local = false;
	struct krun_tsi_request r = { 0 };
	struct krun_tsi_dgram h = { 0 };
	struct sockaddr_storage ss;
	int domain, flags = (int)(is_msg ? n->data.args[2] : n->data.args[3]), ret, err = 0;
	uint64_t alen;
	size_t len = 0;
	struct chan *c;

	memset(&ss, 0, sizeof(ss));
	if (!unconnected_udp(sfd, &domain))
		return 1;
	ret = is_msg ? read_sendmsg(t, n, &ss, &alen, &len) : read_sendto(t, n, &ss, &alen, &len);
	if (ret > 0 || (ret == 0 && !tsi_classify_inet(domain, &ss, alen, &r, &local)))
		return 1;
	if (ret == 0 && local && tsi_guest_udp_bound(r.port))
		return 1;   /* a guest socket's port on the loopback: the kernel delivers it */
	if (!tsi_id_valid(listener, n->id))
		return 1;
	*result = ret;
	if (ret < 0)
		return 0;
	c = chan_get(sfd, domain, &err);
	if (!c) {
		*result = err;
		return 0;
	}
	h.family = r.family;
	h.port = r.port;
	memcpy(h.addr, r.addr, sizeof(h.addr));
	memcpy(msg, &h, sizeof(h));
	*result = chan_send(c, len, (flags & MSG_DONTWAIT) || (fcntl(sfd, F_GETFL) & O_NONBLOCK));
	return 0;
}

void tsi_udp_notif(int listener, const struct tsi_notif *n)
{
	struct tsi_target t;
	long result = 0;
	int sfd, ours = 0;

	if (n->data.nr == SYS_sendmsg && !msg_names_peer(n)) {
		tsi_reply_continue(listener, n->id);
		return;
	}
	if (tsi_target_open(&t, listener, n)) {
		tsi_reply_continue(listener, n->id);
		return;
	}
	sfd = tsi_target_getfd(&t, (int)n->data.args[0]);
	if (sfd >= 0) {
		ours = !send_datagram(listener, &t, n, sfd, &result);
		close(sfd);
	}
	if (!ours)
		tsi_reply_continue(listener, n->id);
	else if (result < 0)
		tsi_reply(listener, n->id, (int)result);
	else
		tsi_reply_value(listener, n->id, result);
	tsi_target_close(&t);
}

/* A datagram from the host (header + len bytes in msg), from its source to the socket. */
static void hand_in(const struct chan *c, size_t len)
{
	struct krun_tsi_dgram src;
	const struct krun_tsi_dgram *dst;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	size_t plen;

	memcpy(&src, msg, sizeof(src));
	dst = src.family == AF_INET ? &c->to4 : &c->to6;
	plen = dst->family ? tsi_pkt_udp(pkt, sizeof(pkt), &src, dst, msg + HDR, len) : 0;
	if (!plen)
		return;     /* no way into this socket (e.g. an IPv4 peer of an IPv6-only one) */
	ss.ss_family = dst->family;
	if (dst->family == AF_INET)
		memcpy(&sin->sin_addr, dst->addr, 4);
	else
		memcpy(&sin6->sin6_addr, dst->addr, 16);
	if (sendto(dst->family == AF_INET ? raw4 : raw6, pkt, plen, 0, (struct sockaddr *)&ss,
		   dst->family == AF_INET ? sizeof(*sin) : sizeof(*sin6)) < 0)
		log_debug("tsi: cannot hand a datagram in: %m");
}

static void chan_drain(struct chan *c)
{
	for (unsigned int i = 0; i < BATCH; i++) {
		ssize_t n = recv(c->vfd, msg, sizeof(msg), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < (ssize_t)HDR) {
			chan_close(c);  /* the proxy went away, or broke the protocol */
			return;
		}
		hand_in(c, (size_t)n - HDR);
	}
}

unsigned int tsi_udp_poll_add(struct pollfd *pfd)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < TSI_MAX_UDP; i++)
		if (chans[i].used)
			pfd[n++] = (struct pollfd){ .fd = chans[i].vfd, .events = POLLIN };
	return n;
}

void tsi_udp_poll_done(const struct pollfd *pfd, unsigned int n)
{
	for (unsigned int k = 0; k < n; k++) {
		struct chan *c = NULL;

		if (!pfd[k].revents)
			continue;
		for (unsigned int i = 0; i < TSI_MAX_UDP && !c; i++)
			if (chans[i].used && chans[i].vfd == pfd[k].fd)
				c = &chans[i];
		if (c)
			chan_drain(c);
	}
	if (nr_chans && tsi_now_ms() >= next_sweep)
		tsi_udp_sweep();
}

int tsi_udp_timeout(void)
{
	long left = next_sweep - tsi_now_ms();

	if (!nr_chans)
		return -1;
	return left < 0 ? 0 : (int)left;
}

/* Marks the channels whose socket is in this /proc/net table. */
static void mark_alive(const char *table, bool alive[TSI_MAX_UDP])
{
	FILE *f = fopen(table, "re");
	char line[256];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long ino;
		/* "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ..." */
		if (sscanf(line, " %*d: %*s %*s %*x %*s %*s %*s %*u %*d %lu", &ino) != 1)
			continue;
		for (unsigned int i = 0; i < TSI_MAX_UDP; i++)
			if (chans[i].used && chans[i].ino == (ino_t)ino)
				alive[i] = true;
	}
	fclose(f);
}

void tsi_udp_sweep(void)
{
	bool alive[TSI_MAX_UDP] = { false };

	mark_alive("/proc/net/udp", alive);
	mark_alive("/proc/net/udp6", alive);
	for (unsigned int i = 0; i < TSI_MAX_UDP; i++)
		if (chans[i].used && !alive[i])
			chan_close(&chans[i]);
	next_sweep = tsi_now_ms() + SWEEP_MS;
}
