/* State shared by the TSI proxy files (not for other modules). */
#ifndef KRUN_DEVICES_TSI_TSI_PRIV_H
#define KRUN_DEVICES_TSI_TSI_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/krun_tsi.h"
#include "devices/tsi/tsi.h"

struct tsi_proxy;

enum tsi_state {
	TSI_READ_REQ,       /* reading struct krun_tsi_request (+ path) from the guest */
	TSI_CONNECTING,     /* host socket connect in progress */
	TSI_RELAY,          /* moving bytes both ways */
};

/* One direction of the relay: bytes read from `from` wait in buf for `to`. */
struct tsi_pipe {
	uint8_t *buf;
	size_t off, len;
	bool eof;           /* `from` will send no more */
	bool shut;          /* SHUT_WR passed on to `to` */
};

struct tsi_conn {
	struct tsi_proxy *p;
	struct tsi_conn *next;
	enum tsi_state state;
	int gfd;            /* our end of the pair whose other end the vsock device pumps */
	int hfd;            /* the host socket, or -1 */
	int tfd;            /* timerfd for the request and connect deadlines, or -1 */
	bool dgram;         /* a seqpacket vsock connection: UDP, one message per datagram */
	bool addressed;     /* OP_DGRAM: each message starts with struct krun_tsi_dgram */
	int hfamily;        /* of hfd, for OP_DGRAM's destinations */
	uint32_t gwatch, hwatch;
	uint8_t req[sizeof(struct krun_tsi_request) + KRUN_TSI_PATH_MAX];
	size_t req_len;
	struct tsi_pipe up;     /* guest -> host */
	struct tsi_pipe down;   /* host -> guest */
};

struct tsi_share_fd {
	char *tag;
	int dirfd;          /* O_PATH directory */
};

struct tsi_listener {
	struct tsi_proxy *p;
	int fd;
	uint16_t guest_port;
	bool watched;
};

struct tsi_proxy {
	struct evloop *loop;
	struct tsi_share_fd *shares;
	unsigned int nr_shares;
	unsigned int timeout_ms, max_conns, nr_conns;
	struct krun_tsi_request dns;    /* a CONNECT to the resolver; family 0: none */
	struct tsi_conn *conns;
	struct tsi_listener *listeners;
	unsigned int nr_listeners;
	struct virtio_dev *dev;
};

/* tsi_req.c: request validation and the host-side connect. */
/*
 * Validates a complete request of len bytes. 0 when valid, 1 when more bytes are needed
 * (*need says how many in total), or -errno to answer with.
 */
int tsi_req_check(const uint8_t *buf, size_t len, size_t *need);
/*
 * Starts the host connect for a valid request: 0 connected, 1 in progress (*fd watched for
 * writability), or -errno for the guest.
 */
int tsi_req_connect(struct tsi_proxy *p, const struct krun_tsi_request *req, const char *path,
		    int *fd);
/*
 * OP_DGRAM peers: the header's address for a host socket of family sock_family (IPv4 as
 * v4-mapped for AF_INET6); 0 when the header is unusable. And back: the header for a source.
 */
socklen_t tsi_req_dgram_peer(int sock_family, const struct krun_tsi_dgram *h,
			     struct sockaddr_storage *ss);
void tsi_req_dgram_header(const struct sockaddr_storage *ss, struct krun_tsi_dgram *h);
/* The connect finished (SO_ERROR): 0 or a positive errno. */
int tsi_req_finish(int fd);
/* The response for a finished connect (error 0: the host-side local address). */
void tsi_req_response(int fd, int error, struct krun_tsi_response *resp);
/* The resolver for OP_DNS from cfg->dns_server or /etc/resolv.conf (tsi_dns.c). */
void tsi_dns_config(struct tsi_proxy *p, const char *server);
/* Effective connect timeout for a request asking for timeout_ms. */
unsigned int tsi_req_timeout(const struct tsi_proxy *p, uint32_t timeout_ms);

/* tsi_relay.c: the byte relay. */
/* Starts relaying; prefix (len bytes) goes to the guest before anything from the host. */
int tsi_relay_start(struct tsi_conn *c, const void *prefix, size_t len)
	__attribute__((warn_unused_result));
void tsi_relay_on_guest(void *opaque, uint32_t events);
void tsi_relay_on_host(void *opaque, uint32_t events);
/* The guest side ended: pass on what it sent, for at most ms (bounded: the VM must end). */
void tsi_relay_linger(struct tsi_proxy *p, unsigned int ms);

/* tsi_inbound.c: the port map's host listeners. */
int tsi_inbound_open(struct tsi_proxy *p, const struct tsi_config *cfg);
/* Accept on the listeners from p->loop on. */
void tsi_inbound_watch(struct tsi_proxy *p);
void tsi_inbound_close(struct tsi_proxy *p);

/* tsi_proxy.c */
/* A connection for our socketpair end gfd (no host socket yet, no timer). */
struct tsi_conn *tsi_conn_alloc(struct tsi_proxy *p, int gfd);
void tsi_conn_close(struct tsi_conn *c);
/* Watch the conn's fds for these events (0: not at all); closes the conn on failure. */
int tsi_conn_watch(struct tsi_conn *c, uint32_t gev, uint32_t hev);
/* Before the relay starts, events on the conn's fds belong to the handshake. */
void tsi_proxy_on_handshake(struct tsi_conn *c, bool host);

#endif
