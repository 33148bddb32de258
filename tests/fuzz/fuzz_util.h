/* Helpers shared by the fuzz targets: descriptor leak check. */
#ifndef KRUN_TESTS_FUZZ_UTIL_H
#define KRUN_TESTS_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "../open_fds.h"

/* Abort when a run left descriptors behind: a guest could repeat it until EMFILE. */
static inline void fuzz_check_fds(const char *target, int baseline)
{
	int now = t_open_fds();

	if (baseline >= 0 && now != baseline) {
		fprintf(stderr, "%s: descriptor leak: %d open after the run, %d before\n", target,
			now, baseline);
		abort();
	}
}

#endif
