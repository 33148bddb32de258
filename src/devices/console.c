/*
 * virtio-console device core (virtio 1.2 section 5.3): port 0 is the console (hvc0, a terminal
 * on the host when there is one); with named ports VIRTIO_CONSOLE_F_MULTIPORT is offered and
 * the control queues announce them. A driver without MULTIPORT sees the single console port.
 */
#define LOG_MODULE "console"
#include "devices/console.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "devices/console_int.h"
#include "devices/console_tty.h"
#include "util/log.h"

/*
 * A Linux guest fills every receive queue with one page-sized buffer per entry at probe, and
 * the multiport console has five of them (port 0, the control queue, the stdio ports): at 256
 * entries that was 5 MiB of guest memory held for the VM's life, free page reporting cannot
 * return it. 64 entries still keep 256 KiB of input and up to 2 MiB of output (32 KiB writes)
 * in flight per port, far more than a terminal or a pipe needs.
 */
#define QUEUE_SIZE 64

static struct console *to_console(struct virtio_dev *dev)
{
	return dev->priv;
}

static bool update_size(struct console *c)
{
	uint16_t cols, rows;

	if (!console_tty_size(c->size_fd, &cols, &rows))
		return false;
	c->config.cols = cols;
	c->config.rows = rows;
	return true;
}

/* 5.3.6.2: with MULTIPORT the console size travels as a RESIZE control message. */
static void on_winch(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint64_t v;

	(void)events;
	if (read(c->winch_fd, &v, sizeof(v)) < 0 || !update_size(c))
		return;
	if (c->multiport)
		console_ctrl_queue(&c->ports[0], CONSOLE_SEND_RESIZE);
	else if (virtio_dev_has_feature(&c->dev, VIRTIO_CONSOLE_F_SIZE) && c->dev.transport.signal_config)
		c->dev.transport.signal_config(&c->dev);
}

static int console_activate(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	c->multiport = virtio_dev_has_feature(dev, VIRTIO_CONSOLE_F_MULTIPORT);
	if (c->winch_fd >= 0 && evloop_add(dev->loop, c->winch_fd, EPOLLIN, on_winch, c))
		log_debug("console size updates unavailable");
	console_port_start_input(&c->ports[0]);
	return 0;
}

static void console_queue_notify(struct virtio_dev *dev, unsigned int q)
{
	struct console *c = to_console(dev);
	unsigned int id = q < 2 ? 0 : (q - 2) / 2;

	if (q >= 2 && !c->multiport)
		return;         /* without MULTIPORT only port 0's queues exist (5.3.2) */
	if (q == CONSOLE_CTRL_RXQ)
		console_ctrl_flush(c);
	else if (q == CONSOLE_CTRL_TXQ)
		console_ctrl_process_tx(c);
	else if (id >= c->nr_ports)
		return;
	else if (q == console_rxq(id))
		console_port_start_input(&c->ports[id]);
	else
		console_port_process_tx(&c->ports[id]);
}

static void console_reset(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	for (unsigned int i = 0; i < c->nr_ports; i++)
		console_port_reset(&c->ports[i]);
	if (c->winch_fd >= 0 && dev->loop)
		evloop_del(dev->loop, c->winch_fd);
	c->multiport = false;
}

/* 5.3.4: a write to emerg_wr outputs one character even before the queues work. */
static void console_config_write(struct virtio_dev *dev, uint32_t offset, const void *data, uint32_t len)
{
	struct console *c = to_console(dev);
	struct console_port *p = &c->ports[0];
	struct iovec iov = { (void *)data, 1 };

	if (offset == offsetof(struct virtio_console_config, emerg_wr) && len == 4 && p->out_fd >= 0 &&
	    virtio_dev_has_feature(dev, VIRTIO_CONSOLE_F_EMERG_WRITE) && console_port_write(p, &iov, 1) < 0)
		log_warn_guest("console emergency write lost");
}

static void console_destroy(struct virtio_dev *dev)
{
	struct console *c = to_console(dev);

	console_tty_restore(c->tty_fd);
	console_tty_winch_put(c->winch_fd);
	for (unsigned int i = 0; i < CONSOLE_MAX_PORTS; i++)
		console_port_close(&c->ports[i]);
	free(c);
}

