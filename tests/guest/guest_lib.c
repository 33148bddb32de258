/* Test guest: string helpers and line-buffered output to the virtio console and the serial port. */
#include "guest.h"

static char line[256];
static size_t line_len;
static struct vdev *con_dev;
static struct vq *con_tx;

void *memset(void *d, int c, size_t n)
{
	volatile uint8_t *p = d;

	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	volatile uint8_t *p = d;
	const uint8_t *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

bool contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!memcmp(hay, needle, n))
			return true;
	return n == 0;
}

bool cmdline_get(const char *cmdline, const char *key, char *buf, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, key, klen) && p[klen] == '=') {
			size_t n = 0;
			p += klen + 1;
			while (p[n] && p[n] != ' ' && n + 1 < cap) {
				buf[n] = p[n];
				n++;
			}
			buf[n] = 0;
			return true;
		}
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

uint64_t parse_u64(const char *s, const char **end)
{
	uint64_t v = 0;
	unsigned int base = 10;

	if (s[0] == '0' && s[1] == 'x') {
		base = 16;
		s += 2;
	}
	for (;; s++) {
		unsigned int dgt;
		if (*s >= '0' && *s <= '9')
			dgt = (unsigned int)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			dgt = (unsigned int)(*s - 'a' + 10);
		else
			break;
		v = v * base + dgt;
	}
	if (end)
		*end = s;
	return v;
}

void console_attach(struct vdev *d, struct vq *tx)
{
	con_dev = d;
	con_tx = tx;
}

void out_flush(void)
{
	const void *bufs[1] = { line };
	uint32_t lens[1] = { (uint32_t)line_len };

	if (!line_len)
		return;
	/* The serial port costs one exit per byte: only before the console is up. */
	if (!con_dev)
		for (size_t i = 0; i < line_len; i++)
			outb(LAYOUT_PORT_SERIAL, (uint8_t)line[i]);
	if (con_dev) {
		vq_post(con_dev, con_tx, bufs, lens, 1, 0);
		vq_wait(con_dev, con_tx);
	}
	line_len = 0;
}

void out_str(const char *s)
{
	for (; *s; s++) {
		if (line_len == sizeof(line))
			out_flush();
		line[line_len++] = *s;
		if (*s == '\n')
			out_flush();
	}
}

void out_u64(uint64_t v)
{
	char buf[21];
	int i = 20;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_str(buf + i);
}

void out_hex(uint64_t v)
{
	char buf[19];
	int i = 18;

	buf[i] = 0;
	do {
		buf[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	buf[--i] = 'x';
	buf[--i] = '0';
	out_str(buf + i);
}
