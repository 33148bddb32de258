/*
 * A virtio device, independent of its transport. Device code (console, fs, vsock, balloon)
 * sees queues, guest memory and an event loop; the transport (virtio-mmio in our VMM, or a
 * vhost-user backend for QEMU) fills those in and tells the device when to start and stop.
 */
#ifndef KRUN_VIRTIO_DEVICE_H
#define KRUN_VIRTIO_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/evloop.h"
#include "virtio/virtq.h"
#include "vmm/gmem.h"

#define VIRTIO_DEV_MAX_QUEUES 10

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;         /* virtio 1.2 section 5 */
	uint64_t features;          /* device-specific offer; VERSION_1 etc. are added by the transport */
	uint16_t num_queues;
	uint16_t queue_max_size;    /* the largest ring accepted (a vhost-user frontend picks it) */
	/*
	 * The ring size offered where the device chooses (virtio-mmio QueueNumMax), when smaller
	 * than queue_max_size; 0: queue_max_size. A Linux driver fills every receive entry of a
	 * ring it is offered with a buffer of its own RAM, so the offer is guest memory.
	 */
	uint16_t queue_offer_size;
	/*
	 * Queues (bit q) whose notifications the device's own threads wait for, so a kick wakes
	 * the thread that serves it with no hop through the event loop: the device asks for the
	 * queue's notify fd (virtio_dev_notify_fd) in activate, and the transport neither reads
	 * nor watches that fd from then until reset returns. Without an fd (e.g. unit tests)
	 * kicks come as queue_notify calls, and queue_notify may come anyway (vhost-user calls
	 * it when a ring is enabled), so the device must accept both.
	 */
	uint32_t self_notified_queues;
	/* Driver accepted features and made the queues ready (DRIVER_OK). 0 or -errno. */
	int (*activate)(struct virtio_dev *dev);
	/* The driver kicked queue q (runs on the event loop thread). */
	void (*queue_notify)(struct virtio_dev *dev, unsigned int q);
	/* Stop using the queues; the transport resets them afterwards. */
	void (*reset)(struct virtio_dev *dev);
	/* Config space writes the device cares about (reads come from dev->config). */
	void (*config_write)(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len);
	void (*destroy)(struct virtio_dev *dev);
};

struct virtio_dev_transport {
	/* Raise the used-buffer interrupt for queue q (irqfd in-process, call fd in vhost-user). */
	void (*signal_queue)(struct virtio_dev *dev, unsigned int q);
	void (*signal_config)(struct virtio_dev *dev);
	/* The device hit a driver error it cannot recover from (sets DEVICE_NEEDS_RESET). */
	void (*needs_reset)(struct virtio_dev *dev);
	/* Queue q's notify fd (an eventfd, non-blocking) for a self-notified queue, or -1. */
	int (*notify_fd)(struct virtio_dev *dev, unsigned int q);
	void *opaque;
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;                 /* the device's own state */
	uint8_t *config;            /* device config space, owned by the device */
	uint32_t config_size;
	uint64_t driver_features;   /* negotiated, valid from activate on */
	const struct gmem *mem;     /* valid from activate on */
	struct evloop *loop;        /* the I/O thread's loop, set by the transport before activate */
	struct virtq vqs[VIRTIO_DEV_MAX_QUEUES];
	struct virtio_dev_transport transport;
};

static inline bool virtio_dev_has_feature(const struct virtio_dev *dev, unsigned int bit)
{
	return (dev->driver_features >> bit) & 1;
}

/* The ring size a transport offers the driver (queue_offer_size, else queue_max_size). */
static inline uint16_t virtio_dev_queue_offer(const struct virtio_dev_ops *ops)
{
	return ops->queue_offer_size && ops->queue_offer_size < ops->queue_max_size ?
	       ops->queue_offer_size : ops->queue_max_size;
}

/* Signal q if the driver wants it (event idx / NO_INTERRUPT). */
void virtio_dev_notify_used(struct virtio_dev *dev, unsigned int q);
/*
 * The fd the driver's kicks of self-notified queue q arrive on, valid from activate until
 * reset returns; -1 when the transport has none (kicks then come as queue_notify calls).
 */
int virtio_dev_notify_fd(struct virtio_dev *dev, unsigned int q);
/* A queue broke: mark the device for reset, never kill the process. */
void virtio_dev_fail(struct virtio_dev *dev, const char *why);
/* Frees the device and its private state via ops->destroy. */
void virtio_dev_destroy(struct virtio_dev *dev);

#endif
