/*
 * epoll loop with deferred freeing so handlers may remove watches (their own or others').
 * add/modify/del may also be called from other threads: the list is locked, and a watch is
 * freed only by the loop thread between rounds, so a handler being dispatched stays valid.
 */
#include "util/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct watch {
	int fd;
	bool dead;
	evloop_fn fn;
	void *opaque;
	struct watch *next;
};

struct evloop {
	int epfd;
	int stopfd;
	bool stopping;
	pthread_mutex_t lock;
	struct watch *watches;
};

struct evloop *evloop_create(void)
{
	struct evloop *loop = calloc(1, sizeof(*loop));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (!loop)
		return NULL;
	pthread_mutex_init(&loop->lock, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->epfd < 0 || loop->stopfd < 0 ||
	    epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->stopfd, &ev) < 0) {
		evloop_destroy(loop);
		return NULL;
	}
	return loop;
}

static void free_watches(struct evloop *loop, bool all)
{
	struct watch **pp = &loop->watches;

	while (*pp) {
		struct watch *w = *pp;
		if (all || w->dead) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void evloop_destroy(struct evloop *loop)
{
	if (!loop)
		return;
	free_watches(loop, true);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->stopfd >= 0)
		close(loop->stopfd);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
}

static struct watch *find(struct evloop *loop, int fd)
{
	for (struct watch *w = loop->watches; w; w = w->next)
		if (w->fd == fd && !w->dead)
			return w;
	return NULL;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	struct watch *w;
	struct epoll_event ev = { .events = events };

	int err = 0;

	if (fd < 0 || !fn)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&loop->lock);
	*w = (struct watch){ .fd = fd, .fn = fn, .opaque = opaque, .next = loop->watches };
	ev.data.ptr = w;
	if (find(loop, fd))
		err = -EEXIST;
	else if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		err = -errno;
	else
		loop->watches = w;
	pthread_mutex_unlock(&loop->lock);
	if (err)
		free(w);
	return err;
}

int evloop_modify(struct evloop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct watch *w;
	int err = -ENOENT;

	pthread_mutex_lock(&loop->lock);
	w = find(loop, fd);
	if (w) {
		ev.data.ptr = w;
		err = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	pthread_mutex_unlock(&loop->lock);
	return err;
}

void evloop_del(struct evloop *loop, int fd)
{
	struct watch *w;

	pthread_mutex_lock(&loop->lock);
	w = find(loop, fd);
	if (w) {
		epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		__atomic_store_n(&w->dead, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&loop->lock);
}

int evloop_run(struct evloop *loop)
{
	struct epoll_event events[32];

	while (!__atomic_load_n(&loop->stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(loop->epfd, events, 32, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct watch *w = events[i].data.ptr;
			if (w && !__atomic_load_n(&w->dead, __ATOMIC_ACQUIRE))
				w->fn(w->opaque, events[i].events);
		}
		pthread_mutex_lock(&loop->lock);
		free_watches(loop, false);
		pthread_mutex_unlock(&loop->lock);
	}
	return 0;
}

void evloop_stop(struct evloop *loop)
{
	uint64_t one = 1;

	__atomic_store_n(&loop->stopping, true, __ATOMIC_RELEASE);
	if (write(loop->stopfd, &one, sizeof(one)) < 0) {
		/* The counter can only overflow if nobody ever reads it; the flag is set anyway. */
	}
}
