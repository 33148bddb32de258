/* State shared by the vhost-user message layer (vhost_user.c) and its rings (vhost_user_ring.c). */
#ifndef KRUN_VIRTIO_VHOST_USER_INT_H
#define KRUN_VIRTIO_VHOST_USER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtio/device.h"
#include "virtio/virtq.h"
#include "virtio/vhost_user.h"
#include "vmm/gmem.h"

/* One ring as the frontend described it; the virtq in dev->vqs is derived at activation. */
struct vu_ring {
	struct vhost_user *vu;
	unsigned int index;
	uint16_t num;           /* SET_VRING_NUM; 0 = not set */
	uint16_t base;          /* SET_VRING_BASE, or last_avail saved when the device stopped */
	bool addr_set;
	uint64_t desc_ua, avail_ua, used_ua;
	int kick_fd, call_fd, err_fd;
	bool started;           /* spec "Ring states": a kick fd arrived, no GET_VRING_BASE since */
	bool enabled;
	bool kick_handed;       /* kick_fd is the device's (self-notified queue), not in the loop */
};

struct vu_map {
	void *base;
	size_t len;
};

struct vhost_user {
	struct virtio_dev *dev;
	struct evloop *loop;
	int sock;
	bool closed;
	uint64_t offered;       /* GET_FEATURES answer */
	uint64_t features;      /* SET_FEATURES */
	uint64_t protocol_features;
	unsigned int nr_rings;  /* the device's queue count */
	bool active;            /* the device was activated and not reset since */
	struct gmem mem;
	struct vu_map maps[VHOST_USER_MAX_REGIONS];
	unsigned int nr_maps;
	/* signal_queue may run on device worker threads while the loop replaces call fds. */
	pthread_mutex_t call_lock;
	struct vu_ring rings[VIRTIO_DEV_MAX_QUEUES];
};

/*
 * The largest payload we accept; anything bigger is not a request we know. A full config
 * space (GET/SET_CONFIG, 12 + 256 bytes) is larger than the memory table.
 */
#define MSG_MAX_PAYLOAD (sizeof(struct vhost_user_mem) > sizeof(struct vhost_user_config) ? \
			 sizeof(struct vhost_user_mem) : sizeof(struct vhost_user_config))

struct vu_msg {
	struct vhost_user_hdr hdr;
	union {
		uint64_t u64;
		struct vhost_user_vring_state state;
		struct vhost_user_vring_addr addr;
		struct vhost_user_mem mem;
		struct vhost_user_config config;
		uint8_t raw[MSG_MAX_PAYLOAD];
	} p;
	int fds[VHOST_USER_MAX_FDS];
	unsigned int nr_fds;
};

struct vu_reply {
	uint32_t size;
	union {
		uint64_t u64;
		struct vhost_user_vring_state state;
		struct vhost_user_config config;
	} p;
};

/* Our protocol offer: MQ (advisory, spec "Multiple queue support"), REPLY_ACK, CONFIG,
 * RESET_DEVICE. */
#define OFFERED_PROTOCOL ((1ull << VHOST_USER_PROTOCOL_F_MQ) | \
			  (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
			  (1ull << VHOST_USER_PROTOCOL_F_CONFIG) | \
			  (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE))

struct vhost_user_handler {
	int (*fn)(struct vhost_user *vu, struct vu_msg *m, struct vu_reply *r);
	uint32_t min_size;      /* payload bounds; the exact layout is checked by fn */
	uint32_t max_size;
	bool has_reply;         /* the request defines its own reply (spec "Communication") */
	const char *name;
};

/* vhost_user_req.c: the handler for a request, or NULL for one we do not implement. */
const struct vhost_user_handler *vhost_user_handler(uint32_t request);
const char *vhost_user_request_name(uint32_t request);

/* vhost_user_ring.c */
void vhost_user_rings_init(struct vhost_user *vu);
/* transport.notify_fd: ring q's kick fd while the device serves it from its own threads. */
int vhost_user_notify_fd(struct virtio_dev *dev, unsigned int q);
/* Reset the device if active, saving each ring's last_avail into ring->base. */
void vhost_user_quiesce(struct vhost_user *vu);
/* Activate the device if some ring is started and enabled; 0 or -errno. */
int vhost_user_try_activate(struct vhost_user *vu) __attribute__((warn_unused_result));
int vhost_user_set_kick(struct vhost_user *vu, unsigned int i, int fd)
	__attribute__((warn_unused_result));
void vhost_user_set_call(struct vhost_user *vu, unsigned int i, int fd);
void vhost_user_set_err(struct vhost_user *vu, unsigned int i, int fd);
int vhost_user_set_enable(struct vhost_user *vu, unsigned int i, bool on)
	__attribute__((warn_unused_result));
/* GET_VRING_BASE: stop ring i (and the device) and return where the driver should resume. */
uint16_t vhost_user_stop_ring(struct vhost_user *vu, unsigned int i);
/* Forget every ring (RESET_DEVICE, hang-up): closes their fds. */
void vhost_user_reset_rings(struct vhost_user *vu);
/* Replace the memory table; takes the fds (closed in every case). */
int vhost_user_set_mem(struct vhost_user *vu, const struct vhost_user_mem *m, int *fds)
	__attribute__((warn_unused_result));
void vhost_user_unmap_all(struct vhost_user *vu);

#endif
