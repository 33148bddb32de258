/* Test guest: tiny freestanding helpers (port/MMIO access, strings, console/serial output). */
#ifndef KRUN_TESTS_GUEST_GUEST_H
#define KRUN_TESTS_GUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/layout.h"

#define barrier() __asm__ volatile("" ::: "memory")

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int memcmp(const void *a, const void *b, size_t n);
/* Value of "key=" on the command line copied into buf (NUL-terminated); false if absent. */
bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t cap);
uint64_t parse_u64(const char *s, const char **end);
bool contains(const char *hay, const char *needle);

/* Output: line buffer flushed to the console (when up) and to the serial debug port. */
void out_str(const char *s);
void out_u64(uint64_t v);
void out_hex(uint64_t v);
void out_flush(void);

/* A virtio-mmio device found on the command line. */
struct vdev {
	uint64_t base;
	uint32_t irq;
	uint32_t id;
};

#define VQ_SIZE 8

/* One split virtqueue (virtio 1.2 section 2.7) in a page of our .bss. */
struct vq {
	struct vdesc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; } desc[VQ_SIZE];
	struct { uint16_t flags; uint16_t idx; uint16_t ring[VQ_SIZE]; uint16_t used_event; } avail;
	uint8_t pad[2048 - 16 * VQ_SIZE - (6 + 2 * VQ_SIZE)];
	struct { uint16_t flags; volatile uint16_t idx; struct { uint32_t id; uint32_t len; } ring[VQ_SIZE];
		 uint16_t avail_event; } used;
	uint16_t last_used;
	uint32_t index;
} __attribute__((aligned(4096)));

int vdev_find(const char *cmdline, uint32_t id, struct vdev *out);
/* 3.1.1 handshake with VERSION_1 only; queues [0, nq) of vqs set up. 0 or a failed step number. */
int vdev_init(struct vdev *d, struct vq *vqs, unsigned int nq);
/* The same, also accepting `features` (device bits 0-31, each of which must be offered). */
int vdev_init_features(struct vdev *d, struct vq *vqs, unsigned int nq, uint32_t features);
/* Post a chain of nout readable then nin writable buffers as one request and kick. */
void vq_post(struct vdev *d, struct vq *q, const void *const *bufs, const uint32_t *lens,
	     unsigned int nout, unsigned int nin);
/* Wait for the next used element (bounded); returns its length or -1 on timeout. */
int64_t vq_wait(struct vdev *d, struct vq *q);
uint32_t vdev_status(struct vdev *d);
/* InterruptStatus seen set since the last call (read + acknowledged). */
uint32_t vdev_take_isr(struct vdev *d);

/* Console output goes here once the console device is up. */
void console_attach(struct vdev *d, struct vq *tx);

/* FUSE over virtio-fs: read `name` from the root into buf; write `text` to `exit_name`. */
int fs_read_file(struct vdev *d, const char *name, char *buf, uint32_t cap);
int fs_write_file(struct vdev *d, const char *name, const char *text);
/* n GETATTR (or LOOKUP) requests of `name` back to back; prints the TSC cycles they took. */
int fs_rtt_scenario(struct vdev *d, bool lookup, const char *name, uint64_t n);

/* virtio-console multiport scenario (guest_console_mp.c): t.port names the port; the status. */
int console_mp_scenario(const char *cmdline);
/* virtio-balloon free page reporting scenario (guest_balloon.c); returns the guest status. */
int balloon_scenario(const char *cmdline);
/* Footprint bench: touch t.touch MiB, optionally report it (t.report=1), then halt for good. */
void idle_scenario(const char *cmdline) __attribute__((noreturn));

#endif
