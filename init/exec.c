/* The program's side of the fork: session and terminal, stdio, rlimits, credentials, exec. */
#include "exec.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/krun_init.h"
#include "log.h"
#include "tsi.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void __attribute__((noreturn)) setup_failed(void)
{
	_exit(1);
}

/* Undoes the init's signal setup so the program starts with defaults, as after boot. */
static void reset_signals(void)
{
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Own session; a tty on fd 0 becomes the controlling terminal so ^C reaches the program. */
static void setup_stdio(const int fds[3])
{
	if (setsid() < 0)
		log_debug("setsid: %m");
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && dup2(fds[i], i) < 0) {
			log_error("dup2 stream %d: %m", i);
			setup_failed();
		}
	if (isatty(STDIN_FILENO) && ioctl(STDIN_FILENO, TIOCSCTTY, 1) < 0)
		log_debug("TIOCSCTTY: %m");
}

static void setup_limits(const struct config *c)
{
	for (size_t i = 0; i < c->nrlimits; i++) {
		const struct config_rlimit *l = &c->rlimits[i];
		struct rlimit rl = { .rlim_cur = l->cur, .rlim_max = l->max };
		if (setrlimit(l->resource, &rl)) {
			log_error("setrlimit %d to %llu:%llu: %m", l->resource,
				  (unsigned long long)l->cur, (unsigned long long)l->max);
			setup_failed();
		}
	}
}

/* Groups, then gid, then uid: each later step drops the right to do the earlier ones. */
static void setup_creds(const struct config *c)
{
	if ((c->has_groups || c->has_uid) &&
	    setgroups(c->has_groups ? c->ngroups : 0, c->groups) < 0) {
		log_error("setgroups: %m");
		setup_failed();
	}
	if (c->has_gid && setgid(c->gid) < 0) {
		log_error("setgid %u: %m", (unsigned)c->gid);
		setup_failed();
	}
	if (c->has_uid && setuid(c->uid) < 0) {
		log_error("setuid %u: %m", (unsigned)c->uid);
		setup_failed();
	}
}

static const char *env_path(char *const envp[])
{
	for (; *envp; envp++)
		if (!strncmp(*envp, "PATH=", 5))
			return *envp + 5;
	return DEFAULT_PATH;
}

/* execvpe with the program's PATH (not the init's); returns the errno worth reporting. */
static int exec_search(const char *file, char *const argv[], char *const envp[])
{
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return errno;
	}
	int err = ENOENT;
	for (const char *p = env_path(envp); ; ) {
		const char *colon = strchrnul(p, ':');
		size_t dlen = (size_t)(colon - p);
		char buf[PATH_MAX];
		if (snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", file) <
		    (int)sizeof(buf)) {
			execve(buf, argv, envp);
			if (errno == EACCES)
				err = EACCES;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
				 errno != ENAMETOOLONG)
				return errno;
		}
		if (!*colon)
			return err;
		p = colon + 1;
	}
}

void exec_child(const struct config *c, char *const envp[], const int fds[3])
{
	reset_signals();
	setup_stdio(fds);
	setup_limits(c);
	/* TSI: the seccomp filter goes on while we are still root (see tsi.h). */
	tsi_child_install(envp);
	setup_creds(c);
	if (c->workdir && chdir(c->workdir) < 0) {
		log_error("cannot enter working directory %s: %m", c->workdir);
		setup_failed();
	}
	int err = exec_search(c->exec, c->argv, envp);
	char msg[PATH_MAX + 128];
	int n = snprintf(msg, sizeof(msg), "%s: %s\n", c->exec, strerror(err));
	if (n > (int)sizeof(msg) - 1)
		n = (int)sizeof(msg) - 1;
	if (write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* The program's stderr is gone; the status still says what happened. */
	}
	_exit(err == ENOENT || err == ENOTDIR ? KRUN_STATUS_NOT_FOUND : KRUN_STATUS_NOT_EXEC);
}
