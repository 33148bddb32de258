/* virtio-balloon free page reporting through the mmio transport, over guest RAM in a shared memfd. */
#include <errno.h>
#include <linux/virtio_balloon.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/balloon.h"
#include "harness.h"
#include "test_mmio_driver.h"
#include "util/log.h"

#define NQ 5
#define PAGE 4096u
#define PAT_GPA (MDRV_RAM_GPA + 0x80000)   /* 8 pattern pages, clear of the rings */
#define PAT_PAGES 8
#define RAM_END (MDRV_RAM_GPA + MDRV_RAM_SIZE)
#define F_REPORTING (1u << VIRTIO_BALLOON_F_REPORTING)

struct rig {
	struct mdrv d;
	int memfd;
	uint16_t avail_idx[NQ], used_seen[NQ], next_desc[NQ];
};

static int rig_ram(struct rig *r)
{
	void *ram;

	memset(r, 0, sizeof(*r));
	r->memfd = memfd_create("balloon-test", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, MDRV_RAM_SIZE) < 0)
		return -1;
	ram = mmap(NULL, MDRV_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (ram == MAP_FAILED)
		return -1;
	r->d.ram = ram;
	gmem_init(&r->d.mem);
	return gmem_add_region(&r->d.mem, MDRV_RAM_GPA, MDRV_RAM_SIZE, ram, MDRV_RAM_GPA);
}

