/*
 * For fuzz targets that drive a device's host side: the event loop compiled in (its internals
 * visible), and one round of it without waiting, so that a target can interleave host events
 * with guest actions deterministically.
 */
#ifndef KRUN_TESTS_FUZZ_EVLOOP_H
#define KRUN_TESTS_FUZZ_EVLOOP_H

#include "util/evloop.c"

/* What evloop_run does in one round, without waiting. */
static void pump(struct evloop *loop)
{
	struct epoll_event events[32];
	int n = epoll_wait(loop->epfd, events, 32, 0);

	for (int i = 0; i < n; i++) {
		struct watch *w = events[i].data.ptr;

		if (w && !w->dead)
			w->fn(w->opaque, events[i].events);
	}
	free_watches(loop, false);
}

#endif
