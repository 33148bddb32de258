/*
 * isolate [-t SECONDS] [-m MIB] ROOT COMMAND [ARG...]: a service that keeps an untrusted helper
 * in a microVM and talks to it over pipes. Each line on our stdin is sent to the helper's
 * stdin as one work item; the helper answers with one line on its stdout. At the end of the
 * input (or on the first failure) the helper is stopped through the VM's shutdown eventfd and
 * its exit status collected. Uses only the public libkrun API and libc.
 */
#include <libkrun.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX 4096
#define STOP_GRACE_MS 5000	/* after the shutdown eventfd, before SIGKILL */

struct options {
	unsigned int timeout_s, ram_mib;
	const char *root;
	char **command;		/* COMMAND [ARG...], NULL-terminated */
};

/* The helper as the service sees it: a process, two pipes, a stop switch. */
struct helper {
	pid_t pid;
	int to_fd;		/* the helper's stdin */
	int from_fd;		/* the helper's stdout */
	int err_fd;		/* krun_start_enter's error if it returns; EOF once the child is gone */
	int stop_fd;		/* the VM's shutdown eventfd */
	int start_err;		/* 0 if the VM started */
	char buf[REPLY_MAX];	/* reply bytes received but not consumed */
	size_t len;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: isolate [-t SECONDS] [-m MIB] ROOT COMMAND [ARG...] < WORK\n"
		"Runs COMMAND from ROOT in a microVM as a helper whose stdin and stdout are pipes.\n"
		"Each line of WORK is sent to the helper, which must answer with one line;\n"
		"\"work N: ITEM -> REPLY\" is printed. Then the helper is stopped.\n"
		"  -t SECONDS  time allowed for each reply (default 10)\n"
		"  -m MIB      guest RAM (default 128)\n"
		"Exit status: 0 if every item got a reply, 1 otherwise, 2 for a usage error.\n");
}

static int parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* 0 to run, 1 after -h, -1 on a usage error (reported). */
static int parse_options(int argc, char **argv, struct options *o)
{
	int c, bad = 0;

	*o = (struct options){ .timeout_s = 10, .ram_mib = 128 };
	/* "+": options end at ROOT, so COMMAND's own options stay COMMAND's. */
	while (!bad && (c = getopt(argc, argv, "+ht:m:")) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 't')
			bad = parse_uint(optarg, 1, 86400, &o->timeout_s);
		else if (c == 'm')
			bad = parse_uint(optarg, 32, 1 << 20, &o->ram_mib);
		else
			bad = -1;
		if (bad && c != '?')
			fprintf(stderr, "isolate: -%c: invalid value '%s'\n", c, optarg);
	}
	if (!bad && argc - optind < 2) {
		fprintf(stderr, "isolate: ROOT and COMMAND are required\n");
		bad = -1;
	}
	if (bad) {
		usage(stderr);
		return -1;
	}
	o->root = argv[optind];
	o->command = &argv[optind + 1];
	return 0;
}

static int32_t config_failed(int32_t ctx, const char *what, int32_t err)
{
	fprintf(stderr, "isolate: %s: %s\n", what, strerror(-err));
	if (ctx >= 0)
		krun_free_ctx((uint32_t)ctx);
	return -1;
}

/* A context for the helper; reports the failing call. Returns the ID or -1. */
static int32_t configure(const struct options *o)
{
	static const char *const env[] = { "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", NULL };
	int32_t ctx = krun_create_ctx(), ret;

	if (ctx < 0)
		return config_failed(-1, "krun_create_ctx", ctx);
	if ((ret = krun_set_vm_config(ctx, 1, o->ram_mib)) < 0)
		return config_failed(ctx, "krun_set_vm_config", ret);
	if ((ret = krun_set_root(ctx, o->root)) < 0)
		return config_failed(ctx, o->root, ret);
	/* The helper's whole environment: nothing of ours is handed to untrusted code. */
	ret = krun_set_exec(ctx, o->command[0], (const char *const *)&o->command[1], env);
	if (ret < 0)
		return config_failed(ctx, "krun_set_exec", ret);
	return ctx;
}

