/* PID 1 supervisor: forwards signals to the program, reaps orphans, ends the stragglers. */
#include "supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"
#include "log.h"
#include "tsi.h"

/* Grace period between SIGTERM and SIGKILL for processes left behind by the program. */
#define STOP_GRACE_MS 1000

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void on_signal(int sig)
{
	(void)sig;
}

/*
 * The kernel drops default-action signals sent to PID 1, so each gets a (never run) handler;
 * all stay blocked and are taken synchronously with sigwaitinfo.
 */
static void block_signals(sigset_t *set)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
		sigaddset(set, forwarded[i]);
		sigaction(forwarded[i], &sa, NULL);
	}
	sigaction(SIGCHLD, &sa, NULL);
	sigprocmask(SIG_BLOCK, set, NULL);
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/* Reaps every finished child; returns true once pid has ended, its status in *status. */
static bool reap(pid_t pid, int *status)
{
	bool done = false;
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == pid) {
			*status = decode_status(st);
			done = true;
		} else {
			log_debug("reaped %d (status %d)", (int)p, decode_status(st));
		}
	}
	return done;
}

static void close_ports(const int fds[3])
{
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int supervise_run(const struct config *c, char *const envp[], const int fds[3])
{
	sigset_t set;
	int status = 1;

	block_signals(&set);
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %m");
		return 1;
	}
	if (pid == 0)
		exec_child(c, envp, fds);
	tsi_parent_forked();
	/* Only the program holds the ports now: its last close is EOF for the host. */
	close_ports(fds);
	log_debug("started %s as pid %d", c->exec, (int)pid);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig == SIGCHLD) {
			if (reap(pid, &status))
				break;
		} else if (sig > 0) {
			log_debug("forwarding signal %d", sig);
			kill(pid, sig);
		}
	}
	log_debug("program exited with status %d", status);
	return status;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* Reaps until no child is left or the deadline passes; true when none is left. */
static bool reap_all_until(long deadline)
{
	sigset_t chld;
	struct timespec tick = { 0, 50 * 1000000L };

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t p;
		while ((p = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (p < 0 && errno == ECHILD)
			return true;
		if (now_ms() >= deadline)
			return false;
		sigtimedwait(&chld, NULL, &tick);
	}
}

void supervise_stop_all(void)
{
	/* kill(-1) from anything but the VM's PID 1 would hit the host's processes. */
	if (getpid() != 1)
		return;
	if (kill(-1, SIGTERM) < 0 && errno == ESRCH && reap_all_until(0))
		return;
	log_debug("sent SIGTERM to the remaining processes");
	if (reap_all_until(now_ms() + STOP_GRACE_MS))
		return;
	log_debug("processes left after SIGTERM, sending SIGKILL");
	kill(-1, SIGKILL);
	reap_all_until(now_ms() + STOP_GRACE_MS);
}
