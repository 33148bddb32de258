/* Test guest: FUSE requests over virtio-fs (virtio 1.2 section 5.11): INIT, LOOKUP, OPEN, READ, WRITE. */
#include <linux/fuse.h>

#include "guest.h"

#define ROOT_NODE 1
#define REQ_Q 1
#define O_RDONLY_ 0
#define O_WRONLY_ 1

static struct vq fs_vqs[2];
static bool fs_ready;
static uint64_t next_unique = 1;
static uint8_t req_buf[512], rep_buf[512];

/* One request/reply on the request queue; returns the reply payload length or -errno. */
static int64_t fuse_call(struct vdev *d, uint32_t opcode, uint64_t node, const void *arg,
			 uint32_t arg_len, const void *data, uint32_t data_len, void *reply, uint32_t cap)
{
	struct fuse_in_header *in = (struct fuse_in_header *)req_buf;
	struct fuse_out_header *out = (struct fuse_out_header *)rep_buf;
	const void *bufs[2] = { req_buf, rep_buf };
	uint32_t lens[2];
	int64_t n;

	if (sizeof(*in) + arg_len + data_len > sizeof(req_buf) || sizeof(*out) + cap > sizeof(rep_buf))
		return -22;
	memset(in, 0, sizeof(*in));
	in->len = (uint32_t)sizeof(*in) + arg_len + data_len;
	in->opcode = opcode;
	in->unique = next_unique++;
	in->nodeid = node;
	memcpy(req_buf + sizeof(*in), arg, arg_len);
	memcpy(req_buf + sizeof(*in) + arg_len, data, data_len);
	memset(out, 0, sizeof(*out));
	lens[0] = in->len;
	lens[1] = (uint32_t)sizeof(*out) + cap;
	vq_post(d, &fs_vqs[REQ_Q], bufs, lens, 1, 1);
	n = vq_wait(d, &fs_vqs[REQ_Q]);
	if (n < (int64_t)sizeof(*out) || out->unique != in->unique)
		return -5;
	if (out->error)
		return out->error;
	n = out->len - (int64_t)sizeof(*out);
	if (n < 0 || n > cap)
		return -5;
	memcpy(reply, rep_buf + sizeof(*out), (size_t)n);
	return n;
}

static int fs_start(struct vdev *d)
{
	struct fuse_init_in init;
	struct fuse_init_out reply;

	if (fs_ready)
		return 0;
	if (vdev_init(d, fs_vqs, 2))
		return -1000;
	memset(&init, 0, sizeof(init));
	init.major = FUSE_KERNEL_VERSION;
	init.minor = FUSE_KERNEL_MINOR_VERSION;
	if (fuse_call(d, FUSE_INIT, 0, &init, sizeof(init), 0, 0, &reply, sizeof(reply)) < 0)
		return -1001;
	fs_ready = reply.major == FUSE_KERNEL_VERSION;
	return fs_ready ? 0 : -1002;
}

static int64_t open_file(struct vdev *d, const char *name, uint32_t flags, uint64_t *node, uint64_t *fh)
{
	struct fuse_entry_out entry;
	struct fuse_open_in open_in;
	struct fuse_open_out open_out;
	int64_t n = fs_start(d);

	if (n)
		return n;
	n = fuse_call(d, FUSE_LOOKUP, ROOT_NODE, name, (uint32_t)strlen(name) + 1, 0, 0, &entry, sizeof(entry));
	if (n < 0)
		return n;
	*node = entry.nodeid;
	memset(&open_in, 0, sizeof(open_in));
	open_in.flags = flags;
	n = fuse_call(d, FUSE_OPEN, *node, &open_in, sizeof(open_in), 0, 0, &open_out, sizeof(open_out));
	if (n < 0)
		return n;
	*fh = open_out.fh;
	return 0;
}

