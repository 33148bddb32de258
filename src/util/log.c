/* Leveled logging to stderr; one atomic level shared by every context. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int current_level = LOG_LEVEL_WARN;
static int log_fd = -1;

void log_set_fd(int fd)
{
	__atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED);
}

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
	int n, fd;
	size_t len;

	if (level == LOG_LEVEL_OFF || level > log_get_level())
		return;
	n = snprintf(line, sizeof(line), "libkrun %s [%s]: ", level_name(level), module);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	len = strnlen(line, sizeof(line) - 2);
	line[len++] = '\n';
	/* One write per line so concurrent threads do not interleave mid-line. */
	fd = __atomic_load_n(&log_fd, __ATOMIC_RELAXED);
	if (write(fd >= 0 ? fd : STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report a failed log write. */
	}
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
