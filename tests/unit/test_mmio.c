/* virtio-mmio transport against a fake driver: the Linux register sequence and every bad access we refuse. */
#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "test_mmio_driver.h"
#include "util/evloop.h"
#include "util/log.h"

struct fake_dev {
	struct virtio_dev dev;
	uint8_t config[8];
	int activated, resets, notifies, config_writes;
	unsigned int last_q;
	pthread_t activate_thread;
	int notify_fds[2];          /* virtio_dev_notify_fd at activation */
};

static int fake_activate(struct virtio_dev *dev)
{
	struct fake_dev *f = dev->priv;

	f->activated++;
	f->activate_thread = pthread_self();
	for (unsigned int q = 0; q < 2; q++)
		f->notify_fds[q] = virtio_dev_notify_fd(dev, q);
	return 0;
}

static void fake_notify(struct virtio_dev *dev, unsigned int q)
{
	struct fake_dev *f = dev->priv;

	__atomic_add_fetch(&f->notifies, 1, __ATOMIC_SEQ_CST);
	f->last_q = q;
}

static void fake_reset(struct virtio_dev *dev)
{
	((struct fake_dev *)dev->priv)->resets++;
}

static void fake_config_write(struct virtio_dev *dev, uint32_t off, const void *data, uint32_t len)
{
	struct fake_dev *f = dev->priv;

	memcpy(f->config + off, data, len);
	f->config_writes++;
}

static void fake_destroy(struct virtio_dev *dev)
{
	(void)dev;  /* static storage in the tests */
}

static const struct virtio_dev_ops fake_ops = {
	.name = "fake", .device_id = 42, .features = 1ull << 3, .num_queues = 2, .queue_max_size = 64,
	.activate = fake_activate, .queue_notify = fake_notify, .reset = fake_reset,
	.config_write = fake_config_write, .destroy = fake_destroy,
};

/* Queue 1 is served by the device's own threads (virtio/device.h self_notified_queues). */
static const struct virtio_dev_ops fake_self_ops = {
	.name = "fake", .device_id = 42, .features = 1ull << 3, .num_queues = 2, .queue_max_size = 64,
	.self_notified_queues = 1u << 1,
	.activate = fake_activate, .queue_notify = fake_notify, .reset = fake_reset,
	.config_write = fake_config_write, .destroy = fake_destroy,
};

/* Offers 32-entry rings but would accept 64 from a transport that picks (vhost-user). */
static const struct virtio_dev_ops fake_offer_ops = {
	.name = "fake", .device_id = 42, .features = 1ull << 3, .num_queues = 2, .queue_max_size = 64,
	.queue_offer_size = 32,
	.activate = fake_activate, .queue_notify = fake_notify, .reset = fake_reset,
	.config_write = fake_config_write, .destroy = fake_destroy,
};

static struct fake_dev fdev;

static struct virtio_dev *new_fake(void)
{
	memset(&fdev, 0, sizeof(fdev));
	fdev.dev.ops = &fake_ops;
	fdev.dev.priv = &fdev;
	fdev.dev.config = fdev.config;
	fdev.dev.config_size = sizeof(fdev.config);
	memcpy(fdev.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	return &fdev.dev;
}

static void test_linux_sequence(void)
{
	struct mdrv d;
	int irq = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0;
	uint32_t c32 = 0;

	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(new_fake(), &d.mem, NULL, irq, &d.m), 0);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_DEVICE_ID), 42);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	mdrv_wr(&d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CHECK(mdrv_rd(&d, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << 3));
	CHECK(mdrv_rd(&d, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_RING_F_EVENT_IDX));
	mdrv_wr(&d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_DEVICE_FEATURES) & 1, 1);
	CHECK_EQ(mdrv_start(&d, 2), 0);
	CHECK_EQ(fdev.activated, 1);
	CHECK(fdev.dev.mem == &d.mem);
	CHECK(fdev.dev.vqs[1].active);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_STATUS), 0xf);
	/* Without a loop the kick runs inline. */
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CHECK_EQ(fdev.notifies, 1);
	CHECK_EQ(fdev.last_q, 1);
	fdev.dev.transport.signal_queue(&fdev.dev, 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	CHECK_EQ(read(irq, &v, 8), 8);
	mdrv_wr(&d, VIRTIO_MMIO_INTERRUPT_ACK, 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* Config space: byte and word reads, a write reaching the device, generation bump. */
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_CONFIG + 4, &c32, 4), 0);
	CHECK_EQ(c32, 0x88776655);
	CHECK_EQ(virtio_mmio_write(d.m, VIRTIO_MMIO_CONFIG + 1, "\x99", 1), 0);
	CHECK_EQ(fdev.config[1], 0x99);
	fdev.dev.transport.signal_config(&fdev.dev);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_INTERRUPT_STATUS), 2);
	/* Reset: device told, queues and status cleared. */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(fdev.resets, 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_STATUS), 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 1);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK(!fdev.dev.vqs[1].active);
	CHECK_EQ(mdrv_start(&d, 2), 0);
	CHECK_EQ(fdev.activated, 2);
	mdrv_free(&d);
	close(irq);
}

