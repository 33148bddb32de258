/* virtio-console through the mmio transport and a real loop thread: byte-exact TX, RX, backpressure, EOF. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include "devices/console.h"
#include "harness.h"
#include "test_mmio_driver.h"
#include "util/evloop.h"
#include "util/log.h"

struct rig {
	struct mdrv d;
	struct evloop *loop;
	pthread_t thread;
	int in_w, out_r;
};

static void *loop_thread(void *loop)
{
	evloop_run(loop);
	return NULL;
}

static int rig_start(struct rig *r)
{
	struct virtio_dev *dev;
	int in[2], out[2];

	if (pipe(in) || pipe(out) || mdrv_init(&r->d))
		return -1;
	if (virtio_console_create(&(struct console_config){ .in_fd = in[0], .out_fd = out[1] }, &dev))
		return -2;
	close(in[0]);
	close(out[1]);     /* the device holds its own descriptions */
	r->in_w = in[1];
	r->out_r = out[0];
	r->loop = evloop_create();
	if (!r->loop || virtio_mmio_create(dev, &r->d.mem, r->loop, -1, &r->d.m))
		return -3;
	pthread_create(&r->thread, NULL, loop_thread, r->loop);
	return mdrv_start(&r->d, 2);
}

static void rig_stop(struct rig *r)
{
	evloop_stop(r->loop);
	pthread_join(r->thread, NULL);
	virtio_mmio_detach_loop(r->d.m);
	mdrv_free(&r->d);
	evloop_destroy(r->loop);
	close(r->in_w);
	close(r->out_r);
}

static int wait_used(struct rig *r, unsigned int q, uint32_t *len)
{
	for (int i = 0; i < 2000; i++) {
		if (mdrv_used(&r->d, q, len))
			return 1;
		usleep(500);
	}
	return 0;
}

static ssize_t read_timeout(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1 ? read(fd, buf, len) : -1;
}

static void kick(struct rig *r, unsigned int q)
{
	mdrv_wr(&r->d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void test_tx_rx(void)
{
	struct rig r;
	uint64_t gpa[2];
	uint32_t lens[2] = { 5, 7 }, len = 0;
	char buf[64];
	uint32_t ports = 0;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(virtio_mmio_read(r.d.m, VIRTIO_MMIO_CONFIG + 4, &ports, 4), 0);
	CHECK_EQ(ports, 1);
	gpa[0] = mdrv_alloc(&r.d, 5);
	gpa[1] = mdrv_alloc(&r.d, 7);
	memcpy(mdrv_hva(&r.d, gpa[0]), "hello", 5);
	memcpy(mdrv_hva(&r.d, gpa[1]), " world\n", 7);
	mdrv_post(&r.d, 1, gpa, lens, 2, 2);
	kick(&r, 1);
	CHECK_EQ(read_timeout(r.out_r, buf, sizeof(buf)), 12);
	CHECK(!memcmp(buf, "hello world\n", 12));
	CHECK(wait_used(&r, 1, &len));
	/* Receive: the buffer comes first, input after. */
	gpa[0] = mdrv_alloc(&r.d, 16);
	lens[0] = 16;
	mdrv_post(&r.d, 0, gpa, lens, 0, 1);
	kick(&r, 0);
	CHECK_EQ(write(r.in_w, "abc", 3), 3);
	CHECK(wait_used(&r, 0, &len));
	CHECK_EQ(len, 3);
	CHECK(!memcmp(mdrv_hva(&r.d, gpa[0]), "abc", 3));
	/* Input before any buffer waits for one. */
	CHECK_EQ(write(r.in_w, "xyz", 3), 3);
	usleep(20000);
	CHECK(!mdrv_used(&r.d, 0, &len));
	gpa[0] = mdrv_alloc(&r.d, 16);
	mdrv_post(&r.d, 0, gpa, lens, 0, 1);
	kick(&r, 0);
	CHECK(wait_used(&r, 0, &len));
	CHECK_EQ(len, 3);
	CHECK(!memcmp(mdrv_hva(&r.d, gpa[0]), "xyz", 3));
	rig_stop(&r);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* A full out_fd stops the transmit queue without spinning; everything arrives in order. */
static void test_backpressure(void)
{
	enum { TOTAL = 256 * 1024 };
	struct rig r;
	uint64_t gpa;
	uint32_t len = TOTAL;
	uint8_t *src, buf[4096];
	size_t got = 0;
	double cpu;
	bool same = true;

	CHECK_EQ(rig_start(&r), 0);
	CHECK(fcntl(r.out_r, F_SETPIPE_SZ, 4096) > 0);
	gpa = mdrv_alloc(&r.d, TOTAL);
	src = mdrv_hva(&r.d, gpa);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (uint8_t)(i * 7 + i / 251);
	mdrv_post(&r.d, 1, &gpa, &len, 1, 1);
	kick(&r, 1);
	cpu = cpu_seconds();
	usleep(100000);
	CHECK(cpu_seconds() - cpu < 0.03);      /* waiting for EPOLLOUT, not polling */
	CHECK(!mdrv_used(&r.d, 1, NULL));
	while (got < TOTAL) {
		ssize_t n = read_timeout(r.out_r, buf, sizeof(buf));
		CHECK(n > 0);
		same &= !memcmp(buf, src + got, (size_t)n);
		got += (size_t)n;
	}
	CHECK(same);
	CHECK(wait_used(&r, 1, NULL));
	rig_stop(&r);
}

static void test_eof_and_bad_chain(void)
{
	struct rig r;
	uint64_t gpa = 0x7f0000000ull;
	uint32_t len = 16;

	CHECK_EQ(rig_start(&r), 0);
	close(r.in_w);
	r.in_w = open("/dev/null", O_WRONLY);
	gpa = mdrv_alloc(&r.d, 16);
	mdrv_post(&r.d, 0, &gpa, &len, 0, 1);
	kick(&r, 0);
	usleep(20000);
	CHECK(!mdrv_used(&r.d, 0, NULL));       /* EOF: the buffer stays with the device */
	gpa = 0x7f0000000ull;                   /* far outside guest RAM */
	mdrv_post(&r.d, 1, &gpa, &len, 1, 1);
	kick(&r, 1);
	for (int i = 0; i < 1000 && !(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET); i++)
		usleep(1000);
	CHECK(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	CHECK_EQ(mdrv_start(&r.d, 2), 0);       /* a reset brings it back */
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	rig_stop(&r);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);     /* the bad chain warns by design */
	RUN_TEST(test_tx_rx);
	RUN_TEST(test_backpressure);
	RUN_TEST(test_eof_and_bad_chain);
	return HARNESS_EXIT();
}
