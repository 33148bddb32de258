/* The library's one logger: leveled messages to stderr, honouring krun_set_log_level. */
#ifndef KRUN_UTIL_LOG_H
#define KRUN_UTIL_LOG_H

#include <stdint.h>

enum log_level {
	LOG_LEVEL_OFF = 0,
	LOG_LEVEL_ERROR = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_INFO = 3,
	LOG_LEVEL_DEBUG = 4,
	LOG_LEVEL_TRACE = 5,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Where messages go: an open fd, or -1 for stderr. The fd stays the caller's. */
void log_set_fd(int fd);
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* For guest-triggerable messages: at most a few per second per call site. */
int log_ratelimit_ok(uint64_t *last_ns, unsigned int *burst);

#ifndef LOG_MODULE
#define LOG_MODULE "krun"
#endif

#define log_error(...) log_msg(LOG_LEVEL_ERROR, LOG_MODULE, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, LOG_MODULE, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, LOG_MODULE, __VA_ARGS__)
#define log_debug(...) do { if (log_get_level() >= LOG_LEVEL_DEBUG) \
	log_msg(LOG_LEVEL_DEBUG, LOG_MODULE, __VA_ARGS__); } while (0)
#define log_trace(...) do { if (log_get_level() >= LOG_LEVEL_TRACE) \
	log_msg(LOG_LEVEL_TRACE, LOG_MODULE, __VA_ARGS__); } while (0)

/* Rate-limited warning for messages a guest can provoke at will. */
#define log_warn_guest(...) do { \
	static uint64_t log_rl_last_; static unsigned int log_rl_burst_; \
	if (log_ratelimit_ok(&log_rl_last_, &log_rl_burst_)) log_warn(__VA_ARGS__); \
} while (0)

#endif
