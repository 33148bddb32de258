/* virtio-vsock device (virtio 1.2 section 5.10): guest stream and seqpacket sockets to host sockets. */
#ifndef KRUN_DEVICES_VSOCK_VSOCK_H
#define KRUN_DEVICES_VSOCK_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
struct virtio_dev;

#define VSOCK_DEFAULT_GUEST_CID 3
#define VSOCK_DEFAULT_MAX_CONNS 256
/* Our per-connection receive buffer, advertised to the guest as buf_alloc (5.10.6.3). */
#define VSOCK_DEFAULT_BUF_SIZE (256u * 1024)
#define VSOCK_MIN_BUF_SIZE 4096u
#define VSOCK_MAX_BUF_SIZE (4u << 20)
#define VSOCK_DEFAULT_TIMEOUT_MS 8000u   /* Linux's own wait for a peer's RST */

/* One krun_add_vsock_port2 pairing. */
struct vsock_port_map {
	uint32_t port;
	const char *path;   /* host UNIX socket path (copied by virtio_vsock_create) */
	/*
	 * false: a guest connecting to (host CID 2, port) reaches the socket at path, which the
	 *        device connects to (a SOCK_SEQPACKET socket for a guest seqpacket socket).
	 * true:  the device listens on path (creating it, unlinking it on destroy); each accepted
	 *        host connection becomes a connection from the host to the guest's port.
	 */
	bool listen;
};

/*
 * Hook for other host-side code (the TSI impersonation proxy): guest connections that no
 * port-map entry claims are offered to the backend. Everything runs on the device's loop
 * thread (dev->loop), so a backend needs no locking against the device.
 *
 * Contract for the fds exchanged: nonblocking sockets, SOCK_STREAM for a stream connection
 * and SOCK_SEQPACKET (or SOCK_DGRAM) for a seqpacket one, whose messages map 1:1 to the
 * guest's (virtio 1.2 section 5.10.6.6); the device owns an fd from the moment a call that passes it returns success, and
 * closes it on RST, close or device reset.
 */
struct vsock_backend_ops {
	/*
	 * The guest sent REQUEST for host port `port` from guest port `peer_port`; type is
	 * VIRTIO_VSOCK_TYPE_STREAM or VIRTIO_VSOCK_TYPE_SEQPACKET.
	 * Returns 0 with *fd connected (the guest gets RESPONSE now), 1 with *fd connecting
	 * (RESPONSE when it becomes writable without SO_ERROR, else RST), or -errno to refuse
	 * (RST; -ECONNREFUSED for "not mine").
	 */
	int (*connect)(void *opaque, uint32_t port, uint32_t peer_port, uint16_t type, int *fd);
	/*
	 * The driver started the device; loop is where every callback runs from now on (the
	 * transport picks it: the VMM's I/O thread, or tcg_vm's vhost-user loop). Optional.
	 */
	void (*activate)(void *opaque, struct evloop *loop);
	/* The device reset (guest reboot, driver reload): forget per-guest state. Optional. */
	void (*reset)(void *opaque);
	/* virtio_vsock_create failed or the device is destroyed. Optional. */
	void (*destroy)(void *opaque);
};

struct vsock_config {
	uint64_t guest_cid;                     /* 0: VSOCK_DEFAULT_GUEST_CID */
	const struct vsock_port_map *ports;
	unsigned int nr_ports;
	unsigned int max_conns;                 /* both directions together; 0: default */
	uint32_t buf_size;                      /* 0: default; clamped to [MIN, MAX] */
	/* How long the guest may leave our REQUEST or SHUTDOWN unanswered; 0: default. */
	unsigned int timeout_ms;
	const struct vsock_backend_ops *backend;    /* NULL: only the port map */
	void *backend_opaque;
};

/*
 * Creates the device; listening sockets are bound here so a bad path fails early. The
 * backend (if any) is owned by the device from here on, also on failure.
 */
int virtio_vsock_create(const struct vsock_config *cfg, struct virtio_dev **out)
	__attribute__((warn_unused_result));

/*
 * A host-initiated connection (for a backend: e.g. an accepted TSI listener): sends REQUEST
 * to the guest's port `guest_port` and pumps fd once the guest answers RESPONSE. Call on the
 * loop thread of an activated device. The device owns fd from now on (also on failure:
 * -ENOTCONN device not active, -EMFILE connection limit).
 */
int virtio_vsock_connect_guest(struct virtio_dev *dev, uint32_t guest_port, int fd)
	__attribute__((warn_unused_result));

#endif
