/*
 * tcg_vm's stdio proxy. Every guest stream is a QEMU socket chardev we serve, so QEMU never
 * touches our fds 0/1/2: the console (hvc0) carries the streams that are terminals, and each
 * non-terminal stream has its own virtio-console port (common/krun_init.h). When our stdin
 * ends we shut down the write side of the stdin port's socket: QEMU reads EOF, closes the
 * chardev, the port closes and the guest reader gets end-of-file.
 */
#include "tcg_vm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define IO_BUF 65536
#define TAIL_SIZE 4096

static struct termios saved_tty;
static bool tty_is_raw;
static char tail[TAIL_SIZE];
static size_t tail_len;

void tcg_vm_io_choose_streams(struct tcg_vm *t)
{
	for (int i = 0; i < 3; i++)
		t->tty[i] = isatty(i);
	/* The console always exists: it is /dev/console for the kernel and the init. */
	t->stream_used[TVM_CONSOLE] = true;
	t->stream_used[TVM_STDIN] = !t->tty[0];
	t->stream_used[TVM_STDOUT] = !t->tty[1];
	t->stream_used[TVM_STDERR] = !t->tty[2];
}

void tcg_vm_io_tty_raw(void)
{
	struct termios raw;

	if (!isatty(0) || tcgetattr(0, &saved_tty) < 0)
		return;
	raw = saved_tty;
	/*
	 * Like QEMU's stdio chardev with signal=off: keys (^C too) go to the guest's tty, and
	 * output passes untouched (the guest's tty already turned \n into \r\n).
	 */
	cfmakeraw(&raw);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(0, TCSANOW, &raw) == 0)
		tty_is_raw = true;
}

void tcg_vm_io_tty_restore(void)
{
	if (tty_is_raw)
		tcsetattr(0, TCSANOW, &saved_tty);
	tty_is_raw = false;
}

static void remember(const char *buf, size_t n)
{
	if (n >= TAIL_SIZE) {
		memcpy(tail, buf + n - TAIL_SIZE, TAIL_SIZE);
		tail_len = TAIL_SIZE;
		return;
	}
	if (tail_len + n > TAIL_SIZE) {
		size_t drop = tail_len + n - TAIL_SIZE;
		memmove(tail, tail + drop, tail_len - drop);
		tail_len -= drop;
	}
	memcpy(tail + tail_len, buf, n);
	tail_len += n;
}

void tcg_vm_io_print_console_tail(void)
{
	if (!tail_len)
		return;
	fprintf(stderr, "tcg_vm: last console output:\n");
	fwrite(tail, 1, tail_len, stderr);
	if (tail[tail_len - 1] != '\n')
		fputc('\n', stderr);
}

/* Blocking write of everything; a host reader that went away just loses the output. */
static void write_host(int fd, bool *broken, const char *buf, size_t len)
{
	while (len && !*broken) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0) {
			*broken = true;
			return;
		}
		buf += n;
		len -= n;
	}
}

/* Guest -> host: one socket whose bytes go to one host fd. */
struct out_pump {
	int sock;
	int host_fd;
	bool broken;
	bool is_console;
};

