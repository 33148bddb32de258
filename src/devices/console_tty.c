/*
 * The host terminal is process-wide, so its saved mode and the SIGWINCH fan-out live in
 * process-wide state here (never VM state): the atexit hook and signal handler need it.
 */
#define LOG_MODULE "console"
#include "devices/console_tty.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define WINCH_MAX 8

static pthread_mutex_t tty_lock = PTHREAD_MUTEX_INITIALIZER;
static int saved_fd = -1;
static struct termios saved_mode;
static bool atexit_done;
static int winch_fds[WINCH_MAX] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static bool winch_used[WINCH_MAX];
static bool winch_installed;

static void restore_at_exit(void)
{
	int fd = __atomic_load_n(&saved_fd, __ATOMIC_SEQ_CST);

	if (fd >= 0)
		tcsetattr(fd, TCSANOW, &saved_mode);
}

bool console_tty_make_raw(int fd)
{
	struct termios raw;
	bool ok = false;

	if (fd < 0 || !isatty(fd))
		return false;
	pthread_mutex_lock(&tty_lock);
	if (saved_fd < 0 && tcgetattr(fd, &saved_mode) == 0) {
		raw = saved_mode;
		cfmakeraw(&raw);
		if (!atexit_done)
			atexit_done = atexit(restore_at_exit) == 0;
		if (tcsetattr(fd, TCSANOW, &raw) == 0) {
			__atomic_store_n(&saved_fd, fd, __ATOMIC_SEQ_CST);
			ok = true;
		}
	}
	pthread_mutex_unlock(&tty_lock);
	return ok;
}

void console_tty_restore(int fd)
{
	pthread_mutex_lock(&tty_lock);
	if (fd >= 0 && saved_fd == fd) {
		tcsetattr(fd, TCSANOW, &saved_mode);
		__atomic_store_n(&saved_fd, -1, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&tty_lock);
}

static void on_winch(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	(void)sig;
	for (int i = 0; i < WINCH_MAX; i++) {
		int fd = __atomic_load_n(&winch_fds[i], __ATOMIC_SEQ_CST);
		if (fd >= 0 && write(fd, &one, sizeof(one)) < 0) {
			/* Counter full: already readable. */
		}
	}
	errno = saved;
}

/*
 * Slots keep their eventfd open for the life of the process (a freed slot is reused), so the
 * handler can never write to a descriptor number that was closed and reused meanwhile.
 */
int console_tty_winch_get(void)
{
	int ret = -ENOSPC;
	uint64_t v;

	pthread_mutex_lock(&tty_lock);
	if (!winch_installed) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_winch;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		winch_installed = sigaction(SIGWINCH, &sa, NULL) == 0;
	}
	for (int i = 0; i < WINCH_MAX && ret == -ENOSPC; i++) {
		if (winch_used[i])
			continue;
		if (winch_fds[i] < 0) {
			int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (fd < 0) {
				ret = -errno;
				break;
			}
			__atomic_store_n(&winch_fds[i], fd, __ATOMIC_SEQ_CST);
		}
		if (read(winch_fds[i], &v, sizeof(v)) < 0) {
			/* Nothing pending: fine. */
		}
		winch_used[i] = true;
		ret = winch_fds[i];
	}
	pthread_mutex_unlock(&tty_lock);
	return ret;
}

void console_tty_winch_put(int fd)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&tty_lock);
	for (int i = 0; i < WINCH_MAX; i++)
		if (winch_fds[i] == fd)
			winch_used[i] = false;
	pthread_mutex_unlock(&tty_lock);
}

bool console_tty_size(int fd, uint16_t *cols, uint16_t *rows)
{
	struct winsize ws;

	if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return false;
	*cols = ws.ws_col;
	*rows = ws.ws_row;
	return true;
}
