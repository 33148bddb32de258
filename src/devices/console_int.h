/* virtio-console internals shared by the device core, its ports and the control queue. */
#ifndef KRUN_DEVICES_CONSOLE_INT_H
#define KRUN_DEVICES_CONSOLE_INT_H

#include <linux/virtio_console.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "devices/console.h"
#include "virtio/device.h"

/* 5.3.2: port 0 uses queues 0/1, the control queues are 2/3, port N uses 2N+2/2N+3. */
#define CONSOLE_CTRL_RXQ 2
#define CONSOLE_CTRL_TXQ 3

/* Control messages the device still owes the driver for one port (sent in this order). */
enum {
	CONSOLE_SEND_ADD = 1u << 0,
	CONSOLE_SEND_CONSOLE = 1u << 1,
	CONSOLE_SEND_RESIZE = 1u << 2,
	CONSOLE_SEND_OPEN = 1u << 3,
	CONSOLE_SEND_NAME = 1u << 4,
};

struct console;

struct console_port {
	struct console *c;
	unsigned int id;
	char name[CONSOLE_NAME_MAX];
	int in_fd, out_fd;          /* our own descriptions of the caller's fds, or -1 */
	bool in_pollable, in_watched, in_eof, in_sock;
	bool out_watched, out_dead, out_sock;
	bool tx_pending;            /* tx holds a popped chain written up to tx_off */
	size_t tx_off;
	bool guest_ready, guest_open;   /* from the driver's PORT_READY / PORT_OPEN */
	unsigned int send;          /* CONSOLE_SEND_* bits */
	struct virtq_elem tx, rx;
};

struct console {
	struct virtio_dev dev;
	struct virtio_console_config config;
	unsigned int nr_ports;      /* including port 0 */
	bool multiport;             /* VIRTIO_CONSOLE_F_MULTIPORT negotiated */
	int tty_fd;                 /* caller's terminal we put in raw mode, or -1 */
	int size_fd;                /* terminal whose size we report, or -1 */
	int winch_fd;
	bool sized;
	struct virtq_elem ctrl;
	void (*output_closed)(void *opaque);
	void *opaque;
	struct console_port ports[CONSOLE_MAX_PORTS];
};

static inline unsigned int console_rxq(unsigned int id)
{
	return id == 0 ? 0 : 2 * id + 2;
}

static inline unsigned int console_txq(unsigned int id)
{
	return console_rxq(id) + 1;
}

/* console_port.c: the data path of one port. */
int console_port_init(struct console_port *p, struct console *c, unsigned int id, int in_fd, int out_fd)
	__attribute__((warn_unused_result));
void console_port_close(struct console_port *p);
/* Read host input into the port's receive queue while the guest can take it. */
void console_port_start_input(struct console_port *p);
void console_port_stop_input(struct console_port *p);
/* Write the port's transmit queue to the host fd (stops while the fd is full). */
void console_port_process_tx(struct console_port *p);
void console_port_reset(struct console_port *p);
/* Host end usable: the PORT_OPEN value the driver should see (5.3.6.2). */
bool console_port_host_connected(const struct console_port *p);
/* writev without dying of SIGPIPE; -1 and errno on failure. */
ssize_t console_port_write(struct console_port *p, const struct iovec *iov, int cnt);

/* console_ctrl.c: the control queues (5.3.6.2). */
void console_ctrl_process_tx(struct console *c);
/* Send what the ports owe the driver, as far as receive buffers last. */
void console_ctrl_flush(struct console *c);
void console_ctrl_queue(struct console_port *p, unsigned int what);

#endif