/* The child: its stdio becomes the pipes, then the VM takes the process over. */
static void __attribute__((noreturn)) child_run(uint32_t ctx, int in_r, int out_w, int err_w)
{
	int32_t ret = 0;

	if (dup2(in_r, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0)
		ret = -errno;
	if (!ret) {
		/* Only the VM's descriptors stay open in the process that runs it. */
		if (in_r > STDERR_FILENO)
			close(in_r);
		if (out_w > STDERR_FILENO)
			close(out_w);
		/* Returns only if the VM could not start; otherwise exits with the helper. */
		ret = krun_start_enter(ctx);
	}
	if (write(err_w, &ret, sizeof(ret)) != sizeof(ret)) {
		/* The parent then sees an exit without a report: status 125 says enough. */
	}
	_exit(125);
}

/*
 * Fork the helper. The eventfd is created here, before the fork, so that the parent holds it:
 * creating it starts no thread, and the context's copy in the parent is freed right after.
 */
static int helper_start(struct helper *h, uint32_t ctx)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int efd = krun_get_shutdown_eventfd(ctx), ret = 0;

	*h = (struct helper){ .to_fd = -1, .from_fd = -1, .err_fd = -1, .stop_fd = -1 };
	if (efd < 0) {
		ret = efd;
		goto out;
	}
	h->stop_fd = fcntl(efd, F_DUPFD_CLOEXEC, 3);
	if (h->stop_fd < 0 || pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0)
		goto out_errno;
	fflush(NULL);	/* the child's exit would flush our buffers a second time */
	h->pid = fork();
	if (h->pid < 0)
		goto out_errno;
	if (h->pid == 0) {
		close(in[1]);
		close(out[0]);
		close(err[0]);
		close(h->stop_fd);
		child_run(ctx, in[0], out[1], err[1]);
	}
	h->to_fd = in[1];
	h->from_fd = out[0];
	h->err_fd = err[0];
	in[1] = out[0] = err[0] = -1;
	goto out;
out_errno:
	ret = -errno;
	close_fd(&h->stop_fd);
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	krun_free_ctx(ctx);	/* the child has its own copy */
	return ret;
}