int fs_read_file(struct vdev *d, const char *name, char *buf, uint32_t cap)
{
	struct fuse_read_in rd;
	uint64_t node, fh;
	int64_t n = open_file(d, name, O_RDONLY_, &node, &fh);

	if (n < 0)
		return (int)n;
	memset(&rd, 0, sizeof(rd));
	rd.fh = fh;
	rd.size = cap;
	return (int)fuse_call(d, FUSE_READ, node, &rd, sizeof(rd), 0, 0, buf, cap);
}

int fs_write_file(struct vdev *d, const char *name, const char *text)
{
	struct fuse_write_in wr;
	struct fuse_write_out reply;
	uint64_t node, fh;
	int64_t n = open_file(d, name, O_WRONLY_, &node, &fh);

	if (n < 0)
		return (int)n;
	memset(&wr, 0, sizeof(wr));
	wr.fh = fh;
	wr.size = (uint32_t)strlen(text);
	n = fuse_call(d, FUSE_WRITE, node, &wr, sizeof(wr), text, wr.size, &reply, sizeof(reply));
	return n < 0 ? (int)n : (int)reply.size;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/*
 * One request built once and sent n times back to back: GETATTR of `node`, or LOOKUP of
 * `name` in the root. Each reply must carry its own unique id, no error and the node's inode
 * number; the count of replies that did not is returned in *bad.
 */
static uint64_t repeat_request(struct vdev *d, bool lookup, uint64_t node, uint64_t ino,
			       const char *name, uint64_t n, uint64_t *bad)
{
	struct fuse_in_header *in = (struct fuse_in_header *)req_buf;
	struct fuse_out_header *out = (struct fuse_out_header *)rep_buf;
	const struct fuse_attr_out *attr = (const void *)(rep_buf + sizeof(*out));
	const struct fuse_entry_out *entry = (const void *)(rep_buf + sizeof(*out));
	struct fuse_getattr_in ga = { 0 };
	const void *bufs[2] = { req_buf, rep_buf };
	uint32_t lens[2], arg_len = lookup ? (uint32_t)strlen(name) + 1 : (uint32_t)sizeof(ga);
	uint64_t t0, cycles;

	memset(in, 0, sizeof(*in));
	in->len = (uint32_t)sizeof(*in) + arg_len;
	in->opcode = lookup ? FUSE_LOOKUP : FUSE_GETATTR;
	in->nodeid = lookup ? ROOT_NODE : node;
	memcpy(req_buf + sizeof(*in), lookup ? (const void *)name : (const void *)&ga, arg_len);
	lens[0] = in->len;
	lens[1] = (uint32_t)(sizeof(*out) + (lookup ? sizeof(*entry) : sizeof(*attr)));
	*bad = 0;
	t0 = rdtsc();
	for (uint64_t i = 0; i < n; i++) {
		in->unique = next_unique++;
		out->unique = 0;
		vq_post(d, &fs_vqs[REQ_Q], bufs, lens, 1, 1);
		if (vq_wait(d, &fs_vqs[REQ_Q]) != lens[1] || out->unique != in->unique || out->error ||
		    (lookup ? entry->attr.ino : attr->attr.ino) != ino)
			(*bad)++;
	}
	cycles = rdtsc() - t0;
	return cycles;
}

/* Round trips (bench/fs_rtt.sh): t.op=getattr|lookup t.file=NAME t.n=COUNT. */
int fs_rtt_scenario(struct vdev *d, bool lookup, const char *name, uint64_t n)
{
	struct fuse_entry_out entry;
	uint64_t bad, cycles;
	int64_t r = fs_start(d);

	if (r)
		return (int)r;
	r = fuse_call(d, FUSE_LOOKUP, ROOT_NODE, name, (uint32_t)strlen(name) + 1, 0, 0, &entry, sizeof(entry));
	if (r < 0)
		return (int)r;
	cycles = repeat_request(d, lookup, entry.nodeid, entry.attr.ino, name, n, &bad);
	out_str(lookup ? "guest: rtt op=lookup n=" : "guest: rtt op=getattr n=");
	out_u64(n);
	out_str(" cycles=");
	out_u64(cycles);
	out_str(" bad=");
	out_u64(bad);
	out_str("\n");
	return bad ? 6 : 0;
}
