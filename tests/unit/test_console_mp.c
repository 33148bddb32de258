/* virtio-console multiport (virtio 1.2 5.3.6): control handshake, named ports, EOF, back-pressure. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/resource.h>

#include "harness.h"
#include "test_console_rig.h"
#include "util/log.h"

#define STDIN_RXQ 4
#define STDOUT_TXQ 7

static bool expect(struct rig *r, uint32_t id, uint16_t event, uint16_t value)
{
	struct ctl m;

	return rig_recv(r, &m, true) && m.id == id && m.event == event && m.value == value;
}

static bool expect_name(struct rig *r, uint32_t id, const char *name)
{
	struct ctl m;

	return rig_recv(r, &m, true) && m.id == id && m.event == VIRTIO_CONSOLE_PORT_NAME &&
	       m.len == sizeof(struct virtio_console_control) + strlen(name) && !strcmp(m.name, name);
}

/* DEVICE_READY -> PORT_ADD x3; PORT_READY -> CONSOLE_PORT / PORT_OPEN 1 / PORT_NAME. */
static int handshake(struct rig *r)
{
	if (!rig_send(r, 0, VIRTIO_CONSOLE_DEVICE_READY, 1))
		return 1;
	for (uint32_t id = 0; id < 3; id++)
		if (!expect(r, id, VIRTIO_CONSOLE_PORT_ADD, 0))
			return 2;
	rig_send(r, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	if (!expect(r, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1) || !expect(r, 0, VIRTIO_CONSOLE_PORT_OPEN, 1))
		return 3;
	rig_send(r, 1, VIRTIO_CONSOLE_PORT_READY, 1);
	if (!expect(r, 1, VIRTIO_CONSOLE_PORT_OPEN, 1) || !expect_name(r, 1, "krun-stdin"))
		return 4;
	rig_send(r, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	if (!expect(r, 2, VIRTIO_CONSOLE_PORT_OPEN, 1) || !expect_name(r, 2, "krun-stdout"))
		return 5;
	return 0;
}

static void test_handshake(void)
{
	struct rig r;
	uint32_t ports = 0;
	struct ctl m;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(virtio_mmio_read(r.d.m, VIRTIO_MMIO_CONFIG + 4, &ports, 4), 0);
	CHECK_EQ(ports, 3);
	usleep(10000);
	CHECK(!rig_recv(&r, &m, false));        /* nothing before DEVICE_READY */
	CHECK_EQ(handshake(&r), 0);
	usleep(10000);
	CHECK(!rig_recv(&r, &m, false));
	rig_stop(&r);
}

static void post_rx(struct rig *r, unsigned int q, uint64_t gpa, uint32_t len)
{
	mdrv_post(&r->d, q, &gpa, &len, 0, 1);
	rig_kick(r, q);
}

/* Input waits for the guest's PORT_OPEN; host EOF becomes PORT_OPEN 0 after the last byte. */
static void test_stdin_eof(void)
{
	static const char text[] = "hello through krun-stdin";
	struct rig r;
	uint64_t gpa[2];
	uint32_t id, len;
	struct ctl m;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(handshake(&r), 0);
	gpa[0] = mdrv_alloc(&r.d, 256);
	gpa[1] = mdrv_alloc(&r.d, 256);
	post_rx(&r, STDIN_RXQ, gpa[0], 256);
	post_rx(&r, STDIN_RXQ, gpa[1], 256);
	CHECK_EQ(write(r.in_w, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(r.in_w);
	r.in_w = -1;
	usleep(20000);
	CHECK(!rig_used(&r, STDIN_RXQ, NULL, NULL, false));     /* the guest has not opened it */
	CHECK(!rig_recv(&r, &m, false));
	rig_send(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK(expect(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 0));
	/* By the time the guest sees the close, the data is already in the used ring. */
	CHECK(rig_used(&r, STDIN_RXQ, &id, &len, false));
	CHECK_EQ(len, sizeof(text) - 1);
	CHECK(!memcmp(mdrv_hva(&r.d, rig_desc_gpa(&r, STDIN_RXQ, id)), text, len));
	CHECK(!rig_used(&r, STDIN_RXQ, NULL, NULL, false));
	rig_stop(&r);
}

static void test_stdout(void)
{
	static const char text[] = "guest says hi\n";
	struct rig r;
	uint64_t gpa;
	uint32_t len = sizeof(text) - 1;
	char buf[64];

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(handshake(&r), 0);
	rig_send(&r, 2, VIRTIO_CONSOLE_PORT_OPEN, 1);
	gpa = mdrv_alloc(&r.d, len);
	memcpy(mdrv_hva(&r.d, gpa), text, len);
	mdrv_post(&r.d, STDOUT_TXQ, &gpa, &len, 1, 1);
	rig_kick(&r, STDOUT_TXQ);
	CHECK_EQ(rig_read_timeout(r.out_r, buf, sizeof(buf)), (ssize_t)len);
	CHECK(!memcmp(buf, text, len));
	CHECK(rig_used(&r, STDOUT_TXQ, NULL, NULL, true));
	/* The guest closing its end only means nothing more comes: no control reply. */
	rig_send(&r, 2, VIRTIO_CONSOLE_PORT_OPEN, 0);
	usleep(10000);
	CHECK(!rig_recv(&r, &(struct ctl){ 0 }, false));
	rig_stop(&r);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 13) * 7 + (i >> 21));
}

enum { BIG_TOTAL = 16 << 20, BIG_CHUNK = 64 << 10, BIG_BUFS = 8, PAUSE_AT = 8 << 20 };

struct slow_reader {
	int fd;
	size_t got;
	bool same;
	double pause_cpu;
};

/* Reads in small pieces, naps every MiB and stops for 300 ms halfway: the device must wait. */
static void *slow_read(void *opaque)
{
	struct slow_reader *s = opaque;
	uint8_t buf[4096];

	s->same = true;
	while (s->got < BIG_TOTAL) {
		ssize_t n = rig_read_timeout(s->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (ssize_t k = 0; k < n; k++)
			s->same &= buf[k] == pattern(s->got + (size_t)k);
		if ((s->got >> 20) != ((s->got + (size_t)n) >> 20))
			usleep(2000);
		if (s->got < PAUSE_AT && s->got + (size_t)n >= PAUSE_AT) {
			double cpu = cpu_seconds();
			usleep(300000);
			s->pause_cpu = cpu_seconds() - cpu;
		}
		s->got += (size_t)n;
	}
	return NULL;
}

static void fill_chunk(struct rig *r, uint64_t gpa, size_t off)
{
	uint8_t *p = mdrv_hva(&r->d, gpa);

	for (size_t k = 0; k < BIG_CHUNK; k++)
		p[k] = pattern(off + k);
}

/* 16 MiB guest -> host through a 4 KiB pipe with a slow reader: byte-exact, no spinning. */
static void test_big_transfer(void)
{
	struct slow_reader s = { 0 };
	struct rig r;
	uint64_t gpa[BIG_BUFS];
	uint32_t len = BIG_CHUNK, id;
	size_t sent = 0, done = 0;
	pthread_t t;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(handshake(&r), 0);
	CHECK(fcntl(r.out_r, F_SETPIPE_SZ, 4096) > 0);
	s.fd = r.out_r;
	pthread_create(&t, NULL, slow_read, &s);
	for (int i = 0; i < BIG_BUFS; i++) {
		gpa[i] = mdrv_alloc(&r.d, BIG_CHUNK);
		fill_chunk(&r, gpa[i], sent);
		mdrv_post(&r.d, STDOUT_TXQ, &gpa[i], &len, 1, 1);
		sent += BIG_CHUNK;
	}
	rig_kick(&r, STDOUT_TXQ);
	while (done < BIG_TOTAL) {
		uint64_t g;
		if (!rig_used(&r, STDOUT_TXQ, &id, NULL, true) && !rig_used(&r, STDOUT_TXQ, &id, NULL, true))
			break;
		done += BIG_CHUNK;
		if (sent == BIG_TOTAL)
			continue;
		g = rig_desc_gpa(&r, STDOUT_TXQ, id);
		fill_chunk(&r, g, sent);
		mdrv_post(&r.d, STDOUT_TXQ, &g, &len, 1, 1);
		rig_kick(&r, STDOUT_TXQ);
		sent += BIG_CHUNK;
	}
	pthread_join(t, NULL);
	CHECK_EQ(done, BIG_TOTAL);
	CHECK_EQ(s.got, BIG_TOTAL);
	CHECK(s.same);
	CHECK(s.pause_cpu < 0.05);      /* waiting for EPOLLOUT, not polling */
	rig_stop(&r);
}

struct pipe_writer {
	int fd;
	size_t total;
};

static void *write_all(void *opaque)
{
	struct pipe_writer *w = opaque;
	uint8_t buf[8192];
	size_t off = 0;

	while (off < w->total) {
		size_t n = w->total - off < sizeof(buf) ? w->total - off : sizeof(buf);
		ssize_t k;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		k = write(w->fd, buf, n);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	close(w->fd);
	return NULL;
}

/* The guest side of krun-stdin: BIG_BUFS buffers re-posted as they fill; checks every byte. */
static size_t receive_all(struct rig *r, size_t total, bool *same)
{
	uint32_t id, len;
	size_t got = 0;

	*same = true;
	for (int i = 0; i < BIG_BUFS; i++)
		post_rx(r, STDIN_RXQ, mdrv_alloc(&r->d, BIG_CHUNK), BIG_CHUNK);
	while (got < total && rig_used(r, STDIN_RXQ, &id, &len, true)) {
		uint64_t gpa = rig_desc_gpa(r, STDIN_RXQ, id);
		const uint8_t *p = mdrv_hva(&r->d, gpa);
		for (uint32_t k = 0; k < len; k++)
			*same &= p[k] == pattern(got + k);
		got += len;
		post_rx(r, STDIN_RXQ, gpa, BIG_CHUNK);
	}
	return got;
}

/* 16 MiB host -> guest through a pipe: only as fast as the guest posts buffers; EOF after. */
static void test_stdin_big(void)
{
	struct pipe_writer w = { .total = BIG_TOTAL };
	struct rig r;
	pthread_t t;
	bool same;

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(handshake(&r), 0);
	w.fd = r.in_w;
	r.in_w = -1;
	pthread_create(&t, NULL, write_all, &w);
	rig_send(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK_EQ(receive_all(&r, BIG_TOTAL, &same), BIG_TOTAL);
	pthread_join(t, NULL);
	CHECK(same);
	CHECK(expect(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 0));
	CHECK(!rig_used(&r, STDIN_RXQ, NULL, NULL, false));
	rig_stop(&r);
}

/* A regular file as stdin (epoll refuses it): read as buffers arrive, then EOF. */
static void test_stdin_file(void)
{
	enum { SIZE = 1000 * 1000 };
	char name[] = "/tmp/test_console_mp_in.XXXXXX";
	int fd = mkstemp(name);
	struct pipe_writer w = { .fd = fd, .total = SIZE };
	struct rig r;
	bool same;

	CHECK(fd >= 0);
	write_all(&w);
	fd = open(name, O_RDONLY);
	unlink(name);
	CHECK_EQ(rig_start_ex(&r, &(struct rig_opts){ .stdin_fd = fd }), 0);
	close(fd);
	CHECK_EQ(handshake(&r), 0);
	rig_send(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK_EQ(receive_all(&r, SIZE, &same), SIZE);
	CHECK(same);
	CHECK(expect(&r, 1, VIRTIO_CONSOLE_PORT_OPEN, 0));
	rig_stop(&r);
}

/* With MULTIPORT the console port, too, takes input only once the driver opened it (hvc0). */
static void test_console_port(void)
{
	struct rig r;
	uint64_t gpa;
	uint32_t len = 16;
	char buf[16];

	CHECK_EQ(rig_start(&r), 0);
	CHECK_EQ(handshake(&r), 0);
	gpa = mdrv_alloc(&r.d, 16);
	post_rx(&r, 0, gpa, 16);
	CHECK_EQ(write(r.con_w, "key", 3), 3);
	usleep(20000);
	CHECK(!rig_used(&r, 0, NULL, NULL, false));
	rig_send(&r, 0, VIRTIO_CONSOLE_PORT_OPEN, 1);
	CHECK(rig_used(&r, 0, NULL, &len, true));
	CHECK_EQ(len, 3);
	CHECK(!memcmp(mdrv_hva(&r.d, gpa), "key", 3));
	memcpy(mdrv_hva(&r.d, gpa), "boot\n", 5);
	len = 5;
	mdrv_post(&r.d, 1, &gpa, &len, 1, 1);
	rig_kick(&r, 1);
	CHECK_EQ(rig_read_timeout(r.con_r, buf, sizeof(buf)), 5);
	CHECK(!memcmp(buf, "boot\n", 5));
	rig_stop(&r);
}

/* A driver without MULTIPORT sees one console port on queues 0/1; named ports stay idle. */
static void test_single_port_driver(void)
{
	struct rig r;
	uint64_t gpa;
	uint32_t len = 16;
	char buf[16];

	CHECK_EQ(rig_start_ex(&r, &(struct rig_opts){ .single_port = true }), 0);
	CHECK_EQ(write(r.in_w, "unused", 6), 6);
	gpa = mdrv_alloc(&r.d, 16);
	post_rx(&r, 0, gpa, 16);
	CHECK_EQ(write(r.con_w, "in", 2), 2);
	CHECK(rig_used(&r, 0, NULL, &len, true));
	CHECK_EQ(len, 2);
	memcpy(mdrv_hva(&r.d, gpa), "out", 3);
	len = 3;
	mdrv_post(&r.d, 1, &gpa, &len, 1, 1);
	rig_kick(&r, 1);
	CHECK_EQ(rig_read_timeout(r.con_r, buf, sizeof(buf)), 3);
	CHECK(!memcmp(buf, "out", 3));
	rig_stop(&r);
}

/* A terminal console: its size goes out as RESIZE after CONSOLE_PORT (rows first, as Linux reads). */
static void test_resize(void)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 111 };
	struct rig r;
	struct ctl m;
	int master, slave;
	uint16_t size[2];

	CHECK_EQ(openpty(&master, &slave, NULL, NULL, &ws), 0);
	CHECK_EQ(rig_start_ex(&r, &(struct rig_opts){ .con_tty = slave }), 0);
	rig_send(&r, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	for (uint32_t id = 0; id < 3; id++)
		CHECK(expect(&r, id, VIRTIO_CONSOLE_PORT_ADD, 0));
	rig_send(&r, 0, VIRTIO_CONSOLE_PORT_READY, 1);
	CHECK(expect(&r, 0, VIRTIO_CONSOLE_CONSOLE_PORT, 1));
	CHECK(rig_recv(&r, &m, true));
	CHECK_EQ(m.event, VIRTIO_CONSOLE_RESIZE);
	CHECK_EQ(m.len, sizeof(struct virtio_console_control) + 4);
	memcpy(size, m.name, 4);
	CHECK_EQ(le16toh(size[0]), 33);
	CHECK_EQ(le16toh(size[1]), 111);
	CHECK(expect(&r, 0, VIRTIO_CONSOLE_PORT_OPEN, 1));
	rig_stop(&r);
	close(slave);       /* the device put it in raw mode and restored it on destroy */
	close(master);
}

/* The host reader goes away: output is dropped, the process does not die of SIGPIPE. */
static void test_epipe(void)
{
	struct rig r;
	uint64_t gpa;
	uint32_t len = 1000;
	int closed = 0;
	struct rig_opts o = { .output_closed = &closed };

	CHECK_EQ(rig_start_ex(&r, &o), 0);
	CHECK_EQ(handshake(&r), 0);
	close(r.out_r);
	r.out_r = -1;
	gpa = mdrv_alloc(&r.d, len);
	for (int i = 0; i < 3; i++) {
		mdrv_post(&r.d, STDOUT_TXQ, &gpa, &len, 1, 1);
		rig_kick(&r, STDOUT_TXQ);
		CHECK(rig_used(&r, STDOUT_TXQ, NULL, NULL, true));
	}
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	/* The owner hears about it once, to end the run as a local pipeline would. */
	CHECK_EQ(__atomic_load_n(&closed, __ATOMIC_SEQ_CST), 1);
	rig_stop(&r);
}

static int count_lines(int fd)
{
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	int lines = 0;

	for (ssize_t i = 0; i < n; i++)
		lines += buf[i] == '\n';
	return lines;
}

/* Short, unknown-port and unknown-event messages are ignored with rate-limited warnings. */
static void test_malformed(void)
{
	struct virtio_console_control bad_port = { htole32(99), htole16(VIRTIO_CONSOLE_PORT_OPEN), htole16(1) };
	struct virtio_console_control bad_event = { htole32(1), htole16(77), htole16(1) };
	char logname[] = "/tmp/test_console_mp.XXXXXX";
	int logfd = mkstemp(logname);
	struct rig r;
	struct ctl m;
	int lines;

	CHECK(logfd >= 0);
	unlink(logname);
	CHECK_EQ(rig_start(&r), 0);
	log_set_level(LOG_LEVEL_WARN);
	log_set_fd(logfd);
	for (int i = 0; i < 30; i++) {
		CHECK(rig_send_raw(&r, "abc", 3));
		CHECK(rig_send_raw(&r, &bad_port, sizeof(bad_port)));
		CHECK(rig_send_raw(&r, &bad_event, sizeof(bad_event)));
	}
	CHECK(rig_send_raw(&r, "", 0));
	log_set_fd(-1);
	log_set_level(LOG_LEVEL_ERROR);
	lines = count_lines(logfd);
	close(logfd);
	CHECK(lines >= 3 && lines <= 20);
	CHECK(!rig_recv(&r, &m, false));
	CHECK_EQ(mdrv_rd(&r.d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	CHECK_EQ(handshake(&r), 0);      /* still works */
	rig_stop(&r);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);     /* EPIPE and malformed messages warn by design */
	RUN_TEST(test_handshake);
	RUN_TEST(test_stdin_eof);
	RUN_TEST(test_stdout);
	RUN_TEST(test_big_transfer);
	RUN_TEST(test_stdin_big);
	RUN_TEST(test_stdin_file);
	RUN_TEST(test_console_port);
	RUN_TEST(test_single_port_driver);
	RUN_TEST(test_resize);
	RUN_TEST(test_epipe);
	RUN_TEST(test_malformed);
	return HARNESS_EXIT();
}
