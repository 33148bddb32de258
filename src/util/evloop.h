/* An epoll event loop: one thread waits on many fds and calls each fd's handler. */
#ifndef KRUN_UTIL_EVLOOP_H
#define KRUN_UTIL_EVLOOP_H

#include <stdint.h>

struct evloop;

/* events: EPOLLIN/EPOLLOUT/... as received from epoll_wait. */
typedef void (*evloop_fn)(void *opaque, uint32_t events);

struct evloop *evloop_create(void);
void evloop_destroy(struct evloop *loop);
/* Watch fd for `events`; the handler runs on the loop thread. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque)
	__attribute__((warn_unused_result));
int evloop_modify(struct evloop *loop, int fd, uint32_t events) __attribute__((warn_unused_result));
/* Stop watching; safe from a handler (pending events for fd in this round are dropped). */
void evloop_del(struct evloop *loop, int fd);
/* Run until evloop_stop; returns 0 or -errno. */
int evloop_run(struct evloop *loop);
/* Thread-safe and async-signal-safe. */
void evloop_stop(struct evloop *loop);

#endif
