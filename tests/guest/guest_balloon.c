/* Test guest: free page reporting to virtio-balloon (virtio 1.2 section 5.5.6.6) on a few pages. */
#include "guest.h"

#define VIRTIO_ID_BALLOON 5
#define F_PAGE_REPORTING (1u << 5)
/* inflateq 0, deflateq 1, then reporting_vq: statsq and free_page_vq do not exist (5.5.2). */
#define REPORTING_VQ 2
#define NR_VQS 3
#define PAGE 4096u
#define QWORDS (PAGE / 8)
#define PATTERN 0x62616c6c00000000ull        /* "ball" in the high half, page and index below */
#define DEFAULT_BASE 0x2000000ull            /* 32 MiB: clear of the image at 16 MiB */
#define ST_NEEDS_RESET 0x40

static struct vq bal_vqs[NR_VQS];
static unsigned int failures;

static uint64_t arg_u64(const char *cmdline, const char *key, uint64_t dflt)
{
	char buf[24];

	return cmdline_get(cmdline, key, buf, sizeof(buf)) ? parse_u64(buf, 0) : dflt;
}

static void check(bool ok, const char *what)
{
	out_str(ok ? "guest: ok " : "guest: FAIL ");
	out_str(what);
	out_str("\n");
	failures += !ok;
}

static volatile uint64_t *page_ptr(uint64_t base, unsigned int page)
{
	return (volatile uint64_t *)(uintptr_t)(base + (uint64_t)page * PAGE);
}

static void fill(uint64_t base, unsigned int page)
{
	volatile uint64_t *p = page_ptr(base, page);

	for (unsigned int i = 0; i < QWORDS; i++)
		p[i] = PATTERN | (uint64_t)page << 16 | i;
}

/* Whole page holds its pattern (or zeros when `zero`). */
static bool page_holds(uint64_t base, unsigned int page, bool zero)
{
	volatile uint64_t *p = page_ptr(base, page);

	for (unsigned int i = 0; i < QWORDS; i++)
		if (p[i] != (zero ? 0 : (PATTERN | (uint64_t)page << 16 | i)))
			return false;
	return true;
}

/*
 * A guest reuses a reported page at once (Linux hands it out again without telling the device):
 * the new data must stick, and reporting it a second time must again zero only that page.
 */
static void reuse_and_report_again(struct vdev *b, uint64_t base)
{
	const void *buf = (const void *)(uintptr_t)(base + 2 * PAGE);
	uint32_t len = PAGE;

	fill(base, 2);
	check(page_holds(base, 2, false), "a reported page reused holds its new data");
	vq_post(b, &bal_vqs[REPORTING_VQ], &buf, &len, 0, 1);
	check(vq_wait(b, &bal_vqs[REPORTING_VQ]) == 0, "balloon returned the second report");
	check(page_holds(base, 2, true), "a page reported twice reads as zero again");
	check(page_holds(base, 0, false) && page_holds(base, 3, false),
	      "neighbours of a page reported twice keep their pattern");
}

/*
 * Pages 0-3 at t.bal get a pattern; 1 and 2 are reported free together with two ranges that are
 * not whole pages (the device must skip those). Page 1 is left alone afterwards: the host checks
 * it is a hole in guest RAM's memfd. Page 2 must read as zero, pages 0 and 3 as before; then
 * page 2 is reused and reported again.
 */
int balloon_scenario(const char *cmdline)
{
	uint64_t base = arg_u64(cmdline, "t.bal", DEFAULT_BASE);
	const void *bufs[4] = {
		(const void *)(uintptr_t)(base + PAGE), (const void *)(uintptr_t)(base + 2 * PAGE),
		(const void *)(uintptr_t)(base + 3 * PAGE + 8), (const void *)(uintptr_t)base,
	};
	uint32_t lens[4] = { PAGE, PAGE, PAGE, 100 };
	struct vdev b;
	int ret;

	if (vdev_find(cmdline, VIRTIO_ID_BALLOON, &b)) {
		check(false, "virtio-balloon on the command line");
		return 6;
	}
	ret = vdev_init_features(&b, bal_vqs, NR_VQS, F_PAGE_REPORTING);
	if (ret) {
		out_str("guest: balloon handshake failed at step ");
		out_u64((uint64_t)ret);
		out_str("\n");
		return 6;
	}
	for (unsigned int i = 0; i < 4; i++)
		fill(base, i);
	/* Device-writable buffers, as Linux's virtballoon_free_page_report adds them. */
	vq_post(&b, &bal_vqs[REPORTING_VQ], bufs, lens, 0, 4);
	check(vq_wait(&b, &bal_vqs[REPORTING_VQ]) == 0, "balloon returned the report (used length 0)");
	check(!(vdev_status(&b) & ST_NEEDS_RESET), "partial-page ranges skipped without a reset");
	check(page_holds(base, 0, false) && page_holds(base, 3, false), "unreported pages keep their pattern");
	check(page_holds(base, 2, true), "a reported page reads as zero afterwards");
	reuse_and_report_again(&b, base);
	return failures ? 4 : 0;
}

/* One range of whole pages on the reporting queue; true once the device has returned it. */
static bool report_range(const char *cmdline, uint64_t gpa, uint32_t len)
{
	const void *buf = (const void *)(uintptr_t)gpa;
	struct vdev b;

	if (vdev_find(cmdline, VIRTIO_ID_BALLOON, &b) || vdev_init_features(&b, bal_vqs, NR_VQS, F_PAGE_REPORTING))
		return false;
	vq_post(&b, &bal_vqs[REPORTING_VQ], &buf, &len, 0, 1);
	return vq_wait(&b, &bal_vqs[REPORTING_VQ]) == 0;
}

/*
 * Footprint bench: touch t.touch MiB at t.bal (one write per page), report them free when
 * t.report=1, then halt with interrupts off (no guest work, no exits) until the host stops us.
 */
void idle_scenario(const char *cmdline)
{
	uint64_t base = arg_u64(cmdline, "t.bal", DEFAULT_BASE), bytes = arg_u64(cmdline, "t.touch", 0) << 20;

	if (bytes >= 0xffffffffull)
		bytes = 0;
	for (uint64_t off = 0; off < bytes; off += PAGE)
		*(volatile uint64_t *)(uintptr_t)(base + off) = off | 1;
	if (bytes && arg_u64(cmdline, "t.report", 0))
		check(report_range(cmdline, base, (uint32_t)bytes), "touched memory reported free");
	out_str("guest: idle\n");
	out_flush();
	for (;;)
		__asm__ volatile("cli; hlt");
}