/* Read what is there; returns false once the socket is finished. */
static bool pump_out(struct out_pump *o)
{
	char buf[IO_BUF];

	for (;;) {
		ssize_t n = read(o->sock, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		if (o->is_console)
			remember(buf, n);
		write_host(o->host_fd, &o->broken, buf, n);
		if (o->broken && !o->is_console)
			return false;
	}
}

/* Host stdin -> guest, through a buffer so a guest that does not read never blocks us. */
struct in_pump {
	int sock;
	bool is_port;   /* the stdin port (shut down at EOF), not the console */
	bool eof;
	bool done;
	char buf[IO_BUF];
	size_t off, len;
};

static void pump_in_read(struct in_pump *in)
{
	ssize_t n = read(0, in->buf, sizeof(in->buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		in->eof = true;
		return;
	}
	in->off = 0;
	in->len = n;
}

static void pump_in_write(struct in_pump *in)
{
	ssize_t n = send(in->sock, in->buf + in->off, in->len - in->off, MSG_NOSIGNAL);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0) {
		in->done = true;    /* QEMU closed the port: nobody reads stdin any more */
		return;
	}
	in->off += n;
	if (in->off == in->len)
		in->off = in->len = 0;
}

static void pump_in_finish(struct in_pump *in)
{
	if (in->done || !in->eof || in->len)
		return;
	if (in->is_port)
		shutdown(in->sock, SHUT_WR);
	in->done = true;
}

static bool qemu_ended(struct tcg_vm *t)
{
	int status;

	if (t->qemu_status != -1)
		return true;
	if (waitpid(t->qemu, &status, WNOHANG) == t->qemu) {
		t->qemu_status = status;
		return true;
	}
	return false;
}

struct io {
	struct out_pump out[3];
	bool out_open[3];
	unsigned int nr_out;
	struct in_pump in;
	bool has_in;
};

static void io_init(struct tcg_vm *t, struct io *io)
{
	static const int src[3] = { TVM_CONSOLE, TVM_STDOUT, TVM_STDERR };

	memset(io, 0, sizeof(*io));
	for (int k = 0; k < 3; k++) {
		if (t->stream_fd[src[k]] < 0)
			continue;
		io->out[io->nr_out] = (struct out_pump){
			.sock = t->stream_fd[src[k]],
			/* Console output goes where the terminal is: stdout if it is one, else stderr. */
			.host_fd = src[k] == TVM_STDOUT ? 1 : src[k] == TVM_STDERR ? 2 : t->tty[1] ? 1 : 2,
			.is_console = src[k] == TVM_CONSOLE,
		};
		io->out_open[io->nr_out++] = true;
	}
	io->in.is_port = !t->tty[0];
	io->in.sock = t->stream_fd[io->in.is_port ? TVM_STDIN : TVM_CONSOLE];
	io->has_in = io->in.sock >= 0;
	io->in.done = !io->has_in;
}

static void drain(struct io *io)
{
	for (unsigned int k = 0; k < io->nr_out; k++)
		if (io->out_open[k])
			io->out_open[k] = pump_out(&io->out[k]);
}

int tcg_vm_io_run(struct tcg_vm *t, int sigfd)
{
	struct io io;

	io_init(t, &io);
	for (;;) {
		struct pollfd p[6];
		int idx_out[3], idx_src = -1, idx_dst = -1, n = 0;

		p[n++] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		for (unsigned int k = 0; k < io.nr_out; k++) {
			idx_out[k] = io.out_open[k] ? n : -1;
			if (io.out_open[k])
				p[n++] = (struct pollfd){ .fd = io.out[k].sock, .events = POLLIN };
		}
		if (!io.in.done && !io.in.eof && !io.in.len) {
			idx_src = n;
			p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		}
		if (!io.in.done && io.in.len) {
			idx_dst = n;
			p[n++] = (struct pollfd){ .fd = io.in.sock, .events = POLLOUT };
		}
		if (poll(p, n, -1) < 0 && errno != EINTR)
			return SIGTERM;
		if (p[0].revents) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
				return (int)si.ssi_signo;
			if (qemu_ended(t)) {
				drain(&io);
				return 0;
			}
		}
		for (unsigned int k = 0; k < io.nr_out; k++)
			if (idx_out[k] >= 0 && p[idx_out[k]].revents)
				io.out_open[k] = pump_out(&io.out[k]);
		/*
		 * The reader of the program's stdout/stderr left (`... | head -c1`). A guest port
		 * cannot fail the program's writes (Linux blocks them instead), so end the run the
		 * way the program would have ended locally: killed by SIGPIPE.
		 */
		for (unsigned int k = 0; k < io.nr_out; k++)
			if (io.out[k].broken && !io.out[k].is_console)
				return SIGPIPE;
		if (idx_src >= 0 && p[idx_src].revents)
			pump_in_read(&io.in);
		if (idx_dst >= 0 && p[idx_dst].revents)
			pump_in_write(&io.in);
		pump_in_finish(&io.in);
	}
}
