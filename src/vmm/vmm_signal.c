/*
 * Host SIGINT/SIGTERM stop every running VM. Signals are process-wide, so this is the one place
 * with process-wide state: the handler may only write an eventfd that is never drained while
 * VMs run (each VM's loop sees it readable), and previous handlers come back afterwards.
 */
#define LOG_MODULE "vmm"
#include "vmm/vmm_signal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int sig_users;
static int sig_fd = -1;
static volatile sig_atomic_t sig_last;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	sig_last = sig;
	if (write(sig_fd, &one, sizeof(one)) < 0) {
		/* Nothing safe to do in a handler. */
	}
	errno = saved;
}

static int install(void)
{
	struct sigaction sa;
	uint64_t v;

	if (sig_fd < 0)
		sig_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sig_fd < 0)
		return -errno;
	if (read(sig_fd, &v, sizeof(v)) < 0) {
		/* Already empty: the usual case. */
	}
	sig_last = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGINT, &sa, &old_int) < 0 || sigaction(SIGTERM, &sa, &old_term) < 0)
		return -errno;
	return 0;
}

int vmm_signal_register(void)
{
	int ret = 0;

	pthread_mutex_lock(&sig_lock);
	if (sig_users == 0)
		ret = install();
	if (ret == 0) {
		sig_users++;
		ret = sig_fd;
	}
	pthread_mutex_unlock(&sig_lock);
	return ret;
}

void vmm_signal_unregister(void)
{
	pthread_mutex_lock(&sig_lock);
	if (sig_users > 0 && --sig_users == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
	}
	pthread_mutex_unlock(&sig_lock);
}

int vmm_signal_last(void)
{
	return sig_last;
}
