/*
 * tcg_vm: a usable TSC for the guest. Under TCG the guest's RDTSC returns the host's TSC, but
 * the guest cannot calibrate it (no PIT/HPET/PM timer reference in microvm), marks it unstable
 * and falls back to the jiffies clocksource: no high-resolution timers, no tickless idle (a
 * 250 Hz tick costs ~5% of a host CPU per idle VM), and a guest clock that lags under load.
 * Telling the guest the host's TSC rate (tsc_early_khz=) fixes all three.
 */
#include "tcg_vm.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#define WINDOW_NS 25000000ll     /* 25 ms: with pairs read within 1 us, ~4e-5 precision */
#define PAIR_TRIES 16
#define PAIR_MAX_NS 2000ll       /* a pair taken further apart than this was preempted */

/* The rate only means something when it is constant and keeps running in idle states. */
static bool host_tsc_invariant(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	char line[4096];
	bool constant = false, nonstop = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* A TSC value and the time it was read at: the tightest of a few tries, false if none was tight. */
static bool read_pair(uint64_t *tsc, int64_t *ns)
{
	int64_t best = PAIR_MAX_NS + 1;

	for (int i = 0; i < PAIR_TRIES; i++) {
		int64_t t0 = now_ns();
		uint64_t c = __rdtsc();
		int64_t t1 = now_ns();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = c;
			*ns = t0 + (t1 - t0) / 2;
		}
	}
	return best <= PAIR_MAX_NS;
}

/*
 * The host TSC rate in kHz, or 0 when unknown. KRUN_TCG_TSC_KHZ overrides it (0: leave the
 * guest on jiffies).
 */
unsigned long tcg_vm_tsc_khz(void)
{
	const char *env = getenv("KRUN_TCG_TSC_KHZ");
	struct timespec pause = { .tv_nsec = WINDOW_NS };
	uint64_t c0 = 0, c1 = 0;
	int64_t t0 = 0, t1 = 0;

	if (env && *env)
		return strtoul(env, NULL, 10);
	if (!host_tsc_invariant() || !read_pair(&c0, &t0))
		return 0;
	nanosleep(&pause, NULL);
	if (!read_pair(&c1, &t1) || t1 <= t0 || c1 <= c0)
		return 0;
	return (unsigned long)((c1 - c0) * 1000000ull / (uint64_t)(t1 - t0));
}
