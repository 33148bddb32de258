/* UNIX socket paths: filling an address; telling a stale socket file from a live one. */
#ifndef KRUN_UTIL_UNIXSOCK_H
#define KRUN_UTIL_UNIXSOCK_H

#include <stdbool.h>
#include <sys/un.h>

/* Fill *sa with AF_UNIX and path: 0, -EINVAL for an empty path, -ENAMETOOLONG past sun_path. */
int unixsock_addr(const char *path, struct sockaddr_un *sa);

/* True if path is a socket file nobody listens on (left behind by a process that exited). */
bool unixsock_is_stale(const char *path);

#endif
