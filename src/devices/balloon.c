/*
 * virtio-balloon (virtio 1.2 section 5.5) for free page reporting only (5.5.6.6): the guest lends
 * ranges of free RAM to the device and the host drops their backing pages, so an idle VM costs
 * the host only the memory its guest really uses. The device never asks for inflation.
 */
#define LOG_MODULE "balloon"
#include "devices/balloon.h"

#include <errno.h>
#include <linux/virtio_balloon.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "virtio/device.h"

#define INFLATE_Q 0
#define DEFLATE_Q 1
/*
 * 5.5.2 lists inflateq, deflateq, statsq, free_page_vq, reporting_vq as 0..4 and says the last
 * three exist only with their features. Linux's find_vqs gives the queues that exist consecutive
 * indexes, so with PAGE_REPORTING alone reporting_vq is queue 2; a driver that reads the list as
 * fixed positions uses 4. We offer neither STATS_VQ nor FREE_PAGE_HINT, so 2 and 4 can only mean
 * reporting_vq: both are served.
 */
#define REPORT_Q_PACKED 2
#define REPORT_Q_FIXED 4
#define NUM_QUEUES 5
/* Linux refuses page reporting on a queue smaller than PAGE_REPORTING_CAPACITY (32 entries). */
#define QUEUE_SIZE 64
/* 5.5.6: the balloon's unit is a 4 KiB page, whatever the host's page size. */
#define BALLOON_PAGE_SIZE 4096u

struct balloon {
	struct virtio_dev dev;
	struct virtio_balloon_config config;
	uint64_t align;             /* what a release needs: balloon page and host page aligned */
	uint64_t released;          /* bytes given back to the host since creation */
	struct virtq_elem elem;
};

static struct balloon *to_balloon(struct virtio_dev *dev)
{
	return dev->priv;
}

/* Defence in depth behind virtq_pop: [p, p+len) must lie in one guest RAM region. */
static bool in_one_region(const struct gmem *mem, const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned int i = 0; i < mem->nr; i++) {
		uintptr_t start = (uintptr_t)mem->regions[i].hva;
		uint64_t size = mem->regions[i].size;
		if (a >= start && a - start < size && len <= size - (a - start))
			return true;
	}
	return false;
}

static bool range_ok(const struct balloon *b, const struct iovec *iov)
{
	uintptr_t start = (uintptr_t)iov->iov_base;

	return iov->iov_len != 0 && start % b->align == 0 && iov->iov_len % b->align == 0 &&
	       in_one_region(b->dev.mem, iov->iov_base, iov->iov_len);
}

/*
 * Guest RAM is a MAP_SHARED memfd: MADV_DONTNEED would only drop our page table entries and leave
 * the pages in the file. MADV_REMOVE punches a hole in the file (like fallocate PUNCH_HOLE on the
 * memfd), and KVM's MMU notifier unmaps the range from the guest, whose next touch faults in a
 * zero page. Private anonymous memory (unit tests, some vhost-user frontends) has no MADV_REMOVE;
 * MADV_DONTNEED frees it there.
 */
static int release(void *p, size_t len)
{
	if (madvise(p, len, MADV_REMOVE) == 0 || madvise(p, len, MADV_DONTNEED) == 0)
		return 0;
	return -errno;
}

/* 5.5.6.6: each buffer of a reporting chain is a range of free guest pages; hand the chain back
 * (used length 0: the device writes nothing) once the ranges are released. */
static void process_reports(struct balloon *b, unsigned int q)
{
	struct virtq *vq = &b->dev.vqs[q];
	bool pushed = false;
	int r;

	while ((r = virtq_pop(vq, &b->elem)) > 0) {
		unsigned int n = b->elem.out_num + b->elem.in_num;

		for (unsigned int i = 0; i < n; i++) {
			const struct iovec *iov = &b->elem.iov[i];
			int err;

			if (!range_ok(b, iov)) {
				log_warn_guest("reported range of %zu bytes is not whole pages: ignored", iov->iov_len);
				continue;
			}
			err = release(iov->iov_base, iov->iov_len);
			if (err)
				log_warn_guest("cannot release %zu reported bytes: %s", iov->iov_len, strerror(-err));
			else
				b->released += iov->iov_len;
		}
		virtq_push(vq, b->elem.head, 0);
		pushed = true;
	}
	if (r < 0)
		virtio_dev_fail(&b->dev, "bad reporting chain");
	if (pushed)
		virtio_dev_notify_used(&b->dev, q);
}

/* num_pages stays 0, so a conforming driver never inflates (5.5.6.1); buffers that come anyway
 * are returned untouched so the driver cannot hang on them. */
static void return_buffers(struct balloon *b, unsigned int q)
{
	struct virtq *vq = &b->dev.vqs[q];
	bool pushed = false;
	int r;

	while ((r = virtq_pop(vq, &b->elem)) > 0) {
		virtq_push(vq, b->elem.head, 0);
		pushed = true;
	}
	if (r < 0)
		virtio_dev_fail(&b->dev, "bad inflate/deflate chain");
	if (pushed)
		virtio_dev_notify_used(&b->dev, q);
}

static void balloon_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct balloon *b = to_balloon(dev);

	if (q == INFLATE_Q || q == DEFLATE_Q)
		return_buffers(b, q);
	else if ((q == REPORT_Q_PACKED || q == REPORT_Q_FIXED) &&
		 virtio_dev_has_feature(dev, VIRTIO_BALLOON_F_REPORTING))
		process_reports(b, q);
	else
		log_warn_guest("notify for balloon queue %u, which does not exist", q);
}

static void balloon_reset(struct virtio_dev *dev)
{
	log_debug("%llu KiB of guest RAM released so far", (unsigned long long)(to_balloon(dev)->released >> 10));
}

/* 5.5.4: the driver writes only `actual`; the other fields are the device's. */
static void balloon_config_write(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len)
{
	struct balloon *b = to_balloon(dev);

	if (offset == offsetof(struct virtio_balloon_config, actual) && len == sizeof(b->config.actual))
		memcpy(&b->config.actual, data, len);
}

static void balloon_destroy(struct virtio_dev *dev)
{
	struct balloon *b = to_balloon(dev);

	if (b->released)
		log_debug("released %llu KiB of guest RAM", (unsigned long long)(b->released >> 10));
	free(b);
}

static const struct virtio_dev_ops balloon_ops = {
	.name = "virtio-balloon",
	.device_id = 5,
	.features = 1ull << VIRTIO_BALLOON_F_REPORTING,
	.num_queues = NUM_QUEUES,
	.queue_max_size = QUEUE_SIZE,
	.queue_notify = balloon_queue_notify,
	.reset = balloon_reset,
	.config_write = balloon_config_write,
	.destroy = balloon_destroy,
};

int virtio_balloon_create(struct virtio_dev **out)
{
	struct balloon *b = calloc(1, sizeof(*b));
	long host_page = sysconf(_SC_PAGESIZE);

	if (!b)
		return -ENOMEM;
	b->align = host_page > (long)BALLOON_PAGE_SIZE ? (uint64_t)host_page : BALLOON_PAGE_SIZE;
	b->dev.ops = &balloon_ops;
	b->dev.priv = b;
	b->dev.config = (uint8_t *)&b->config;
	b->dev.config_size = sizeof(b->config);
	*out = &b->dev;
	return 0;
}
