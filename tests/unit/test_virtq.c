/* Split-ring parser against a fake driver: normal chains and every hostile shape we reject. */
#include <errno.h>
#include <linux/virtio_ring.h>

#include "harness.h"
#include "util/iov.h"
#include "vring_driver.h"

static struct virtq_elem elem;

static void test_gmem_bounds(void)
{
	struct gmem mem;
	static uint8_t ram[4096];

	gmem_init(&mem);
	CHECK_EQ(gmem_add_region(&mem, 0x1000, sizeof(ram), ram, 0x1000), 0);
	CHECK(gmem_ptr(&mem, 0x1000, 4096) == ram);
	CHECK(gmem_ptr(&mem, 0x1fff, 1) == ram + 4095);
	CHECK(gmem_ptr(&mem, 0x1fff, 2) == NULL);
	CHECK(gmem_ptr(&mem, 0xfff, 1) == NULL);
	CHECK(gmem_ptr(&mem, 0x2000, 0) == NULL);
	CHECK(gmem_ptr(&mem, UINT64_MAX - 1, 4) == NULL);
	CHECK(gmem_ptr(&mem, 0x1000, UINT64_MAX) == NULL);
	CHECK_EQ(gmem_add_region(&mem, 0x1800, 16, ram, 0), -EEXIST);
	CHECK_EQ(gmem_add_region(&mem, UINT64_MAX - 8, 16, ram, 0), -EINVAL);
}

static void test_simple_chain(void)
{
	struct fake_guest g;
	uint32_t out[] = { 16, 32 }, in[] = { 64 };
	uint64_t gpas[3];
	uint16_t head;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	CHECK_EQ(virtq_pop(&g.vq, &elem), 0);
	head = fake_post(&g, out, 2, in, 1, gpas);
	memcpy(fake_hva(&g, gpas[0]), "0123456789abcdef", 16);
	CHECK(virtq_has_avail(&g.vq));
	CHECK_EQ(virtq_pop(&g.vq, &elem), 1);
	CHECK_EQ(elem.head, head);
	CHECK_EQ(elem.out_num, 2);
	CHECK_EQ(elem.in_num, 1);
	CHECK(elem.iov[0].iov_base == fake_hva(&g, gpas[0]));
	CHECK_EQ(iov_length(elem.iov, 2), 48);
	CHECK_EQ(elem.iov[2].iov_len, 64);
	CHECK_EQ(virtq_pop(&g.vq, &elem), 0);
	virtq_push(&g.vq, head, 10);
	CHECK_EQ(fake_used(&g)->idx, 1);
	CHECK_EQ(fake_used(&g)->ring[0].id, head);
	CHECK_EQ(fake_used(&g)->ring[0].len, 10);
	CHECK(virtq_should_signal(&g.vq));
	fake_avail(&g)->flags = VRING_AVAIL_F_NO_INTERRUPT;
	CHECK(!virtq_should_signal(&g.vq));
	fake_guest_free(&g);
}

static void test_ring_wraps(void)
{
	struct fake_guest g;
	uint32_t out[] = { 8 };

	CHECK_EQ(fake_guest_init(&g, 4), 0);
	for (int round = 0; round < 70000; round++) {
		uint16_t head = fake_post(&g, out, 1, NULL, 0, NULL);
		g.data_next = FAKE_RAM_GPA + 0x10000;
		CHECK_EQ(virtq_pop(&g.vq, &elem), 1);
		CHECK_EQ(elem.head, head);
		virtq_push(&g.vq, head, 0);
	}
	CHECK_EQ(fake_used(&g)->idx, (uint16_t)70000);
	fake_guest_free(&g);
}

static void expect_broken(struct fake_guest *g)
{
	CHECK_EQ(virtq_pop(&g->vq, &elem), -EIO);
	CHECK(g->vq.broken);
	/* A broken queue stays quiet: no more pops, no used-ring writes. */
	CHECK_EQ(virtq_pop(&g->vq, &elem), -EIO);
	virtq_push(&g->vq, 0, 0);
	CHECK_EQ(fake_used(g)->idx, 0);
}

