/* TSI host proxy: opens the real sockets for the guest init's impersonated connections. */
#ifndef KRUN_DEVICES_TSI_TSI_H
#define KRUN_DEVICES_TSI_TSI_H

#include <stdint.h>

struct evloop;
struct virtio_dev;
struct vsock_backend_ops;

/* A virtio-fs share whose UNIX sockets the guest may reach (AF_UNIX requests name the tag). */
struct tsi_share {
	const char *tag;
	const char *host_dir;
};

struct tsi_config {
	/*
	 * The vsock device's loop: all proxy work runs there. NULL: given later by
	 * tsi_proxy_activate (the device's loop exists only once the transport activates it).
	 */
	struct evloop *loop;
	const struct tsi_share *shares;
	unsigned int nr_shares;
	unsigned int connect_timeout_ms;    /* default and upper bound; 0: TSI_DEFAULT_TIMEOUT_MS */
	unsigned int max_conns;             /* 0: TSI_DEFAULT_MAX_CONNS */
	/*
	 * Where KRUN_TSI_OP_DNS goes (over TCP, whose 2-byte length framing is the op's):
	 * "IP", "IP:PORT" or "[IPv6]:PORT". NULL: the first nameserver of /etc/resolv.conf.
	 */
	const char *dns_server;
	/*
	 * Inbound (krun_set_port_map): "HOST:GUEST" entries. The proxy listens on
	 * inbound_addr:HOST (NULL: 127.0.0.1) and brings each connection to the guest's init
	 * (vsock port KRUN_TSI_INBOUND_PORT), which connects to its 127.0.0.1:GUEST.
	 */
	const char *const *port_map;
	unsigned int nr_port_map;
	const char *inbound_addr;
};

#define TSI_DEFAULT_TIMEOUT_MS 30000u
#define TSI_MAX_TIMEOUT_MS 300000u
/* How long the guest may take to send its request once connected. */
#define TSI_REQUEST_TIMEOUT_MS 10000u
#define TSI_DEFAULT_MAX_CONNS 1024u
/*
 * At the device's reset or end, how long the guest's last bytes may take to reach host
 * sockets that are slow to read them; then they are dropped.
 */
#define TSI_LINGER_MS 2000u
/* Relay buffer per direction per connection. */
#define TSI_RELAY_BUF (64u * 1024)

/*
 * Creates the proxy as a vsock device backend: it claims guest connections to
 * (CID 2, KRUN_TSI_PORT) and refuses every other port with -ECONNREFUSED. Put *ops and *opaque
 * into struct vsock_config; the device then owns the proxy (ops->destroy frees it).
 * Returns 0 or -errno (a share directory that cannot be opened).
 */
int tsi_proxy_create(const struct tsi_config *cfg, const struct vsock_backend_ops **ops,
		     void **opaque) __attribute__((warn_unused_result));

/*
 * The device the proxy was given to (after virtio_vsock_create succeeded): inbound
 * connections need it. Call before the device's loop runs.
 */
void tsi_proxy_set_device(void *opaque, struct virtio_dev *dev);

/*
 * The device's loop, on that loop's thread (for a vsock backend hook run at device
 * activation): the proxy starts accepting its port-map listeners there. Idempotent.
 */
void tsi_proxy_activate(void *opaque, struct evloop *loop);

/* Number of live connections (tests). */
unsigned int tsi_proxy_nr_conns(void *opaque);

#endif
