/*
 * jailer [-j JOBS] [-t SECONDS] [-m MIB]: a serverless jailer. Each line on stdin is a request
 * "FUNCTION_DIR PROGRAM [ARG...]"; each runs PROGRAM with FUNCTION_DIR as its root in a fresh
 * microVM of its own, at most JOBS at a time, and ends in one report line on stdout.
 * Uses only the public libkrun API and libc.
 */
#include <libkrun.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 16
#define MAX_ARGS 64
#define LINE_LEN 4096
#define OUTPUT_KEEP 1024	/* bytes of a function's stdout quoted in its report */
#define STOP_GRACE_MS 5000	/* after the shutdown eventfd, before SIGKILL */
#define NO_DEADLINE LLONG_MAX

struct options {
	unsigned int jobs, timeout_s, ram_mib;
};

/* One invocation in flight. Descriptors are the parent's ends, -1 once closed. */
struct job {
	pid_t pid;		/* 0: a free slot */
	unsigned long req;
	int out_fd;		/* the function's stdout */
	int err_fd;		/* krun_start_enter's error if it returns; EOF once the child is gone */
	int stop_fd;		/* the VM's shutdown eventfd */
	long long deadline;	/* CLOCK_MONOTONIC ms: first stop the VM, later kill the child */
	int start_err;		/* 0 if the VM started */
	int timed_out, killed;
	char out[OUTPUT_KEEP];
	size_t out_len, out_dropped;
};

struct input {
	char buf[LINE_LEN];
	size_t len;
	int eof;
};

struct jailer {
	struct options opt;
	struct job jobs[MAX_JOBS];
	unsigned int running;
	unsigned long requests, failures;
	struct input in;
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
		"Usage: jailer [-j JOBS] [-t SECONDS] [-m MIB] < REQUESTS\n"
		"Each request line is \"FUNCTION_DIR PROGRAM [ARG...]\" (split at blanks, no quoting;\n"
		"empty lines and lines starting with # are skipped). Each runs in its own microVM\n"
		"with FUNCTION_DIR as the root; one line per request is reported on stdout.\n"
		"  -j JOBS     VMs at a time, 1-%d (default 2)\n"
		"  -t SECONDS  time limit per request (default 10)\n"
		"  -m MIB      guest RAM per VM (default 128)\n"
		"Exit status: 0 if every request exited 0, 1 if any did not, 2 for a usage error.\n",
		MAX_JOBS);
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

	*o = (struct options){ .jobs = 2, .timeout_s = 10, .ram_mib = 128 };
	while (!bad && (c = getopt(argc, argv, "hj:t:m:")) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c == 'j')
			bad = parse_uint(optarg, 1, MAX_JOBS, &o->jobs);
		else if (c == 't')
			bad = parse_uint(optarg, 1, 86400, &o->timeout_s);
		else if (c == 'm')
			bad = parse_uint(optarg, 32, 1 << 20, &o->ram_mib);
		else
			bad = -1;
		if (bad && c != '?')
			fprintf(stderr, "jailer: -%c: invalid value '%s'\n", c, optarg);
	}
	if (!bad && optind < argc) {
		fprintf(stderr, "jailer: unexpected argument '%s' (requests come on stdin)\n",
			argv[optind]);
		bad = -1;
	}
	if (bad)
		usage(stderr);
	return bad;
}

/* ---- requests -------------------------------------------------------------------------- */

/* Reads what stdin has; a line that cannot fit ends the input (we cannot tell where it ends). */
static void input_fill(struct input *in)
{
	ssize_t n = read(STDIN_FILENO, in->buf + in->len, sizeof(in->buf) - in->len);

	if (n > 0) {
		in->len += (size_t)n;
	} else if (n == 0 || errno != EINTR) {
		if (n < 0)
			perror("jailer: reading requests");
		in->eof = 1;
	}
	if (in->len == sizeof(in->buf) && !memchr(in->buf, '\n', in->len)) {
		fprintf(stderr, "jailer: a request line is longer than %d bytes; stopping\n",
			LINE_LEN - 1);
		in->len = 0;
		in->eof = 1;
	}
}

