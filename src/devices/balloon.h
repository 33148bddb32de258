/* virtio-balloon (virtio 1.2 section 5.5) used for free page reporting: guest-freed RAM goes back to the host. */
#ifndef KRUN_DEVICES_BALLOON_H
#define KRUN_DEVICES_BALLOON_H

struct virtio_dev;

/*
 * Offers VIRTIO_BALLOON_F_PAGE_REPORTING only and never asks the guest to inflate (num_pages 0).
 * Reported ranges are released with MADV_REMOVE (a hole punched in the guest RAM memfd), so an
 * idle guest's host footprint shrinks to what it really uses. 0 or -ENOMEM.
 */
int virtio_balloon_create(struct virtio_dev **out) __attribute__((warn_unused_result));

#endif
