/* A multiport virtio-console rig for unit tests: mmio transport, loop thread, pipes, ring helpers. */
#ifndef KRUN_TESTS_TEST_CONSOLE_RIG_H
#define KRUN_TESTS_TEST_CONSOLE_RIG_H

#include <endian.h>
#include <linux/virtio_console.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "devices/console.h"
#include "test_mmio_driver.h"
#include "util/evloop.h"

/* Port 1 = krun-stdin (host in_w -> guest), port 2 = krun-stdout (guest -> host out_r). */
#define RIG_QUEUES 8
#define RIG_CTRL_BUFS 8
#define RIG_CTRL_LEN 128

struct rig {
	struct mdrv d;
	struct evloop *loop;
	pthread_t thread;
	int in_w, out_r;            /* krun-stdin's writer, krun-stdout's reader */
	int con_w, con_r;           /* the console's (port 0) input writer and output reader */
	uint64_t ctrl_gpa[RIG_CTRL_BUFS];
};

struct ctl {
	uint32_t id;
	uint16_t event, value;
	char name[RIG_CTRL_LEN];
	uint32_t len;
};

static void *rig_loop_thread(void *loop)
{
	evloop_run(loop);
	return NULL;
}

/* Like mdrv_start, accepting VIRTIO_CONSOLE_F_MULTIPORT (feature bit 1). */
static inline int rig_driver_start(struct mdrv *d, unsigned int nq)
{
	uint32_t st = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	mdrv_wr(d, VIRTIO_MMIO_STATUS, 0);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	mdrv_wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	if (!(mdrv_rd(d, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_CONSOLE_F_MULTIPORT)))
		return -1;
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mdrv_wr(d, VIRTIO_MMIO_DRIVER_FEATURES, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
	st |= VIRTIO_CONFIG_S_FEATURES_OK;
	mdrv_wr(d, VIRTIO_MMIO_STATUS, st);
	if (!(mdrv_rd(d, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return -2;
	for (unsigned int q = 0; q < nq; q++)
		if (mdrv_setup_queue(d, q))
			return -3;
	return mdrv_wr(d, VIRTIO_MMIO_STATUS, st | VIRTIO_CONFIG_S_DRIVER_OK);
}

static inline void rig_kick(struct rig *r, unsigned int q)
{
	mdrv_wr(&r->d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static inline void rig_post_ctrl_buf(struct rig *r, uint64_t gpa)
{
	uint32_t len = RIG_CTRL_LEN;

	mdrv_post(&r->d, 2, &gpa, &len, 0, 1);
}

struct rig_opts {
	int stdin_fd;           /* > 0: krun-stdin reads this (a file) instead of a pipe */
	int con_tty;            /* > 0: the console's input is this terminal (its size is reported) */
	bool single_port;       /* the driver does not accept MULTIPORT */
	int *output_closed;     /* counts the device's output_closed calls */
};

static inline void rig_count_output_closed(void *opaque)
{
	__atomic_add_fetch((int *)opaque, 1, __ATOMIC_SEQ_CST);
}

static inline int rig_start_ex(struct rig *r, const struct rig_opts *o)
{
	struct console_config cc = { .nr_ports = 2 };
	struct virtio_dev *dev;
	int in[2], out[2], con_in[2], con_out[2];

	if (pipe(in) || pipe(out) || pipe(con_in) || pipe(con_out) || mdrv_init(&r->d))
		return -1;
	cc.in_fd = o->con_tty > 0 ? o->con_tty : con_in[0];
	cc.out_fd = con_out[1];
	cc.ports[0] = (struct console_port_config){ "krun-stdin", o->stdin_fd > 0 ? o->stdin_fd : in[0],
						    CONSOLE_TO_GUEST };
	cc.ports[1] = (struct console_port_config){ "krun-stdout", out[1], CONSOLE_FROM_GUEST };
	if (o->output_closed) {
		cc.output_closed = rig_count_output_closed;
		cc.opaque = o->output_closed;
	}
	if (virtio_console_create(&cc, &dev))
		return -2;
	close(in[0]);
	close(out[1]);
	close(con_in[0]);
	close(con_out[1]);
	r->in_w = in[1];
	r->out_r = out[0];
	r->con_w = con_in[1];
	r->con_r = con_out[0];
	r->loop = evloop_create();
	if (!r->loop || virtio_mmio_create(dev, &r->d.mem, r->loop, -1, &r->d.m))
		return -3;
	pthread_create(&r->thread, NULL, rig_loop_thread, r->loop);
	if (o->single_port)
		return mdrv_start(&r->d, 2);
	if (rig_driver_start(&r->d, RIG_QUEUES))
		return -4;
	for (int i = 0; i < RIG_CTRL_BUFS; i++) {
		r->ctrl_gpa[i] = mdrv_alloc(&r->d, RIG_CTRL_LEN);
		rig_post_ctrl_buf(r, r->ctrl_gpa[i]);
	}
	rig_kick(r, 2);
	return 0;
}

static inline int rig_start(struct rig *r)
{
	return rig_start_ex(r, &(struct rig_opts){ 0 });
}

static inline void rig_stop(struct rig *r)
{
	evloop_stop(r->loop);
	pthread_join(r->thread, NULL);
	virtio_mmio_detach_loop(r->d.m);
	mdrv_free(&r->d);
	evloop_destroy(r->loop);
	if (r->in_w >= 0)
		close(r->in_w);
	if (r->out_r >= 0)
		close(r->out_r);
	close(r->con_w);
	close(r->con_r);
}

/* The next used element of q (waiting up to ~1 s when wait): 1 with id and len, else 0. */
static inline int rig_used(struct rig *r, unsigned int q, uint32_t *id, uint32_t *len, bool wait)
{
	struct vring_used *used = mdrv_hva(&r->d, mdrv_ring(q, 2));

	for (int i = 0; i < (wait ? 2000 : 1); i++) {
		if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != r->d.used_seen[q]) {
			struct vring_used_elem *e = &used->ring[r->d.used_seen[q] % MDRV_QSIZE];
			if (id)
				*id = e->id;
			if (len)
				*len = e->len;
			r->d.used_seen[q]++;
			return 1;
		}
		if (wait)
			usleep(500);
	}
	return 0;
}

static inline uint64_t rig_desc_gpa(struct rig *r, unsigned int q, uint32_t id)
{
	struct vring_desc *desc = mdrv_hva(&r->d, mdrv_ring(q, 0));

	return desc[id % MDRV_QSIZE].addr;
}

/* Receive one control message (and give its buffer back); 0 on timeout. */
static inline int rig_recv(struct rig *r, struct ctl *m, bool wait)
{
	struct virtio_console_control hdr;
	uint32_t id, len;
	uint64_t gpa;

	if (!rig_used(r, 2, &id, &len, wait))
		return 0;
	gpa = rig_desc_gpa(r, 2, id);
	memset(m, 0, sizeof(*m));
	m->len = len;
	if (len >= sizeof(hdr)) {
		memcpy(&hdr, mdrv_hva(&r->d, gpa), sizeof(hdr));
		m->id = le32toh(hdr.id);
		m->event = le16toh(hdr.event);
		m->value = le16toh(hdr.value);
		if (len - sizeof(hdr) < sizeof(m->name))
			memcpy(m->name, (char *)mdrv_hva(&r->d, gpa) + sizeof(hdr), len - sizeof(hdr));
	}
	rig_post_ctrl_buf(r, gpa);
	rig_kick(r, 2);
	return 1;
}

/* Send raw bytes on the control transmitq and wait until the device consumed them. */
static inline int rig_send_raw(struct rig *r, const void *buf, uint32_t len)
{
	uint64_t gpa = mdrv_alloc(&r->d, len ? len : 1);

	memcpy(mdrv_hva(&r->d, gpa), buf, len);
	mdrv_post(&r->d, 3, &gpa, &len, 1, 1);
	rig_kick(r, 3);
	return rig_used(r, 3, NULL, NULL, true);
}

static inline int rig_send(struct rig *r, uint32_t id, uint16_t event, uint16_t value)
{
	struct virtio_console_control hdr = { htole32(id), htole16(event), htole16(value) };

	return rig_send_raw(r, &hdr, sizeof(hdr));
}

static inline ssize_t rig_read_timeout(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1 ? read(fd, buf, len) : -1;
}

#endif
