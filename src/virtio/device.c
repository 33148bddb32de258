/* Transport-independent helpers every virtio device uses to talk back to the driver. */
#define LOG_MODULE "virtio"
#include "virtio/device.h"

#include <stdlib.h>

#include "util/log.h"

void virtio_dev_notify_used(struct virtio_dev *dev, unsigned int q)
{
	if (q < dev->ops->num_queues && virtq_should_signal(&dev->vqs[q]) && dev->transport.signal_queue)
		dev->transport.signal_queue(dev, q);
}

int virtio_dev_notify_fd(struct virtio_dev *dev, unsigned int q)
{
	if (q >= dev->ops->num_queues || !((dev->ops->self_notified_queues >> q) & 1) ||
	    !dev->transport.notify_fd)
		return -1;
	return dev->transport.notify_fd(dev, q);
}

void virtio_dev_fail(struct virtio_dev *dev, const char *why)
{
	log_warn_guest("%s: device needs reset: %s", dev->ops->name, why);
	if (dev->transport.needs_reset)
		dev->transport.needs_reset(dev);
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
	if (!dev)
		return;
	if (dev->ops->destroy)
		dev->ops->destroy(dev);
	else
		free(dev);
}
