/* Leveled logging to stderr; one atomic level shared by every context. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int current_level = LOG_LEVEL_WARN;

void log_set_level(enum log_level level)
{
	__atomic_store_n(&current_level, (int)level, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&current_level, __ATOMIC_RELAXED);
}

static const char *level_name(enum log_level level)
{
	static const char *const names[] = { "off", "error", "warn", "info", "debug", "trace" };
	return level <= LOG_LEVEL_TRACE ? names[level] : "?";
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level == LOG_LEVEL_OFF || level > log_get_level())
		return;
	n = snprintf(line, sizeof(line), "libkrun %s [%s]: ", level_name(level), module);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so concurrent threads do not interleave mid-line. */
	fprintf(stderr, "%s\n", line);
}

int log_ratelimit_ok(uint64_t *last_ns, unsigned int *burst)
{
	const uint64_t window_ns = 1000000000ull;
	const unsigned int max_burst = 5;
	struct timespec ts;
	uint64_t now, last;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	last = __atomic_load_n(last_ns, __ATOMIC_RELAXED);
	if (now - last > window_ns) {
		__atomic_store_n(last_ns, now, __ATOMIC_RELAXED);
		__atomic_store_n(burst, 0, __ATOMIC_RELAXED);
	}
	return __atomic_add_fetch(burst, 1, __ATOMIC_RELAXED) <= max_burst;
}
