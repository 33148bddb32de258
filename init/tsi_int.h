/* Internals of the guest TSI supervisor (init/tsi_*.c). */
#ifndef KRUN_INIT_TSI_INT_H
#define KRUN_INIT_TSI_INT_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/krun_tsi.h"
#include "tsi_sys.h"

/* Connects waiting for the host at once; more notifications wait in the kernel. */
#define TSI_MAX_PENDING 128
/* Impersonated sockets whose addresses we remember for getpeername/getsockname. */
#define TSI_MAX_NAMES 1024
/* What a stream vsock socket of ours announces as receive buffer to the host (default 256 KiB). */
#define TSI_VSOCK_BUF_BYTES (1u << 20)
/* Unconnected UDP sockets with a channel to the host at once. */
#define TSI_MAX_UDP 64
/* Beyond the connect timeout, how long the host may take to answer at all. */
#define TSI_ANSWER_SLACK_MS 5000

/* A process that raised a notification, opened so that pid reuse cannot fool us. */
struct tsi_target {
	pid_t tid;
	int pidfd;          /* of its thread group (pidfd_getfd works on that) */
	int memfd;          /* /proc/TID/mem, read-write */
};

/* A connect waiting for the vsock handshake. */
struct tsi_pending {
	bool used;
	uint64_t id;
	int target_fd;      /* fd number in the program */
	int vfd;            /* our vsock connection to the proxy */
	size_t req_off;     /* bytes of req sent so far */
	int status_flags;   /* O_NONBLOCK of the program's socket */
	bool cloexec;
	long deadline;
	uint8_t req[sizeof(struct krun_tsi_request) + KRUN_TSI_PATH_MAX];
	size_t req_len;
	struct krun_tsi_response resp;
	size_t resp_got;
	struct sockaddr_storage peer;   /* as the program asked, in its socket's family */
	socklen_t peer_len;
	int domain;
};

/* tsi_target.c */
int tsi_target_open(struct tsi_target *t, int listener, const struct tsi_notif *n);
void tsi_target_close(struct tsi_target *t);
int tsi_target_read(const struct tsi_target *t, uint64_t addr, void *buf, size_t len);
int tsi_target_write(const struct tsi_target *t, uint64_t addr, const void *buf, size_t len);
/* Our own copy of the program's fd (pidfd_getfd), or -errno. */
int tsi_target_getfd(const struct tsi_target *t, int fd);
/* The fd's close-on-exec flag in the program (from /proc/TID/fdinfo). */
bool tsi_target_cloexec(const struct tsi_target *t, int fd);

/* tsi_helper.c: the supervisor process's body. */
void tsi_helper_run(int chan) __attribute__((noreturn));
/* tsi_dns.c: in PID 1, the stub resolver process and the guest's resolv.conf. */
void tsi_dns_start(void);
/* tsi_inbound.c: in PID 1, the port map's vsock listener process. */
void tsi_inbound_start(void);
/* In PID 1 at the end: that process passes on what it holds, closes and exits (by end_ms). */
void tsi_inbound_drain(long end_ms);
/* tsi_settle.c: in PID 1 when the program has ended, the start of tsi_settle's bound. */
void tsi_settle_start(void);

long tsi_now_ms(void);
bool tsi_id_valid(int listener, uint64_t id);
/* Answer a notification: val/error as the syscall's result, or continue into the kernel. */
void tsi_reply(int listener, uint64_t id, int error);
void tsi_reply_continue(int listener, uint64_t id);
/* A successful result (e.g. a length). */
void tsi_reply_value(int listener, uint64_t id, long val);
struct tsi_pending *tsi_pending_alloc(void);

/* tsi_connect.c */
void tsi_connect_notif(int listener, const struct tsi_notif *n);
/* The pending connect's vsock fd is ready (revents from poll). */
void tsi_connect_progress(int listener, struct tsi_pending *p, short revents);
void tsi_connect_timeout(int listener, struct tsi_pending *p);

/* tsi_diag.c: socket diagnostics dumps (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY answers). */
/* Called with each socket message's payload (after its netlink header) and its length. */
typedef void (*tsi_diag_fn)(const void *msg, size_t len, void *ctx);
/*
 * One batch of answers to the dump numbered seq, each socket message to each(). 0: more to
 * read, 1: the dump is done, -errno: it ended with the kernel's error (the channel stays
 * usable), -EIO: a garbled or foreign answer (the channel is not).
 */
int tsi_diag_batch(const uint8_t *buf, size_t len, uint32_t seq, tsi_diag_fn each, void *ctx);
/* Sends req (a dump request numbered seq) on fd and reads all its answers: 0 or as above. */
int tsi_diag_dump(int fd, const void *req, size_t req_len, uint32_t seq, tsi_diag_fn each,
		  void *ctx);

/* tsi_ports.c */
/* Is a guest program listening on this TCP port (then the kernel connects locally)? */
bool tsi_guest_listens(uint16_t port);
/* Is any guest UDP socket bound to this port (then the kernel delivers locally)? */
bool tsi_guest_udp_bound(uint16_t port);
/*
 * An inet destination for a socket of this domain as a request's family, port and address
 * (v4-mapped as AF_INET); *local for loopback or unspecified. 1 if usable, else 0.
 */
int tsi_classify_inet(int domain, const struct sockaddr_storage *ss, uint64_t len,
		      struct krun_tsi_request *r, bool *local);

/* tsi_unix.c: 1 with r and path ("<tag>/<path>") filled when connecting there is ours. */
int tsi_unix_classify(const struct tsi_target *t, const struct sockaddr_storage *ss, uint64_t len,
		      struct krun_tsi_request *r, char *path, size_t size);

/* tsi_udp.c: unconnected UDP (sendto/sendmsg with a destination), see there. */
/* Once in the supervisor, before the loop: the raw sockets that hand datagrams in. */
void tsi_udp_init(void);
void tsi_udp_notif(int listener, const struct tsi_notif *n);
/* Adds the channels' fds to pfd (room for TSI_MAX_UDP); how many. */
unsigned int tsi_udp_poll_add(struct pollfd *pfd);
/* The same entries after poll: hands what arrived to the program's sockets. */
void tsi_udp_poll_done(const struct pollfd *pfd, unsigned int n);
/* Milliseconds until the next sweep of closed sockets' channels, or -1 without channels. */
int tsi_udp_timeout(void);
void tsi_udp_sweep(void);

/* tsi_names.c */
void tsi_names_add(int vfd, const struct sockaddr_storage *peer, socklen_t peer_len,
		   const struct sockaddr_storage *local, socklen_t local_len);
void tsi_names_notif(int listener, const struct tsi_notif *n);

#endif
