/* Shared by the unit tests and the fuzz targets: how many descriptors this process holds. */
#ifndef KRUN_TESTS_OPEN_FDS_H
#define KRUN_TESTS_OPEN_FDS_H

#include <dirent.h>

/* Entries of /proc/self/fd (., .. and the listing's own fd included): compare two counts. */
static inline int t_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#endif