static void test_bad_accesses(void)
{
	struct mdrv d;
	uint64_t v64 = 0;
	uint16_t v16 = 0;
	uint32_t v = 0;

	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(new_fake(), &d.mem, NULL, -1, &d.m), 0);
	CHECK_EQ(virtio_mmio_read(d.m, 0x2, &v, 4), -EINVAL);           /* unaligned */
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_STATUS, &v16, 2), -EINVAL);  /* wrong size */
	CHECK_EQ(virtio_mmio_write(d.m, VIRTIO_MMIO_STATUS, &v16, 2), -EINVAL);
	CHECK_EQ(virtio_mmio_read(d.m, 0xf0, &v, 4), -EINVAL);          /* no such register */
	CHECK_EQ(virtio_mmio_write(d.m, 0x5000, &v, 4), -EINVAL);       /* beyond the page */
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_CONFIG + 8, &v, 4), -EINVAL); /* beyond config */
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_CONFIG + 6, &v, 4), -EINVAL); /* misaligned */
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_CONFIG, &v64, 8), 0);
	CHECK_EQ(virtio_mmio_read(d.m, VIRTIO_MMIO_CONFIG + 3, &v, 3), -EINVAL);
	/* DRIVER_OK before FEATURES_OK, kicks of missing queues, queue selects out of range. */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0x7), -EINVAL);
	CHECK_EQ(fdev.activated, 0);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 7), 0);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff), 0);
	CHECK_EQ(fdev.notifies, 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 99);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 8), -EINVAL);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1), -EINVAL);
	mdrv_free(&d);
}

static void test_feature_negotiation(void)
{
	struct mdrv d;

	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(new_fake(), &d.mem, NULL, -1, &d.m), 0);
	/* No VERSION_1: FEATURES_OK does not stick (legacy drivers are not supported). */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 3);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 3);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0xb);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* A feature the device never offered: refused as well. */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 3);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1 | (1u << 20));
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0xb);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	/* Clearing bits without a reset is refused. */
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_STATUS, 1), -EINVAL);
	/* The negotiated EVENT_IDX reaches the queue. */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 3);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_RING_F_EVENT_IDX);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0xb);
	CHECK_EQ(mdrv_setup_queue(&d, 0), 0);
	CHECK(fdev.dev.vqs[0].event_idx);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 0), -EINVAL); /* after FEATURES_OK */
	mdrv_free(&d);
}

static void test_bad_queues(void)
{
	struct mdrv d;

	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(new_fake(), &d.mem, NULL, -1, &d.m), 0);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 3);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0xb);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
	/* Rings outside guest memory. */
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 16);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)mdrv_ring(0, 1));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)mdrv_ring(0, 2));
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK(mdrv_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* A used ring straddling the end of RAM, a misaligned one, sizes the spec forbids. */
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)mdrv_ring(0, 0));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(MDRV_RAM_GPA + MDRV_RAM_SIZE - 8));
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)mdrv_ring(0, 2) + 2);
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)mdrv_ring(0, 2));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_HIGH, 0xffffffff);
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 12);
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 128);
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 0);
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	/* After a reset a correct setup works, and queue changes after DRIVER_OK are refused. */
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_STATUS), 0);
	CHECK_EQ(mdrv_start(&d, 1), 0);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000), -EINVAL);
	CHECK_EQ(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 0), -EINVAL);
	CHECK(fdev.dev.vqs[0].desc_gpa == mdrv_ring(0, 0));
	mdrv_free(&d);
}