/* Linux's probe order with driver features `lo` (bits 0-31) plus VERSION_1; queues in qmask. */
static int rig_start(struct rig *r, uint32_t lo, unsigned int qmask)
{
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	struct virtio_dev *dev;

	if (rig_ram(r) || virtio_balloon_create(&dev) ||
	    virtio_mmio_create(dev, &r->d.mem, NULL, -1, &r->d.m))
		return -1;
	/* Allocate the rings and the buffer area now, so block counts below move only by releases. */
	memset(mdrv_hva(&r->d, MDRV_RAM_GPA), 0, 0x41000);
	for (unsigned int i = 0; i < PAT_PAGES; i++)
		memset(mdrv_hva(&r->d, PAT_GPA + i * PAGE), 0x40 + (int)i, PAGE);
	mdrv_wr(&r->d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(&r->d, VIRTIO_MMIO_STATUS, st);
	mdrv_wr(&r->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(&r->d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mdrv_wr(&r->d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(&r->d, VIRTIO_MMIO_DRIVER_FEATURES, lo);
	st |= VIRTIO_CONFIG_S_FEATURES_OK;
	mdrv_wr(&r->d, VIRTIO_MMIO_STATUS, st);
	if (!(mdrv_rd(&r->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -2;
	for (unsigned int q = 0; q < NQ; q++)
		if ((qmask >> q & 1) && mdrv_setup_queue(&r->d, q))
			return -3;
	return mdrv_wr(&r->d, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

static void rig_stop(struct rig *r)
{
	virtio_mmio_destroy(r->d.m);
	munmap(r->d.ram, MDRV_RAM_SIZE);
	close(r->memfd);
}

/* One chain of n buffers (the first nout device-readable) on queue q, then the kick. */
static void post(struct rig *r, unsigned int q, const uint64_t *gpas, const uint32_t *lens,
		 unsigned int nout, unsigned int n)
{
	struct vring_desc *desc = mdrv_hva(&r->d, mdrv_ring(q, 0));
	struct vring_avail *avail = mdrv_hva(&r->d, mdrv_ring(q, 1));
	uint16_t head = r->next_desc[q], i = head;

	for (unsigned int k = 0; k < n; k++) {
		uint16_t next = (uint16_t)((i + 1) % MDRV_QSIZE);
		desc[i] = (struct vring_desc){ .addr = gpas[k], .len = lens[k], .next = next,
			.flags = (uint16_t)((k >= nout ? VRING_DESC_F_WRITE : 0) | (k + 1 < n ? VRING_DESC_F_NEXT : 0)) };
		i = next;
	}
	r->next_desc[q] = i;
	avail->ring[r->avail_idx[q] % MDRV_QSIZE] = head;
	__atomic_store_n(&avail->idx, ++r->avail_idx[q], __ATOMIC_RELEASE);
	mdrv_wr(&r->d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Used length of the next used element on q, or -1 if none. */
static long long used(struct rig *r, unsigned int q)
{
	struct vring_used *u = mdrv_hva(&r->d, mdrv_ring(q, 2));

	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == r->used_seen[q])
		return -1;
	return u->ring[r->used_seen[q]++ % MDRV_QSIZE].len;
}

static long long blocks(struct rig *r)
{
	struct stat st;

	return fstat(r->memfd, &st) ? -1 : (long long)st.st_blocks;
}

static bool page_is(struct rig *r, unsigned int i, int byte)
{
	const uint8_t *p = mdrv_hva(&r->d, PAT_GPA + i * PAGE);

	for (unsigned int k = 0; k < PAGE; k++)
		if (p[k] != byte)
			return false;
	return true;
}

static bool pattern_intact(struct rig *r)
{
	for (unsigned int i = 0; i < PAT_PAGES; i++)
		if (!page_is(r, i, 0x40 + (int)i))
			return false;
	return true;
}

static bool needs_reset(struct rig *r)
{
	return mdrv_rd(&r->d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static uint32_t config_rd(struct rig *r, uint32_t off)
{
	uint32_t v = 0xdead;

	virtio_mmio_read(r->d.m, VIRTIO_MMIO_CONFIG + off, &v, 4);
	return v;
}

/* 5.5.3: only PAGE_REPORTING is offered; 5.5.4: nothing to inflate; `actual` is the driver's. */
static void test_offer_and_config(void)
{
	struct rig r;
	uint32_t seven = 7;

	CHECK_EQ(rig_start(&r, F_REPORTING, 0x7), 0);
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_DEVICE_ID), 5);
	mdrv_wr(&r.d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	/* Bits 0-23 are the device's (2.2); the transport adds ring features above. */
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_DEVICE_FEATURES) & 0xffffff, F_REPORTING);
	mdrv_wr(&r.d, VIRTIO_MMIO_QUEUE_SEL, 2);
	CHECK(mdrv_rd(&r.d, VIRTIO_MMIO_QUEUE_NUM_MAX) >= 32);     /* Linux's PAGE_REPORTING_CAPACITY */
	CHECK_EQ(config_rd(&r, offsetof(struct virtio_balloon_config, num_pages)), 0);
	CHECK_EQ(virtio_mmio_write(r.d.m, VIRTIO_MMIO_CONFIG + offsetof(struct virtio_balloon_config, actual),
				   &seven, 4), 0);
	CHECK_EQ(config_rd(&r, offsetof(struct virtio_balloon_config, actual)), 7);
	rig_stop(&r);
}

/* Reported pages read as zero and leave the memfd; their neighbours keep their contents. */
static void test_report_releases_pages(void)
{
	uint64_t gpas[2] = { PAT_GPA + 2 * PAGE, PAT_GPA + 6 * PAGE };
	uint32_t lens[2] = { 3 * PAGE, PAGE };
	struct rig r;
	long long before;
	off_t data;

	CHECK_EQ(rig_start(&r, F_REPORTING, 0x7), 0);
	before = blocks(&r);
	CHECK(before >= PAT_PAGES * (PAGE / 512));
	post(&r, 2, gpas, lens, 0, 2);          /* device-writable, as Linux adds them */
	CHECK_EQ(used(&r, 2), 0);
	CHECK(!needs_reset(&r));
	CHECK_EQ(before - blocks(&r), 4 * (PAGE / 512));
	data = lseek(r.memfd, (off_t)(gpas[0] - MDRV_RAM_GPA), SEEK_DATA);
	CHECK_EQ(data, (off_t)(PAT_GPA + 5 * PAGE - MDRV_RAM_GPA));   /* pages 2-4 are a hole */
	for (unsigned int i = 0; i < PAT_PAGES; i++)
		CHECK(page_is(&r, i, (i >= 2 && i <= 4) || i == 6 ? 0 : 0x40 + (int)i));
	rig_stop(&r);
}

/* A driver numbering queues by their fixed 5.5.2 position uses 4; readable buffers count too. */
static void test_fixed_queue_index_readable(void)
{
	uint64_t gpa = PAT_GPA + PAGE;
	uint32_t len = PAGE;
	struct rig r;
	long long before;

	CHECK_EQ(rig_start(&r, F_REPORTING, 0x13), 0);
	before = blocks(&r);
	post(&r, 4, &gpa, &len, 1, 1);
	CHECK_EQ(used(&r, 4), 0);
	CHECK_EQ(before - blocks(&r), PAGE / 512);
	CHECK(page_is(&r, 1, 0) && page_is(&r, 0, 0x40) && page_is(&r, 2, 0x42));
	rig_stop(&r);
}

/* Ranges in RAM that are not whole pages are skipped; the chain still comes back, no reset. */
static void test_partial_pages_ignored(void)
{
	uint64_t gpas[4] = { PAT_GPA + 8, PAT_GPA, PAT_GPA + PAGE, PAT_GPA + 2 * PAGE };
	uint32_t lens[4] = { PAGE, 100, 0, PAGE + 512 };
	struct rig r;
	long long before;

	CHECK_EQ(rig_start(&r, F_REPORTING, 0x7), 0);
	before = blocks(&r);
	post(&r, 2, gpas, lens, 0, 4);
	CHECK_EQ(used(&r, 2), 0);
	CHECK(!needs_reset(&r));
	CHECK_EQ(blocks(&r), before);
	CHECK(pattern_intact(&r));
	rig_stop(&r);
}

/* Ranges leaving guest RAM break the ring protocol (2.7): device needs reset, nothing released. */
static void test_outside_ram_rejected(void)
{
	static const struct { uint64_t gpa; uint32_t len; } bad[] = {
		{ 0x7ff00000000ull, PAGE },             /* far outside */
		{ RAM_END - PAGE, 2 * PAGE },           /* overlaps the end */
		{ MDRV_RAM_GPA - PAGE, 2 * PAGE },      /* starts before RAM */
		{ PAT_GPA, 0xfffff000u },               /* huge */
		{ 0xfffffffffffff000ull, 2 * PAGE },    /* wraps around */
	};

	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rig r;
		long long before;

		CHECK_EQ(rig_start(&r, F_REPORTING, 0x7), 0);
		before = blocks(&r);
		post(&r, 2, &bad[i].gpa, &bad[i].len, 0, 1);
		CHECK_EQ(used(&r, 2), -1);
		CHECK(needs_reset(&r));
		CHECK_EQ(blocks(&r), before);
		CHECK(pattern_intact(&r));
		rig_stop(&r);
	}
}

/* Without PAGE_REPORTING negotiated there is no reporting_vq: nothing is released. */
static void test_no_feature_no_release(void)
{
	uint64_t gpa = PAT_GPA;
	uint32_t len = PAGE;
	struct rig r;
	long long before;

	CHECK_EQ(rig_start(&r, 0, 0x7), 0);
	before = blocks(&r);
	post(&r, 2, &gpa, &len, 0, 1);
	CHECK_EQ(used(&r, 2), -1);
	CHECK_EQ(blocks(&r), before);
	CHECK(pattern_intact(&r));
	rig_stop(&r);
}

/* Inflate buffers (a PFN array) are handed back without touching the pages they name. */
static void test_inflate_returned_untouched(void)
{
	uint64_t gpa = MDRV_RAM_GPA + 0x40000;
	uint32_t len = 4;
	struct rig r;
	long long before;

	CHECK_EQ(rig_start(&r, F_REPORTING, 0x7), 0);
	*(uint32_t *)mdrv_hva(&r.d, gpa) = (uint32_t)(PAT_GPA / PAGE);
	before = blocks(&r);
	post(&r, 0, &gpa, &len, 1, 1);
	CHECK_EQ(used(&r, 0), 0);
	CHECK_EQ(blocks(&r), before);
	CHECK(pattern_intact(&r));
	rig_stop(&r);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);     /* the bad-range tests provoke guest warnings on purpose */
	RUN_TEST(test_offer_and_config);
	RUN_TEST(test_report_releases_pages);
	RUN_TEST(test_fixed_queue_index_readable);
	RUN_TEST(test_partial_pages_ignored);
	RUN_TEST(test_outside_ram_rejected);
	RUN_TEST(test_no_feature_no_release);
	RUN_TEST(test_inflate_returned_untouched);
	return HARNESS_EXIT();
}