#define CONSOLE_OPS(ident, feat, nq) \
	static const struct virtio_dev_ops ident = { \
		.name = "virtio-console", \
		.device_id = 3, \
		.features = (1ull << VIRTIO_CONSOLE_F_EMERG_WRITE) | (feat), \
		.num_queues = (nq), \
		.queue_max_size = QUEUE_SIZE, \
		.activate = console_activate, \
		.queue_notify = console_queue_notify, \
		.reset = console_reset, \
		.config_write = console_config_write, \
		.destroy = console_destroy, \
	}

#define F_SIZE (1ull << VIRTIO_CONSOLE_F_SIZE)
#define F_MULTI (1ull << VIRTIO_CONSOLE_F_MULTIPORT)
#define MULTI_QUEUES (2 * (CONSOLE_MAX_PORTS + 1))

_Static_assert(MULTI_QUEUES <= VIRTIO_DEV_MAX_QUEUES, "VIRTIO_DEV_MAX_QUEUES too small for the ports");

/* Indexed by [sized][multiport]; the driver uses only the queues max_nr_ports implies. */
CONSOLE_OPS(ops_plain, 0, 2);
CONSOLE_OPS(ops_size, F_SIZE, 2);
CONSOLE_OPS(ops_multi, F_MULTI, MULTI_QUEUES);
CONSOLE_OPS(ops_size_multi, F_SIZE | F_MULTI, MULTI_QUEUES);
static const struct virtio_dev_ops *const console_ops[2][2] = {
	{ &ops_plain, &ops_multi }, { &ops_size, &ops_size_multi },
};

static int check_config(const struct console_config *cfg)
{
	if (cfg->nr_ports > CONSOLE_MAX_PORTS - 1)
		return -EINVAL;
	for (unsigned int i = 0; i < cfg->nr_ports; i++) {
		const struct console_port_config *pc = &cfg->ports[i];
		if (!pc->name || !pc->name[0] || strlen(pc->name) >= CONSOLE_NAME_MAX || pc->fd < 0 ||
		    (pc->dir != CONSOLE_TO_GUEST && pc->dir != CONSOLE_FROM_GUEST))
			return -EINVAL;
	}
	return 0;
}

static int init_ports(struct console *c, const struct console_config *cfg)
{
	int ret = console_port_init(&c->ports[0], c, 0, cfg->in_fd, cfg->out_fd);

	for (unsigned int i = 0; i < cfg->nr_ports && !ret; i++) {
		const struct console_port_config *pc = &cfg->ports[i];
		struct console_port *p = &c->ports[i + 1];

		snprintf(p->name, sizeof(p->name), "%s", pc->name);    /* length checked above */
		ret = console_port_init(p, c, i + 1, pc->dir == CONSOLE_TO_GUEST ? pc->fd : -1,
					pc->dir == CONSOLE_FROM_GUEST ? pc->fd : -1);
	}
	c->nr_ports = 1 + cfg->nr_ports;
	return ret;
}

int virtio_console_create(const struct console_config *cfg, struct virtio_dev **out)
{
	struct console *c;
	int ret = check_config(cfg);

	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->tty_fd = c->size_fd = c->winch_fd = -1;
	c->output_closed = cfg->output_closed;
	c->opaque = cfg->opaque;
	for (unsigned int i = 0; i < CONSOLE_MAX_PORTS; i++)
		c->ports[i].in_fd = c->ports[i].out_fd = -1;
	ret = init_ports(c, cfg);
	if (ret) {
		console_destroy(&c->dev);
		return ret;
	}
	if (console_tty_make_raw(cfg->in_fd))
		c->tty_fd = cfg->in_fd;
	c->size_fd = isatty(cfg->out_fd) ? cfg->out_fd : isatty(cfg->in_fd) ? cfg->in_fd : -1;
	c->sized = update_size(c);
	if (c->sized)
		c->winch_fd = console_tty_winch_get();
	c->config.max_nr_ports = c->nr_ports;
	c->dev.ops = console_ops[c->sized][cfg->nr_ports > 0];
	c->dev.priv = c;
	c->dev.config = (uint8_t *)&c->config;
	c->dev.config_size = sizeof(c->config);
	*out = &c->dev;
	return 0;
}