/* The driver sees the offered size as QueueNumMax, and may not go above it. */
static void test_offered_size(void)
{
	struct mdrv d;
	struct virtio_dev *dev = new_fake();

	dev->ops = &fake_offer_ops;
	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(dev, &d.mem, NULL, -1, &d.m), 0);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 3);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(&d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0xb);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_SEL, 0);
	CHECK_EQ(mdrv_rd(&d, VIRTIO_MMIO_QUEUE_NUM_MAX), 32);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NUM, 64);
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)mdrv_ring(0, 0));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)mdrv_ring(0, 1));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)mdrv_ring(0, 2));
	CHECK(mdrv_wr(&d, VIRTIO_MMIO_QUEUE_READY, 1) < 0);
	CHECK(mdrv_rd(&d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(mdrv_start(&d, 2), 0);     /* MDRV_QSIZE (16) rings: within the offer */
	CHECK(fdev.dev.vqs[1].active);
	mdrv_free(&d);
}

static void *loop_thread(void *loop)
{
	evloop_run(loop);
	return NULL;
}

/* With a loop, device callbacks run on the loop thread and kicks travel through eventfds. */
static void test_loop_thread(void)
{
	struct evloop *loop = evloop_create();
	struct mdrv d;
	pthread_t t;
	uint64_t one = 1;

	CHECK(loop != NULL);
	CHECK_EQ(mdrv_init(&d), 0);
	CHECK_EQ(virtio_mmio_create(new_fake(), &d.mem, loop, -1, &d.m), 0);
	CHECK(virtio_mmio_notify_fd(d.m, 1) >= 0);
	pthread_create(&t, NULL, loop_thread, loop);
	CHECK_EQ(mdrv_start(&d, 2), 0);
	CHECK_EQ(fdev.activated, 1);
	CHECK(!pthread_equal(fdev.activate_thread, pthread_self()));
	CHECK_EQ(write(virtio_mmio_notify_fd(d.m, 1), &one, 8), 8);    /* as KVM's ioeventfd would */
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);                       /* an MMIO-exit kick */
	for (int i = 0; i < 1000 && __atomic_load_n(&fdev.notifies, __ATOMIC_SEQ_CST) < 2; i++)
		usleep(1000);
	CHECK_EQ(fdev.notifies, 2);
	evloop_stop(loop);
	pthread_join(t, NULL);
	virtio_mmio_detach_loop(d.m);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);     /* after the loop is gone: inline */
	CHECK_EQ(fdev.resets, 1);
	mdrv_free(&d);
	evloop_destroy(loop);
}

/*
 * A self-notified queue: the device gets the queue's notify fd, the loop never reads it (a
 * kick, by ioeventfd or by a register write, stays on the fd for the device's threads), and
 * the other queue still reaches queue_notify on the loop.
 */
static void test_self_notified(void)
{
	struct evloop *loop = evloop_create();
	struct mdrv d;
	pthread_t t;
	uint64_t v = 0;

	CHECK(loop != NULL);
	CHECK_EQ(mdrv_init(&d), 0);
	new_fake()->ops = &fake_self_ops;
	CHECK_EQ(virtio_mmio_create(&fdev.dev, &d.mem, loop, -1, &d.m), 0);
	pthread_create(&t, NULL, loop_thread, loop);
	CHECK_EQ(mdrv_start(&d, 2), 0);
	CHECK_EQ(fdev.activated, 1);
	CHECK_EQ(fdev.notify_fds[0], -1);
	CHECK(fdev.notify_fds[1] >= 0);
	CHECK_EQ(fdev.notify_fds[1], virtio_mmio_notify_fd(d.m, 1));
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 1);       /* no ioeventfd: written to the fd */
	mdrv_wr(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	for (int i = 0; i < 1000 && __atomic_load_n(&fdev.notifies, __ATOMIC_SEQ_CST) < 1; i++)
		usleep(1000);
	usleep(20000);                                  /* time for a wrong read by the loop */
	CHECK_EQ(fdev.notifies, 1);
	CHECK_EQ(fdev.last_q, 0);
	CHECK_EQ(read(fdev.notify_fds[1], &v, sizeof(v)), (ssize_t)sizeof(v));
	CHECK_EQ(v, 1);
	evloop_stop(loop);
	pthread_join(t, NULL);
	virtio_mmio_detach_loop(d.m);
	mdrv_wr(&d, VIRTIO_MMIO_STATUS, 0);
	CHECK_EQ(fdev.resets, 1);
	mdrv_free(&d);
	evloop_destroy(loop);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);     /* the refusals above warn by design */
	RUN_TEST(test_linux_sequence);
	RUN_TEST(test_bad_accesses);
	RUN_TEST(test_feature_negotiation);
	RUN_TEST(test_bad_queues);
	RUN_TEST(test_loop_thread);
	RUN_TEST(test_self_notified);
	RUN_TEST(test_offered_size);
	return HARNESS_EXIT();
}
