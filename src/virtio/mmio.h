/* virtio-mmio transport, version 2 (virtio 1.2 section 4.2.2), independent of KVM. */
#ifndef KRUN_VIRTIO_MMIO_H
#define KRUN_VIRTIO_MMIO_H

#include <stdint.h>

#include "util/evloop.h"
#include "virtio/device.h"
#include "vmm/gmem.h"

#define VIRTIO_MMIO_REGION_SIZE 0x1000
#define VIRTIO_MMIO_VENDOR 0x4e55524bu   /* "KRUN" */

struct virtio_mmio;

/*
 * Wrap dev (owned from now on, also on failure). irq_fd: eventfd written when the interrupt
 * line should be raised (KVM irqfd), or -1. loop: the I/O thread's loop where every device
 * callback runs (activate, reset, queue_notify, config_write), or NULL to run them inline
 * on the caller's thread (unit tests without a loop thread).
 */
int virtio_mmio_create(struct virtio_dev *dev, const struct gmem *mem, struct evloop *loop,
		       int irq_fd, struct virtio_mmio **out) __attribute__((warn_unused_result));
/* Resets the device (running ops->reset inline) and destroys it. Call after the loop stopped. */
void virtio_mmio_destroy(struct virtio_mmio *m);

/*
 * Register access at offset `off` of the device's page, len 1/2/4/8. Returns 0, or -EINVAL
 * for an access the spec forbids (the read then yields zeros, the write is ignored).
 */
int virtio_mmio_read(struct virtio_mmio *m, uint64_t off, void *data, unsigned int len);
int virtio_mmio_write(struct virtio_mmio *m, uint64_t off, const void *data, unsigned int len);

/* Eventfd the driver's kicks of queue q arrive on (for KVM_IOEVENTFD), or -1. */
int virtio_mmio_notify_fd(const struct virtio_mmio *m, unsigned int q);
unsigned int virtio_mmio_num_queues(const struct virtio_mmio *m);
/* The loop thread is gone: waiters give up, later device callbacks run inline. */
void virtio_mmio_detach_loop(struct virtio_mmio *m);
uint32_t virtio_mmio_status(const struct virtio_mmio *m);
uint32_t virtio_mmio_device_id(const struct virtio_mmio *m);

#endif