static void test_loop_rejected(void)
{
	struct fake_guest g;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	fake_set_desc(&g, 0, FAKE_RAM_GPA + 0x10000, 8, VRING_DESC_F_NEXT, 1);
	fake_set_desc(&g, 1, FAKE_RAM_GPA + 0x10000, 8, VRING_DESC_F_NEXT, 0);
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);
}

static void test_out_of_range(void)
{
	struct fake_guest g;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	/* Buffer crosses the end of guest memory. */
	fake_set_desc(&g, 0, FAKE_RAM_GPA + FAKE_RAM_SIZE - 4, 8, 0, 0);
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	fake_set_desc(&g, 0, FAKE_RAM_GPA + 0x10000, 8, VRING_DESC_F_NEXT, 9); /* next >= size */
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	fake_publish(&g, 8); /* head >= size */
	expect_broken(&g);
	fake_guest_free(&g);

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	fake_avail(&g)->idx = 100; /* more entries than the queue holds */
	expect_broken(&g);
	fake_guest_free(&g);
}

static void test_wrong_direction(void)
{
	struct fake_guest g;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	fake_set_desc(&g, 0, FAKE_RAM_GPA + 0x10000, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fake_set_desc(&g, 1, FAKE_RAM_GPA + 0x10010, 8, 0, 0);
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);
}

static void test_indirect(void)
{
	struct fake_guest g;
	struct vring_desc *table;
	uint64_t table_gpa;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	table_gpa = fake_alloc(&g, 3 * sizeof(*table));
	table = fake_hva(&g, table_gpa);
	table[0] = (struct vring_desc){ FAKE_RAM_GPA + 0x20000, 4, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ FAKE_RAM_GPA + 0x20010, 4, VRING_DESC_F_NEXT, 2 };
	table[2] = (struct vring_desc){ FAKE_RAM_GPA + 0x20020, 4, VRING_DESC_F_WRITE, 0 };
	fake_set_desc(&g, 0, table_gpa, 3 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	fake_publish(&g, 0);
	/* Not negotiated: rejected. */
	expect_broken(&g);
	fake_guest_free(&g);

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	g.vq.indirect = true;
	table_gpa = fake_alloc(&g, 3 * sizeof(*table));
	table = fake_hva(&g, table_gpa);
	table[0] = (struct vring_desc){ FAKE_RAM_GPA + 0x20000, 4, VRING_DESC_F_NEXT, 1 };
	table[1] = (struct vring_desc){ FAKE_RAM_GPA + 0x20010, 4, VRING_DESC_F_NEXT, 2 };
	table[2] = (struct vring_desc){ FAKE_RAM_GPA + 0x20020, 4, VRING_DESC_F_WRITE, 0 };
	fake_set_desc(&g, 0, table_gpa, 3 * sizeof(*table), VRING_DESC_F_INDIRECT, 0);
	fake_publish(&g, 0);
	CHECK_EQ(virtq_pop(&g.vq, &elem), 1);
	CHECK_EQ(elem.out_num, 2);
	CHECK_EQ(elem.in_num, 1);
	/* A loop inside the table is caught too. */
	table[2] = (struct vring_desc){ FAKE_RAM_GPA + 0x20020, 4, VRING_DESC_F_NEXT, 0 };
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);
}

