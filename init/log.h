/* Console messages of the init, prefixed "init.krun: ", written with one write() each. */
#ifndef KRUN_INIT_LOG_H
#define KRUN_INIT_LOG_H

#include <stdbool.h>

void log_set_debug(bool on);
bool log_debug_on(void);
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
