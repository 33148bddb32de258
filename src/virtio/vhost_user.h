/*
 * vhost-user backend: serves one struct virtio_dev to a frontend (QEMU) over a UNIX socket,
 * so QEMU's software CPU can run our guest with our own device code behind its virtio-mmio.
 * Wire format and message semantics: QEMU docs/interop/vhost-user.rst ("the spec" below).
 */
#ifndef KRUN_VIRTIO_VHOST_USER_H
#define KRUN_VIRTIO_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

struct evloop;
struct virtio_dev;
struct vhost_user;

/* Spec "Header": version in bits 0-1, reply bit 2, need_reply bit 3. */
#define VHOST_USER_VERSION 0x1u
#define VHOST_USER_VERSION_MASK 0x3u
#define VHOST_USER_FLAG_REPLY (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)

/* Spec "Front-end message types" (ids). */
enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_RESET_DEVICE = 34,
};

/* Spec "Protocol features" (bit numbers) and the feature bit that announces them. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_USER_PROTOCOL_F_MQ 0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE 13

/* SET_VRING_KICK/CALL/ERR payload: ring index in bits 0-7, bit 8 = no fd attached. */
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD (1u << 8)

/* SET_MEM_TABLE carries at most this many regions (and fds). */
#define VHOST_USER_MAX_REGIONS 8
#define VHOST_USER_MAX_FDS 8
#define VHOST_USER_MAX_CONFIG 256

struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;      /* payload bytes after this header */
};

struct vhost_user_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;      /* frontend user addresses, not guest-physical */
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vhost_user_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vhost_user_mem {
	uint32_t nregions;
	uint32_t padding;
	struct vhost_user_region regions[VHOST_USER_MAX_REGIONS];
};

struct vhost_user_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VHOST_USER_MAX_CONFIG];
};

#define VHOST_USER_CONFIG_HDR_SIZE 12u
#define VHOST_USER_MEM_HDR_SIZE 8u

/*
 * Serve dev on the connected socket `sock` from `loop` (socket messages and kicks run on the
 * loop's thread). Takes ownership of dev and sock on success. The device is activated once
 * the frontend enables (or, without protocol features, kicks) a ring, and reset when a ring
 * is stopped (GET_VRING_BASE), the device is reset, or the frontend hangs up.
 */
int vhost_user_create(struct virtio_dev *dev, struct evloop *loop, int sock, struct vhost_user **out)
	__attribute__((warn_unused_result));
/* Stops the device and frees everything. Call on the loop thread or after the loop stopped. */
void vhost_user_destroy(struct vhost_user *vu);
/* True once the frontend hung up or broke the protocol (the backend then serves nothing). */
bool vhost_user_closed(const struct vhost_user *vu);

/* Log each ring's state (indexes, flags): for reports when a guest stalls. Racy, diagnostic only. */
void vhost_user_dump(struct vhost_user *vu);

/* A listening UNIX socket at path (created fresh, mode 0600). Returns the fd or -errno. */
int vhost_user_listen(const char *path) __attribute__((warn_unused_result));
/* Accept one connection within timeout_ms (-1: forever). Returns the fd or -errno (-ETIMEDOUT). */
int vhost_user_accept(int listen_fd, int timeout_ms) __attribute__((warn_unused_result));

#endif