static void test_event_idx(void)
{
	struct fake_guest g;
	uint32_t out[] = { 8 };
	uint16_t *used_event;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	g.vq.event_idx = true;
	used_event = &fake_avail(&g)->ring[8];
	*used_event = 1; /* driver wants an interrupt once used idx passes 1 */
	for (int i = 0; i < 3; i++) {
		uint16_t head = fake_post(&g, out, 1, NULL, 0, NULL);
		CHECK_EQ(virtq_pop(&g.vq, &elem), 1);
		virtq_push(&g.vq, head, 0);
		bool sig = virtq_should_signal(&g.vq);
		/* first signal always (no previous), then only when crossing used_event */
		if (i == 0) CHECK(sig);
		if (i == 1) CHECK(sig);
		if (i == 2) CHECK(!sig);
	}
	/* enable_notify publishes avail_event = last_avail */
	CHECK(!virtq_enable_notify(&g.vq));
	{
		uint16_t avail_event;
		memcpy(&avail_event, &fake_used(&g)->ring[8], sizeof(avail_event));
		CHECK_EQ(avail_event, 3);
	}
	fake_guest_free(&g);
}

/* A device that only pops until empty must keep getting kicks under EVENT_IDX. */
static void test_event_idx_rearmed_on_drain(void)
{
	struct fake_guest g;
	uint32_t out[] = { 8 };
	uint16_t avail_event;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	g.vq.event_idx = true;
	for (int i = 0; i < 5; i++) {
		uint16_t head = fake_post(&g, out, 1, NULL, 0, NULL);
		CHECK_EQ(virtq_pop(&g.vq, &elem), 1);
		virtq_push(&g.vq, head, 0);
		CHECK_EQ(virtq_pop(&g.vq, &elem), 0);
		memcpy(&avail_event, &fake_used(&g)->ring[8], sizeof(avail_event));
		/* The driver's next kick (new idx = i + 2 crossing i + 1) must be requested. */
		CHECK_EQ(avail_event, i + 1);
		CHECK(vring_need_event(avail_event, (uint16_t)(i + 2), (uint16_t)(i + 1)));
	}
	fake_guest_free(&g);
}

static void test_activate_validates(void)
{
	struct fake_guest g;

	CHECK_EQ(fake_guest_init(&g, 8), 0);
	g.vq.used_gpa = FAKE_RAM_GPA + FAKE_RAM_SIZE - 8; /* ring runs past memory */
	CHECK_EQ(virtq_activate(&g.vq, &g.mem), -EFAULT);
	g.vq.used_gpa = FAKE_RAM_GPA + 0x8002; /* misaligned */
	CHECK_EQ(virtq_activate(&g.vq, &g.mem), -EFAULT);
	g.vq.used_gpa = FAKE_RAM_GPA + 0x8000;
	g.vq.size = 0;
	CHECK_EQ(virtq_activate(&g.vq, &g.mem), -EINVAL);
	fake_guest_free(&g);
}

static void test_too_many_segments(void)
{
	struct fake_guest g;

	CHECK_EQ(fake_guest_init(&g, 2048), 0);
	g.vq.desc_gpa = FAKE_RAM_GPA + 0x40000;    /* 32 KiB table */
	g.vq.avail_gpa = FAKE_RAM_GPA + 0x4000;
	g.vq.used_gpa = FAKE_RAM_GPA + 0x20000;
	CHECK_EQ(virtq_activate(&g.vq, &g.mem), 0);
	for (uint16_t i = 0; i < 2048; i++)
		fake_set_desc(&g, i, FAKE_RAM_GPA + 0x80000, 1, i + 1 < 2048 ? VRING_DESC_F_NEXT : 0, i + 1);
	fake_publish(&g, 0);
	expect_broken(&g);
	fake_guest_free(&g);
}

int main(void)
{
	RUN_TEST(test_gmem_bounds);
	RUN_TEST(test_simple_chain);
	RUN_TEST(test_ring_wraps);
	RUN_TEST(test_loop_rejected);
	RUN_TEST(test_out_of_range);
	RUN_TEST(test_wrong_direction);
	RUN_TEST(test_indirect);
	RUN_TEST(test_event_idx);
	RUN_TEST(test_event_idx_rearmed_on_drain);
	RUN_TEST(test_activate_validates);
	RUN_TEST(test_too_many_segments);
	return HARNESS_EXIT();
}
