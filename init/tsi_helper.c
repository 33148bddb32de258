/*
 * TSI guest side, the supervisor process: receives the program's seccomp listener, then
 * answers notifications and drives the connects waiting on the host with one poll loop.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

static struct tsi_pending pending[TSI_MAX_PENDING];
static unsigned int nr_pending;

long tsi_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

bool tsi_id_valid(int listener, uint64_t id)
{
	return ioctl(listener, TSI_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static void send_resp(int listener, struct tsi_notif_resp *r)
{
	/* ENOENT: the program was interrupted or died meanwhile; nothing is waiting any more. */
	if (ioctl(listener, TSI_IOCTL_NOTIF_SEND, r) < 0 && errno != ENOENT)
		log_debug("tsi: reply: %m");
}

void tsi_reply(int listener, uint64_t id, int error)
{
	struct tsi_notif_resp r = { .id = id, .error = error };

	send_resp(listener, &r);
}

void tsi_reply_value(int listener, uint64_t id, long val)
{
	struct tsi_notif_resp r = { .id = id, .val = val };

	send_resp(listener, &r);
}

void tsi_reply_continue(int listener, uint64_t id)
{
	struct tsi_notif_resp r = { .id = id, .flags = TSI_USER_NOTIF_FLAG_CONTINUE };

	send_resp(listener, &r);
}

struct tsi_pending *tsi_pending_alloc(void)
{
	for (unsigned int i = 0; i < TSI_MAX_PENDING; i++) {
		if (!pending[i].used) {
			memset(&pending[i], 0, sizeof(pending[i]));
			pending[i].used = true;
			pending[i].vfd = -1;
			nr_pending++;
			return &pending[i];
		}
	}
	return NULL;
}

/* The program child's listener, taken from it by number (tsi.c hand_over). */
static int take_listener(int chan)
{
	int32_t msg[2];
	long pidfd, fd = -1;

	if (read(chan, msg, sizeof(msg)) != (ssize_t)sizeof(msg))
		return -1;
	pidfd = syscall(SYS_pidfd_open, (pid_t)msg[0], 0);
	if (pidfd >= 0) {
		fd = syscall(SYS_pidfd_getfd, (int)pidfd, msg[1], 0);
		close((int)pidfd);
	}
	if (fd >= 0 && write(chan, "L", 1) != 1) {
		close((int)fd);
		fd = -1;
	}
	return (int)fd;
}

static void handle_notif(int listener, void *buf, size_t size)
{
	struct tsi_notif n;

	memset(buf, 0, size);
	if (ioctl(listener, TSI_IOCTL_NOTIF_RECV, buf) < 0)
		return;     /* ENOENT: the caller went away before we looked */
	memcpy(&n, buf, sizeof(n));
	if (n.data.nr == SYS_connect)
		tsi_connect_notif(listener, &n);
	else if (n.data.nr == SYS_sendto || n.data.nr == SYS_sendmsg)
		tsi_udp_notif(listener, &n);
	else if (n.data.nr == SYS_getpeername || n.data.nr == SYS_getsockname ||
		 n.data.nr == SYS_setsockopt)
		tsi_names_notif(listener, &n);
	else
		tsi_reply_continue(listener, n.id);
}

static size_t notif_size(void)
{
	struct tsi_notif_sizes s = { 0 };

	if (syscall(SYS_seccomp, TSI_SECCOMP_GET_NOTIF_SIZES, 0, &s) == 0 &&
	    s.seccomp_notif > sizeof(struct tsi_notif))
		return s.seccomp_notif;
	return sizeof(struct tsi_notif);
}

static int poll_timeout(void)
{
	long now = tsi_now_ms(), best = tsi_udp_timeout();

	for (unsigned int i = 0; i < TSI_MAX_PENDING; i++) {
		if (!pending[i].used)
			continue;
		long left = pending[i].deadline - now;
		if (left < 0)
			left = 0;
		if (best < 0 || left < best)
			best = left;
	}
	return (int)best;
}

static void expire(int listener)
{
	long now = tsi_now_ms();

	for (unsigned int i = 0; i < TSI_MAX_PENDING; i++)
		if (pending[i].used && pending[i].deadline <= now)
			tsi_connect_timeout(listener, &pending[i]);
}

/* Slots no longer in use after a round. */
static void count_pending(void)
{
	nr_pending = 0;
	for (unsigned int i = 0; i < TSI_MAX_PENDING; i++)
		nr_pending += pending[i].used;
}

/* One poll round; false once no program process is left under the filter. */
static bool round_trip(int listener, void *buf, size_t size)
{
	struct pollfd pfd[TSI_MAX_PENDING + 1 + TSI_MAX_UDP];
	unsigned int slot[TSI_MAX_PENDING + 1], n = 1, nu;

	pfd[0] = (struct pollfd){ .fd = nr_pending < TSI_MAX_PENDING ? listener : -1,
				  .events = POLLIN };
	for (unsigned int i = 0; i < TSI_MAX_PENDING; i++) {
		if (!pending[i].used)
			continue;
		pfd[n] = (struct pollfd){ .fd = pending[i].vfd,
					  .events = pending[i].req_off < pending[i].req_len ?
						   POLLOUT : POLLIN };
		slot[n++] = i;
	}
	nu = tsi_udp_poll_add(pfd + n);
	if (poll(pfd, n + nu, poll_timeout()) < 0)
		return errno == EINTR;
	for (unsigned int k = 1; k < n; k++)
		if (pfd[k].revents && pending[slot[k]].used)
			tsi_connect_progress(listener, &pending[slot[k]], pfd[k].revents);
	tsi_udp_poll_done(pfd + n, nu);
	expire(listener);
	if (pfd[0].revents & POLLIN)
		handle_notif(listener, buf, size);
	else if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
		return false;
	count_pending();
	return true;
}

void tsi_helper_run(int chan)
{
	sigset_t none;
	int listener;
	size_t size = notif_size();
	void *buf = malloc(size);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	listener = take_listener(chan);
	close(chan);
	tsi_udp_init();
	if (listener < 0 || !buf)
		_exit(0);   /* the program started without a filter: nothing to supervise */
	while (round_trip(listener, buf, size))
		;
	_exit(0);
}
