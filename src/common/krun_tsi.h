/*
 * Transparent socket impersonation (TSI): the protocol between the guest init (which
 * intercepts a program's connect() with seccomp user notification) and the host-side proxy
 * (which opens the real socket). Shared by both builds; plain C, little-endian on the wire.
 *
 * Outbound: for each impersonated socket the init opens one AF_VSOCK connection to
 * (CID 2, KRUN_TSI_PORT) -- SOCK_STREAM for TCP, SOCK_SEQPACKET for UDP when the device
 * offers it -- sends one struct krun_tsi_request (+ path bytes for AF_UNIX), and reads one
 * struct krun_tsi_response. On error == 0 the connection from then on carries the socket's
 * payload unchanged (each seqpacket message is one datagram); the init installs it in the
 * program in place of its socket (SECCOMP_IOCTL_NOTIF_ADDFD with SETFD).
 * The proxy answers EPROTOTYPE to a SOCK_DGRAM request (UDP, inet only) on a stream
 * connection and to any other on a seqpacket one. Empty datagrams are not carried either
 * way (an empty message would read as the end of the connection).
 *
 * DNS: op KRUN_TSI_OP_DNS (family, port and path_len all 0) on a stream connection that then
 * carries DNS over TCP framing (2-byte length prefix): the proxy relays it to the host's
 * resolver over TCP. The init's stub on guest 127.0.0.1:53 turns UDP queries into that.
 *
 * Unconnected UDP: op KRUN_TSI_OP_DGRAM (type SOCK_DGRAM, family the guest socket's domain,
 * port and address 0) on a seqpacket connection gives the guest socket an unconnected host UDP
 * socket. Each message then is one datagram after a struct krun_tsi_dgram naming its peer:
 * the destination from the guest, the source towards the guest. An IPv4 peer is always sent
 * as AF_INET (never v4-mapped); the proxy maps it for an AF_INET6 host socket.
 *
 * Inbound (krun_set_port_map "HOST:GUEST"): the host accepts on HOST and connects to the
 * guest's vsock port KRUN_TSI_INBOUND_PORT; it first sends struct krun_tsi_inbound, then the
 * stream's payload. The init connects to 127.0.0.1:guest_port (or ::1) and splices.
 */
#ifndef KRUN_COMMON_KRUN_TSI_H
#define KRUN_COMMON_KRUN_TSI_H

#include <stdint.h>

#define KRUN_TSI_PORT 1024u          /* host side (CID 2): the proxy */
#define KRUN_TSI_INBOUND_PORT 1025u  /* guest side: the init's port-map listener */
#define KRUN_TSI_MAGIC 0x4b545349u   /* "ISTK" on the wire */
#define KRUN_TSI_VERSION 1u
#define KRUN_TSI_PATH_MAX 4096u

enum krun_tsi_op {
	KRUN_TSI_OP_CONNECT = 1,
	KRUN_TSI_OP_DNS = 2,
	KRUN_TSI_OP_DGRAM = 3,
};

struct krun_tsi_request {
	uint32_t magic;
	uint16_t version;
	uint16_t op;         /* enum krun_tsi_op */
	uint16_t family;     /* AF_INET, AF_INET6, AF_UNIX */
	uint16_t type;       /* SOCK_STREAM or SOCK_DGRAM */
	uint16_t port;       /* host byte order; inet only */
	uint16_t path_len;   /* AF_UNIX: bytes of path that follow (no NUL); else 0 */
	uint8_t addr[16];    /* inet: 4 or 16 address bytes in network order */
	uint32_t timeout_ms; /* connect timeout; 0 = the proxy's default */
	/*
	 * AF_UNIX: path = "<share tag>/<path relative to that share's root>"; the proxy resolves
	 * it confined to the share's host directory and connects only to a socket there.
	 */
};

struct krun_tsi_response {
	uint32_t magic;
	int32_t error;       /* 0, or a positive errno the program's connect() should see */
	uint16_t family;     /* the host-side local address, for getsockname() */
	uint16_t port;
	uint8_t addr[16];
};

struct krun_tsi_inbound {
	uint32_t magic;
	uint16_t version;
	uint16_t guest_port; /* host byte order */
	uint16_t family;     /* of the host peer, for the program's accept() view */
	uint16_t peer_port;
	uint8_t peer_addr[16];
};

/* Before each datagram of an OP_DGRAM connection. */
struct krun_tsi_dgram {
	uint16_t family;     /* AF_INET or AF_INET6 */
	uint16_t port;       /* host byte order */
	uint8_t addr[16];    /* network order; 4 bytes for AF_INET */
};

/* The largest UDP payload (IPv4: 65535 - 20 - 8); IPv6 could carry 20 more, we do not. */
#define KRUN_TSI_DGRAM_MAX 65507u

_Static_assert(sizeof(struct krun_tsi_dgram) == 20, "wire size");
_Static_assert(sizeof(struct krun_tsi_request) == 36, "wire size");
_Static_assert(sizeof(struct krun_tsi_response) == 28, "wire size");
_Static_assert(sizeof(struct krun_tsi_inbound) == 28, "wire size");

#endif
