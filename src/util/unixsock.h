/* UNIX socket paths: telling a stale socket file (its listener gone) from a live one. */
#ifndef KRUN_UTIL_UNIXSOCK_H
#define KRUN_UTIL_UNIXSOCK_H

#include <stdbool.h>

/* True if path is a socket file nobody listens on (left behind by a process that exited). */
bool unixsock_is_stale(const char *path);

#endif