/* Moves the next complete line (or the unterminated last one) into `line`; 0 if none yet. */
static int input_take(struct input *in, char *line)
{
	char *nl = memchr(in->buf, '\n', in->len);
	size_t n = nl ? (size_t)(nl - in->buf) : in->len;

	if (!nl && !(in->eof && in->len))
		return 0;
	memcpy(line, in->buf, n);
	line[n] = '\0';
	n += nl ? 1 : 0;
	memmove(in->buf, in->buf + n, in->len - n);
	in->len -= n;
	return 1;
}

/* Splits a request line in place; returns the number of words (0: skip the line), -1 if too many. */
static int split_words(char *line, char **words)
{
	char *save, *w;
	int n = 0;

	if (line[strspn(line, " \t\r")] == '#')
		return 0;
	for (w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
		if (n == MAX_ARGS)
			return -1;
		words[n++] = w;
	}
	words[n] = NULL;
	return n;
}

/*
 * Everything about the VM is decided here, in the parent: configuration calls are pure data
 * (no descriptors, no threads), so a bad request is refused without forking anything.
 */
static int configure(uint32_t ctx, const struct options *o, char **words, unsigned long req,
		     const char **what)
{
	/* Small, explicit limits: a function gets no more than it needs. */
	static const char *const rlimits[] = { "NPROC=64:64", "NOFILE=256:256", NULL };
	char id[40];
	const char *const env[] = { "PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", id, NULL };
	int ret;

	snprintf(id, sizeof(id), "REQUEST_ID=%lu", req);
	if ((ret = krun_set_vm_config(ctx, 1, o->ram_mib)) < 0)
		return *what = "krun_set_vm_config", ret;
	if ((ret = krun_set_root(ctx, words[0])) < 0)
		return *what = "krun_set_root", ret;
	if ((ret = krun_set_rlimits(ctx, rlimits)) < 0)
		return *what = "krun_set_rlimits", ret;
	if ((ret = krun_set_workdir(ctx, "/")) < 0)
		return *what = "krun_set_workdir", ret;
	/* The complete environment the function sees: nothing leaks in from ours. */
	if ((ret = krun_set_env(ctx, env)) < 0)
		return *what = "krun_set_env", ret;
	if ((ret = krun_set_exec(ctx, words[1], (const char *const *)&words[2], env)) < 0)
		return *what = "krun_set_exec", ret;
	return 0;
}

/* ---- one invocation -------------------------------------------------------------------- */

/*
 * The child: drop what it inherited from the jailer (the other jobs' pipes and eventfds, the
 * request stream on stdin) so the VM holds only its own, then the VM takes the process over.
 */
static void __attribute__((noreturn)) child_run(const struct jailer *jl, uint32_t ctx,
						int out_w, int err_w)
{
	int32_t ret = 0;
	int null_fd = open("/dev/null", O_RDONLY);

	for (unsigned int i = 0; i < MAX_JOBS; i++) {
		const struct job *o = &jl->jobs[i];

		if (o->out_fd >= 0)
			close(o->out_fd);
		if (o->err_fd >= 0)
			close(o->err_fd);
		if (o->stop_fd >= 0)
			close(o->stop_fd);
	}
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0)
		ret = -errno;
	if (!ret) {
		if (null_fd > STDERR_FILENO)
			close(null_fd);
		if (out_w > STDERR_FILENO)
			close(out_w);
		/* Returns only if the VM could not start; otherwise exits with the function. */
		ret = krun_start_enter(ctx);
	}
	if (write(err_w, &ret, sizeof(ret)) != sizeof(ret)) {
		/* The parent then sees an exit without a report: status 125 below says enough. */
	}
	_exit(125);
}

static void job_reset(struct job *jb)
{
	*jb = (struct job){ .out_fd = -1, .err_fd = -1, .stop_fd = -1 };
}

