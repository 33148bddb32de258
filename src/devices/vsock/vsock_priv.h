/* State shared by the virtio-vsock files: device, connections, packets (not for other modules). */
#ifndef KRUN_DEVICES_VSOCK_VSOCK_PRIV_H
#define KRUN_DEVICES_VSOCK_VSOCK_PRIV_H

#include <linux/virtio_vsock.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/vsock/vsock.h"
#include "virtio/device.h"

#define VSOCK_RX_Q 0
#define VSOCK_TX_Q 1
#define VSOCK_EVENT_Q 2
/*
 * Rings offered to the driver: the Linux driver keeps every rx entry filled with a 4 KiB
 * buffer of guest RAM, so 256 entries hold 1 MiB where 1024 held 4 MiB per VM; 256 is also
 * what Firecracker's and libkrun's vsock devices offer. Accepted up to 1024, the size QEMU's
 * vhost-user-vsock-device sets (tcg_vm).
 */
#define VSOCK_QUEUE_SIZE 256
#define VSOCK_QUEUE_MAX_SIZE 1024

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
/* Largest payload we put in one rx packet (Linux's own limit for a packet buffer). */
#define VSOCK_MAX_PAYLOAD (64u * 1024)
/* Largest payload we accept in one tx packet: more would exceed any credit we grant. */
#define VSOCK_MAX_TX_PAYLOAD VSOCK_MAX_BUF_SIZE
/* RST replies for packets that have no connection, waiting for rx buffers. */
#define VSOCK_RST_RING 64
/* Complete guest messages one seqpacket connection may hold for a blocked host socket. */
#define VSOCK_SEQ_MSGS 32
#define VSOCK_SHUT_BOTH (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)

/* A header in host byte order, copied out of guest memory before any decision. */
struct vsock_pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

enum vsock_conn_state {
	VSOCK_CONN_FREE = 0,
	VSOCK_CONN_CONNECTING,      /* guest REQUEST; host socket connect in progress */
	VSOCK_CONN_REQUESTED,       /* host-initiated; REQUEST to the guest, awaiting RESPONSE */
	VSOCK_CONN_ESTABLISHED,
	VSOCK_CONN_CLOSING,         /* SHUTDOWN(both) to the guest; host fd gone; awaiting RST */
};

/* Packets a connection owes the guest (one bit each: bounded, no packet queue). */
enum {
	VSOCK_PEND_REQUEST = 1u << 0,
	VSOCK_PEND_RESPONSE = 1u << 1,
	VSOCK_PEND_SHUTDOWN = 1u << 2,
	VSOCK_PEND_CREDIT_UPDATE = 1u << 3,
	VSOCK_PEND_CREDIT_REQUEST = 1u << 4,
	VSOCK_PEND_RST = 1u << 5,
};

struct vsock;

struct vsock_conn {
	struct vsock *v;
	enum vsock_conn_state state;
	uint32_t local_port;        /* our (host, CID 2) side */
	uint32_t peer_port;         /* the guest's side */
	uint16_t type;              /* VIRTIO_VSOCK_TYPE_STREAM or _SEQPACKET (5.10.6.6) */
	int fd;                     /* host socket, or -1 */
	bool registered;            /* fd is in the loop's epoll set */
	uint32_t watched;           /* with these events (0: only HUP/ERR) */
	unsigned int pending;       /* VSOCK_PEND_* */
	uint32_t shut_to_guest;     /* SHUTDOWN flags sent or pending */
	uint32_t guest_shut;        /* SHUTDOWN flags the guest sent */
	bool host_eof;              /* the host side will send no more */
	bool host_wr_dead;          /* the host side takes no more (EPIPE, HUP) */
	bool readable;              /* fd reported readable and not yet drained to EAGAIN */
	bool queued;                /* on the device's ready list */
	int hash_next;              /* slot of the next connection in its bucket, or -1 */
	int free_next;              /* FREE: slot of the next free one, or -1 */
	struct vsock_conn *next_ready;
	uint64_t deadline_ns;       /* CLOCK_MONOTONIC; REQUESTED/CLOSING end by RST then; 0: none */
	/* Host to guest: the guest's credit, never exceeded (5.10.6.3). */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_requested;
	/* Guest to host: our buffer of v->buf_size, advertised as buf_alloc. */
	uint32_t rx_cnt, fwd_cnt, last_fwd_sent;
	uint8_t *buf;
	uint32_t buf_off, buf_len;  /* ring: bytes [buf_off, buf_off + buf_len) mod size */
	/*
	 * Seqpacket guest to host: the ring holds seq_count complete messages (lengths in
	 * seq_msgs from seq_head) followed by seq_part bytes of one not yet ended by EOM.
	 */
	uint32_t seq_msgs[VSOCK_SEQ_MSGS];
	unsigned int seq_head, seq_count;
	uint32_t seq_part;
	/* Seqpacket host to guest: one host message, sent as fragments from msg_off. */
	uint8_t *msg;
	uint32_t msg_off, msg_len;
	bool msg_staged, msg_eor;
};

struct vsock_port {
	uint32_t port;
	char *path;
	bool listen;
	int listen_fd;
	bool watched;
	struct vsock *v;
};

