/* Helpers shared by the fuzz targets: descriptor leak check. */
#ifndef KRUN_TESTS_FUZZ_UTIL_H
#define KRUN_TESTS_FUZZ_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* Open descriptors of this process (the directory's own one not counted). */
static inline int fuzz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3;   /* ".", ".." and the directory itself */
}

/* Abort when a run left descriptors behind: a guest could repeat it until EMFILE. */
static inline void fuzz_check_fds(const char *target, int baseline)
{
	int now = fuzz_count_fds();

	if (baseline >= 0 && now != baseline) {
		fprintf(stderr, "%s: descriptor leak: %d open after the run, %d before\n", target,
			now, baseline);
		abort();
	}
}

#endif