/* Sends one work item; 0, or -errno (EPIPE: the helper is gone). */
static int send_item(struct helper *h, const char *item, size_t len)
{
	while (len) {
		ssize_t n = write(h->to_fd, item, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		item += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Moves one complete line out of the reply buffer into `reply`; 0 if none yet. */
static int take_line(struct helper *h, char *reply)
{
	char *nl = memchr(h->buf, '\n', h->len);
	size_t n;

	if (!nl)
		return 0;
	n = (size_t)(nl - h->buf);
	memcpy(reply, h->buf, n);
	reply[n] = '\0';
	memmove(h->buf, nl + 1, h->len - n - 1);
	h->len -= n + 1;
	return 1;
}

/* A start error from the child means there is no helper to wait for. */
static void read_start_error(struct helper *h)
{
	int32_t err;

	if (read(h->err_fd, &err, sizeof(err)) == sizeof(err))
		h->start_err = err;
}

/* Waits for one reply line; NULL, or a message saying why there is none. */
static const char *receive_reply(struct helper *h, char *reply, unsigned int timeout_s)
{
	long long deadline = now_ms() + (long long)timeout_s * 1000;

	while (!take_line(h, reply)) {
		struct pollfd p[2] = { { .fd = h->from_fd, .events = POLLIN },
				       { .fd = h->err_fd, .events = POLLIN } };
		long long left = deadline - now_ms();
		ssize_t n;

		if (h->len == sizeof(h->buf))
			return "the reply is too long";
		if (left <= 0)
			return "no reply in time";
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			return strerror(errno);
		if (p[1].revents) {
			read_start_error(h);
			if (h->start_err)
				return "the VM did not start";
		}
		if (!p[0].revents)
			continue;
		n = read(h->from_fd, h->buf + h->len, sizeof(h->buf) - h->len);
		if (n == 0)
			return "the helper closed its output";
		if (n < 0 && errno != EINTR)
			return strerror(errno);
		h->len += n > 0 ? (size_t)n : 0;
	}
	return NULL;
}

/* Waits until the child has exited (its error pipe reaches EOF), at most until `deadline`. */
static int wait_gone(struct helper *h, long long deadline)
{
	for (;;) {
		struct pollfd p = { .fd = h->err_fd, .events = POLLIN };
		long long left = deadline - now_ms();
		int32_t err;
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(h->err_fd, &err, sizeof(err));
		if (n == sizeof(err))
			h->start_err = err;
		else if (n == 0 || errno != EINTR)
			return 1;
	}
}

/*
 * Stop the helper whatever it is doing: close its input, ask the VM to stop through the
 * eventfd (the guest gets no say), and kill the process if the VMM itself does not end.
 */
static int helper_stop(struct helper *h)
{
	const uint64_t one = 1;
	int wstatus = 0;

	close_fd(&h->to_fd);
	close_fd(&h->from_fd);
	if (write(h->stop_fd, &one, sizeof(one)) != sizeof(one))
		perror("isolate: writing the shutdown eventfd");
	if (!wait_gone(h, now_ms() + STOP_GRACE_MS)) {
		fprintf(stderr, "isolate: the helper did not stop; killing it\n");
		kill(h->pid, SIGKILL);
	}
	while (waitpid(h->pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	close_fd(&h->err_fd);
	close_fd(&h->stop_fd);
	return wstatus;
}

/* The service: one reply per work item, in order. 0, or -1 after the first failure. */
static int serve(struct helper *h, unsigned int timeout_s, unsigned long *done)
{
	char *item = NULL, reply[REPLY_MAX];
	const char *why = NULL;
	size_t cap = 0;
	ssize_t len;

	while (!why && (len = getline(&item, &cap, stdin)) > 0) {
		if (item[len - 1] == '\n')
			item[--len] = '\0';
		if (send_item(h, item, (size_t)len) < 0 || send_item(h, "\n", 1) < 0)
			why = "the helper does not read its input";
		else
			why = receive_reply(h, reply, timeout_s);
		if (!why) {
			printf("work %lu: %s -> %s\n", ++*done, item, reply);
			fflush(stdout);
		}
	}
	free(item);
	if (!why)
		return 0;
	fprintf(stderr, "isolate: work %lu: %s\n", *done + 1, why);
	return -1;
}

int main(int argc, char **argv)
{
	struct options o;
	struct helper h;
	unsigned long done = 0;
	int ret = parse_options(argc, argv, &o), wstatus, failed;
	int32_t ctx;

	if (ret)
		return ret > 0 ? 0 : 2;
	/* A helper that dies makes our writes fail with EPIPE instead of killing the service. */
	signal(SIGPIPE, SIG_IGN);
	ctx = configure(&o);
	if (ctx < 0)
		return 1;
	ret = helper_start(&h, (uint32_t)ctx);
	if (ret < 0) {
		fprintf(stderr, "isolate: cannot start the helper: %s\n", strerror(-ret));
		return 1;
	}
	failed = serve(&h, o.timeout_s, &done) < 0;
	wstatus = helper_stop(&h);
	if (h.start_err) {
		fprintf(stderr, "isolate: the helper VM could not start: %s (%d)\n",
			strerror(-h.start_err), h.start_err);
		return 1;
	}
	if (WIFEXITED(wstatus))
		printf("helper: %lu items, exit status %d\n", done, WEXITSTATUS(wstatus));
	else
		printf("helper: %lu items, killed by signal %d\n", done, WTERMSIG(wstatus));
	return failed ? 1 : 0;
}
