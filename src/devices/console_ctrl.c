/*
 * virtio-console control queues (virtio 1.2 section 5.3.6.2): the driver announces itself
 * (DEVICE_READY), the device adds its ports (PORT_ADD), and for each port the driver accepts
 * (PORT_READY) the device says which one is the console, whether the host end is open, and
 * its name. Pending messages are per-port bits, never a queue: buffering stays bounded.
 */
#define LOG_MODULE "console"
#include "devices/console_int.h"

#include <endian.h>
#include <string.h>

#include "util/iov.h"
#include "util/log.h"

struct ctrl_msg {
	struct virtio_console_control hdr;
	uint8_t payload[CONSOLE_NAME_MAX];
};

/* One message into one receive buffer. false: no buffer now (retry on the next kick). */
static bool send_msg(struct console *c, const struct ctrl_msg *m, size_t len)
{
	struct virtq *vq = &c->dev.vqs[CONSOLE_CTRL_RXQ];
	int r = virtq_pop(vq, &c->ctrl);
	size_t room;

	if (r < 0)
		virtio_dev_fail(&c->dev, "bad control receive chain");
	if (r <= 0)
		return false;
	room = iov_length(&c->ctrl.iov[c->ctrl.out_num], c->ctrl.in_num);
	if (room < len) {
		log_warn_guest("control receive buffer of %zu bytes too small, message dropped", room);
		len = 0;
	}
	iov_from_buf(&c->ctrl.iov[c->ctrl.out_num], c->ctrl.in_num, 0, m, len);
	virtq_push(vq, c->ctrl.head, (uint32_t)len);
	virtio_dev_notify_used(&c->dev, CONSOLE_CTRL_RXQ);
	return true;
}

static size_t build(const struct console_port *p, unsigned int what, struct ctrl_msg *m)
{
	const struct console *c = p->c;
	uint16_t event = 0, value = 1;
	size_t extra = 0;

	switch (what) {
	case CONSOLE_SEND_ADD: event = VIRTIO_CONSOLE_PORT_ADD; value = 0; break;   /* unused */
	case CONSOLE_SEND_CONSOLE: event = VIRTIO_CONSOLE_CONSOLE_PORT; break;
	case CONSOLE_SEND_RESIZE: {
		/*
		 * 5.3.6.2 puts cols before rows, but Linux's driver (6.1, and again since a 2025
		 * revert, for compatibility) reads rows first: send what the guest reads.
		 */
		uint16_t size[2] = { htole16(c->config.rows), htole16(c->config.cols) };
		event = VIRTIO_CONSOLE_RESIZE;
		value = 0;
		memcpy(m->payload, size, sizeof(size));
		extra = sizeof(size);
		break;
	}
	case CONSOLE_SEND_OPEN:
		event = VIRTIO_CONSOLE_PORT_OPEN;
		value = console_port_host_connected(p);
		break;
	case CONSOLE_SEND_NAME:
		/* The name follows the header, without a terminating NUL. */
		event = VIRTIO_CONSOLE_PORT_NAME;
		extra = strlen(p->name);
		memcpy(m->payload, p->name, extra);
		break;
	}
	m->hdr.id = htole32(p->id);
	m->hdr.event = htole16(event);
	m->hdr.value = htole16(value);
	return sizeof(m->hdr) + extra;
}

void console_ctrl_flush(struct console *c)
{
	struct ctrl_msg m;

	if (!c->multiport)
		return;
	for (unsigned int i = 0; i < c->nr_ports; i++) {
		struct console_port *p = &c->ports[i];

		while (p->send) {
			unsigned int what = p->send & -p->send;     /* lowest bit: the order of the enum */

			if (!send_msg(c, &m, build(p, what, &m)))
				return;
			p->send &= ~what;
		}
	}
}

void console_ctrl_queue(struct console_port *p, unsigned int what)
{
	/* Everything but PORT_ADD waits for the driver's PORT_READY, which queues it all anyway. */
	if (!p->guest_ready)
		what &= CONSOLE_SEND_ADD;
	p->send |= what;
	console_ctrl_flush(p->c);
}

static void port_ready(struct console_port *p, uint16_t value)
{
	unsigned int what = CONSOLE_SEND_OPEN;

	if (!value) {
		log_warn_guest("the driver could not set up port %u", p->id);
		return;
	}
	p->guest_ready = true;
	if (p->id == 0)
		what |= CONSOLE_SEND_CONSOLE | (p->c->sized ? CONSOLE_SEND_RESIZE : 0);
	if (p->name[0])
		what |= CONSOLE_SEND_NAME;
	console_ctrl_queue(p, what);
}

/* The guest opened or closed its end; input flows only while it is open. */
static void port_open(struct console_port *p, uint16_t value)
{
	p->guest_open = value != 0;
	if (p->guest_open)
		console_port_start_input(p);
	else
		console_port_stop_input(p);
	/* Output already queued is still written: closing does not discard the transmitq. */
}

static void handle(struct console *c, uint32_t id, uint16_t event, uint16_t value)
{
	if (event == VIRTIO_CONSOLE_DEVICE_READY) {
		if (!value)
			log_warn_guest("the driver failed to initialize the ports");
		for (unsigned int i = 0; value && i < c->nr_ports; i++)
			console_ctrl_queue(&c->ports[i], CONSOLE_SEND_ADD);
		return;
	}
	if (id >= c->nr_ports) {
		log_warn_guest("control message (event %u) for unknown port %u", event, id);
		return;
	}
	if (event == VIRTIO_CONSOLE_PORT_READY)
		port_ready(&c->ports[id], value);
	else if (event == VIRTIO_CONSOLE_PORT_OPEN)
		port_open(&c->ports[id], value);
	else
		log_warn_guest("unknown control event %u from the driver", event);
}

void console_ctrl_process_tx(struct console *c)
{
	struct virtq *vq = &c->dev.vqs[CONSOLE_CTRL_TXQ];
	struct virtio_console_control hdr;

	for (;;) {
		int r = virtq_pop(vq, &c->ctrl);
		size_t n;

		if (r < 0)
			virtio_dev_fail(&c->dev, "bad control transmit chain");
		if (r <= 0)
			return;
		/* Copy the header out of guest memory before looking at it. */
		n = iov_to_buf(c->ctrl.iov, c->ctrl.out_num, 0, &hdr, sizeof(hdr));
		virtq_push(vq, c->ctrl.head, 0);
		virtio_dev_notify_used(&c->dev, CONSOLE_CTRL_TXQ);
		if (n < sizeof(hdr)) {
			log_warn_guest("short control message (%zu bytes) ignored", n);
			continue;
		}
		handle(c, le32toh(hdr.id), le16toh(hdr.event), le16toh(hdr.value));
	}
}