struct vsock {
	struct virtio_dev dev;
	struct virtio_vsock_config config;
	uint64_t guest_cid;
	uint32_t buf_size;
	uint64_t timeout_ns;        /* for our REQUEST or SHUTDOWN(both) to be answered (5.10.6.5) */
	unsigned int max_conns, nr_conns;
	struct vsock_conn *conns;   /* max_conns slots */
	/* (local_port, peer_port) -> slot: bucket heads (-1: empty), a power of two of them. */
	int *buckets;
	unsigned int bucket_mask;
	int free_head;              /* first FREE slot, or -1 */
	struct vsock_conn *ready_head, *ready_tail;
	struct vsock_pkt rst_ring[VSOCK_RST_RING];
	unsigned int rst_head, rst_count;
	struct vsock_port *ports;
	unsigned int nr_ports;
	const struct vsock_backend_ops *backend;
	void *backend_opaque;
	uint32_t next_local_port;
	bool active;
	bool tx_stalled;            /* tx waits for room in rst_ring */
	int timer_fd;               /* ticks while some connection has a deadline */
	bool timer_watched, timer_armed;
	struct virtq_elem rx_elem, tx_elem;
	struct iovec tx_data[VIRTQ_MAX_SEGS];   /* payload slice of tx_elem */
};

/* vsock_pkt.c: headers to and from guest buffers. */
int vsock_pkt_read(const struct virtq_elem *elem, struct vsock_pkt *pkt);
int vsock_pkt_write(const struct virtq_elem *elem, const struct vsock_pkt *pkt);
void vsock_pkt_for_conn(const struct vsock_conn *c, uint16_t op, struct vsock_pkt *pkt);
void vsock_pkt_rst_reply(const struct vsock *v, const struct vsock_pkt *in, struct vsock_pkt *out);
/* Room in the guest's receive buffer for connection c (0 if the guest's numbers are odd). */
uint32_t vsock_pkt_peer_credit(const struct vsock_conn *c);

/* vsock_conn.c: the connection table and state machine. */
/* After v->conns is allocated: the lookup hash and the free list. */
int vsock_conn_table_init(struct vsock *v);
struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port, uint32_t peer_port);
struct vsock_conn *vsock_conn_new(struct vsock *v, uint32_t local_port, uint32_t peer_port, int fd,
				  enum vsock_conn_state state);
void vsock_conn_free(struct vsock_conn *c);
void vsock_conn_free_all(struct vsock *v);
void vsock_conn_from_guest(struct vsock_conn *c, const struct vsock_pkt *pkt,
			   const struct iovec *data, unsigned int cnt);
/* Fill one rx chain with c's next packet: bytes written, 0 if c had nothing to send. */
uint32_t vsock_conn_fill_rx(struct vsock_conn *c, const struct virtq_elem *elem);
void vsock_conn_rst(struct vsock_conn *c);
void vsock_conn_close_fd(struct vsock_conn *c);
void vsock_conn_rearm(struct vsock_conn *c);
void vsock_conn_drained(struct vsock_conn *c);
/* Something to send to the guest now (a pending packet, or readable data and credit). */
bool vsock_conn_has_work(const struct vsock_conn *c);
void vsock_conn_set_deadline(struct vsock_conn *c);
/* RST connections past their deadline; returns how many deadlines remain. */
unsigned int vsock_conn_expire(struct vsock *v);
uint32_t vsock_conn_alloc_port(struct vsock *v, uint32_t peer_port);

/* vsock_io.c: host fd side of a connection. */
void vsock_io_on_host(void *opaque, uint32_t events);
uint32_t vsock_io_read_rw(struct vsock_conn *c, const struct virtq_elem *elem, uint32_t max);
int vsock_io_write(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t len);
void vsock_io_flush(struct vsock_conn *c);
/* Guest bytes we hold that the host socket can be given now (not a partial message). */
uint32_t vsock_io_sendable(const struct vsock_conn *c);
void vsock_io_credit_freed(struct vsock_conn *c);
void vsock_io_write_side_dead(struct vsock_conn *c);
void vsock_io_host_eof(struct vsock_conn *c);
int vsock_io_buffer(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t from,
		    uint32_t len);

/* vsock_seq.c: seqpacket message boundaries (5.10.6.6). */
int vsock_seq_write(struct vsock_conn *c, const struct iovec *data, unsigned int cnt, uint32_t len,
		    uint32_t flags);
void vsock_seq_flush(struct vsock_conn *c);
uint32_t vsock_seq_read(struct vsock_conn *c, const struct virtq_elem *elem, uint32_t max);

/* vsock_dev.c: the rx queue scheduler. */
void vsock_dev_ready(struct vsock_conn *c);
void vsock_dev_kick_rx(struct vsock *v);
void vsock_dev_arm_timer(struct vsock *v);

/* vsock_unix.c: the host-side UNIX port map. */
int vsock_unix_open(struct vsock *v, const struct vsock_port_map *ports, unsigned int n);
void vsock_unix_start(struct vsock *v);
void vsock_unix_stop(struct vsock *v);
void vsock_unix_close(struct vsock *v);
/* Host side for a guest REQUEST: 0 connected, 1 connecting, -errno refused (-ENOENT: no entry). */
int vsock_unix_connect_port(struct vsock *v, uint32_t port, uint16_t type, int *fd);

#endif
