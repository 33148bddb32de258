/* Helpers shared by the fuzz targets: descriptor leak check, raw guest RAM writes. */
#ifndef KRUN_TESTS_FUZZ_UTIL_H
#define KRUN_TESTS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * An input's raw write into guest RAM (how it reaches broken rings): a u16 offset, a length
 * byte, then that many bytes, the write cut at the end of RAM. Returns the input it took,
 * 0 when fewer than 3 bytes are left (nothing written).
 */
static inline size_t fuzz_poke_ram(uint8_t *ram, size_t ram_size, const uint8_t *p, size_t n)
{
	size_t off, len;

	if (n < 3)
		return 0;
	off = (size_t)(p[0] | p[1] << 8);
	len = p[2] < n - 3 ? p[2] : n - 3;
	if (off < ram_size)
		memcpy(ram + off, p + 3, off + len > ram_size ? ram_size - off : len);
	return 3 + len;
}

#endif