/* Fork the child that enters the VM `ctx`; the parent keeps pipe ends and the eventfd. */
static int job_spawn(struct jailer *jl, struct job *jb, uint32_t ctx)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int efd = krun_get_shutdown_eventfd(ctx);

	if (efd < 0)
		return efd;
	/* Our own copy: krun_free_ctx below closes the context's descriptor in the parent. */
	jb->stop_fd = fcntl(efd, F_DUPFD_CLOEXEC, 3);
	if (jb->stop_fd < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		goto err_fds;
	jb->out_fd = out[0];
	jb->err_fd = err[0];
	/* Our ends never block: one slow function must not stall collecting the others. */
	if (fcntl(out[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(err[0], F_SETFL, O_NONBLOCK) < 0)
		goto err_fds;
	/* Whatever our stdio buffers hold would otherwise be flushed again by the child's exit. */
	fflush(NULL);
	jb->pid = fork();
	if (jb->pid == 0)
		child_run(jl, ctx, out[1], err[1]);
	if (jb->pid < 0)
		goto err_fds;
	close(out[1]);
	close(err[1]);
	jb->deadline = now_ms() + (long long)jl->opt.timeout_s * 1000;
	return 0;
err_fds:
	efd = -errno;
	close_fd(&jb->stop_fd);
	for (int i = 0; i < 2; i++) {
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	job_reset(jb);
	return efd;
}

static struct job *free_slot(struct jailer *jl)
{
	for (unsigned int i = 0; i < jl->opt.jobs; i++)
		if (!jl->jobs[i].pid)
			return &jl->jobs[i];
	return NULL;
}

/* Turns one request line into a running VM, or reports why not. */
static void start_request(struct jailer *jl, char *line)
{
	char *words[MAX_ARGS + 1];
	int n = split_words(line, words), ret;
	const char *what;
	struct job *jb;
	int32_t ctx;

	if (n == 0)
		return;
	jl->requests++;
	if (n < 0) {
		printf("request %lu: bad request: more than %d words\n", jl->requests, MAX_ARGS);
		goto failed;
	}
	if (n < 2) {
		printf("request %lu: bad request: expected FUNCTION_DIR PROGRAM [ARG...]\n",
		       jl->requests);
		goto failed;
	}
	ctx = krun_create_ctx();
	if (ctx < 0) {
		printf("request %lu: krun_create_ctx: %s\n", jl->requests, strerror(-ctx));
		goto failed;
	}
	jb = free_slot(jl);	/* there is one: we only get here with a slot free */
	ret = configure((uint32_t)ctx, &jl->opt, words, jl->requests, &what);
	if (ret)
		printf("request %lu: bad request: %s: %s\n", jl->requests, what, strerror(-ret));
	else if ((ret = job_spawn(jl, jb, (uint32_t)ctx)) < 0)
		printf("request %lu: cannot start the child: %s\n", jl->requests, strerror(-ret));
	/* The child has its own copy of the context; ours is no longer needed either way. */
	krun_free_ctx((uint32_t)ctx);
	if (ret)
		goto failed;
	jb->req = jl->requests;
	jl->running++;
	return;
failed:
	jl->failures++;
	fflush(stdout);
}

/* ---- collecting results ---------------------------------------------------------------- */

static void print_quoted(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void report(struct jailer *jl, struct job *jb, int wstatus)
{
	int ok = !jb->start_err && !jb->timed_out && WIFEXITED(wstatus) && !WEXITSTATUS(wstatus);

	printf("request %lu: ", jb->req);
	if (jb->start_err) {
		printf("cannot start the VM: %s (%d)\n", strerror(-jb->start_err), jb->start_err);
	} else {
		if (WIFEXITED(wstatus))
			printf("status %d, ", WEXITSTATUS(wstatus));
		else
			printf("killed by signal %d, ", WTERMSIG(wstatus));
		if (jb->timed_out)
			printf("timed out after %u s, ", jl->opt.timeout_s);
		printf("output ");
		print_quoted(jb->out, jb->out_len);
		if (jb->out_dropped)
			printf(" (+%zu bytes)", jb->out_dropped);
		putchar('\n');
	}
	fflush(stdout);
	jl->failures += !ok;
}

/* Once the child's descriptors are all at EOF it has exited: reap it and report. */
static void job_maybe_finish(struct jailer *jl, struct job *jb)
{
	int wstatus = 0;

	if (jb->out_fd >= 0 || jb->err_fd >= 0)
		return;
	while (waitpid(jb->pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	report(jl, jb, wstatus);
	close_fd(&jb->stop_fd);
	job_reset(jb);
	jl->running--;
}

static void job_read_output(struct job *jb)
{
	char tmp[4096];
	ssize_t n = read(jb->out_fd, tmp, sizeof(tmp));
	size_t keep;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		close_fd(&jb->out_fd);
		return;
	}
	/* Keep reading past the quota so the function never blocks on a full pipe. */
	keep = sizeof(jb->out) - jb->out_len;
	keep = (size_t)n < keep ? (size_t)n : keep;
	memcpy(jb->out + jb->out_len, tmp, keep);
	jb->out_len += keep;
	jb->out_dropped += (size_t)n - keep;
}

static void job_read_error(struct job *jb)
{
	int32_t err;
	ssize_t n = read(jb->err_fd, &err, sizeof(err));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == sizeof(err))
		jb->start_err = err;
	else
		close_fd(&jb->err_fd);
}

/* Past the deadline: ask the VM to stop; if it still runs after a grace period, kill it. */
static void job_check_deadline(struct job *jb, long long now)
{
	const uint64_t one = 1;

	if (now < jb->deadline)
		return;
	if (!jb->timed_out) {
		jb->timed_out = 1;
		if (write(jb->stop_fd, &one, sizeof(one)) != sizeof(one))
			kill(jb->pid, SIGKILL);
		jb->deadline = now + STOP_GRACE_MS;
	} else if (!jb->killed) {
		jb->killed = 1;
		kill(jb->pid, SIGKILL);
		jb->deadline = NO_DEADLINE;
	}
}

/* ---- the loop -------------------------------------------------------------------------- */

/* Descriptors to wait on: stdin while a slot is free, each job's two pipes. */
static nfds_t build_pollset(const struct jailer *jl, struct pollfd *p, long long *deadline)
{
	nfds_t n = 0;

	*deadline = NO_DEADLINE;
	if (!jl->in.eof && jl->running < jl->opt.jobs)
		p[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	for (unsigned int i = 0; i < jl->opt.jobs; i++) {
		const struct job *jb = &jl->jobs[i];

		if (!jb->pid)
			continue;
		p[n++] = (struct pollfd){ .fd = jb->out_fd, .events = POLLIN };
		p[n++] = (struct pollfd){ .fd = jb->err_fd, .events = POLLIN };
		if (jb->deadline < *deadline)
			*deadline = jb->deadline;
	}
	return n;
}

static void wait_and_collect(struct jailer *jl)
{
	struct pollfd p[1 + 2 * MAX_JOBS];
	long long deadline, now;
	nfds_t n = build_pollset(jl, p, &deadline);
	int timeout = -1;

	now = now_ms();
	if (deadline != NO_DEADLINE)
		timeout = deadline <= now ? 0 : (int)(deadline - now);
	/* A negative fd (a pipe already at EOF) is ignored by poll. */
	if (poll(p, n, timeout) < 0 && errno != EINTR) {
		perror("jailer: poll");
		exit(1);
	}
	if (n && p[0].fd == STDIN_FILENO && p[0].revents)
		input_fill(&jl->in);
	now = now_ms();
	for (unsigned int i = 0; i < jl->opt.jobs; i++) {
		struct job *jb = &jl->jobs[i];

		if (!jb->pid)
			continue;
		if (jb->out_fd >= 0)
			job_read_output(jb);
		if (jb->err_fd >= 0)
			job_read_error(jb);
		job_check_deadline(jb, now);
		job_maybe_finish(jl, jb);
	}
}

int main(int argc, char **argv)
{
	static struct jailer jl;
	char line[LINE_LEN];
	int ret = parse_options(argc, argv, &jl.opt);

	if (ret)
		return ret > 0 ? 0 : 2;
	for (unsigned int i = 0; i < MAX_JOBS; i++)
		job_reset(&jl.jobs[i]);
	/* Buffered lines may remain after the end of input: run them before leaving. */
	while (!jl.in.eof || jl.running || jl.in.len) {
		while (jl.running < jl.opt.jobs && input_take(&jl.in, line))
			start_request(&jl, line);
		if (!jl.in.eof || jl.running)
			wait_and_collect(&jl);
	}
	printf("jailer: %lu requests, %lu failed\n", jl.requests, jl.failures);
	return jl.failures ? 1 : 0;
}
