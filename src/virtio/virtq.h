/* Split virtqueue, device side (virtio 1.2 section 2.7): validated rings, bounded chain walks. */
#ifndef KRUN_VIRTIO_VIRTQ_H
#define KRUN_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/gmem.h"

#define VIRTQ_MAX_SIZE 32768
/* Most buffers one chain may carry (direct + indirect): bounds host work per request. */
#define VIRTQ_MAX_SEGS 1024

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtq {
	/* Set by the transport from the driver's writes. */
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;     /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;      /* VIRTIO_RING_F_INDIRECT_DESC negotiated */

	/* Set by virtq_activate. */
	const struct gmem *mem;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	bool active;
	bool broken;        /* the driver broke the protocol: stop touching this queue */
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	bool signalled_used_valid;
};

/*
 * One popped chain. iov[0..out_num) are device-readable (driver's request), then
 * iov[out_num..out_num+in_num) device-writable. Pointers are into guest memory, checked.
 */
struct virtq_elem {
	uint16_t head;
	uint16_t out_num;
	uint16_t in_num;
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Resets ring state; keeps nothing from a previous activation. */
void virtq_reset(struct virtq *vq);
/* Checks alignment and that all three rings lie in guest memory; -EINVAL/-EFAULT otherwise. */
int virtq_activate(struct virtq *vq, const struct gmem *mem) __attribute__((warn_unused_result));

/* 1: elem filled; 0: nothing available; <0: guest protocol error (queue marked broken). */
int virtq_pop(struct virtq *vq, struct virtq_elem *elem) __attribute__((warn_unused_result));
/* Put back the last popped chain (e.g. the device lacked resources to process it now). */
void virtq_unpop(struct virtq *vq);
/* Return a chain to the driver with `len` bytes written into its writable part. */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* After pushes: does the driver want an interrupt now (event idx / NO_INTERRUPT)? */
bool virtq_should_signal(struct virtq *vq);
/* Ask for (or stop asking for) kicks; enable returns true if buffers arrived meanwhile. */
bool virtq_enable_notify(struct virtq *vq);
void virtq_disable_notify(struct virtq *vq);
bool virtq_has_avail(struct virtq *vq);

#endif
