/* virtio-console (virtio 1.2 section 5.3): the console port (hvc0) plus named byte-stream ports. */
#ifndef KRUN_DEVICES_CONSOLE_H
#define KRUN_DEVICES_CONSOLE_H

struct virtio_dev;

/* Port 0 (the console) and up to three named ports: queue count 2 * (ports + 1) = 10. */
#define CONSOLE_MAX_PORTS 4
#define CONSOLE_NAME_MAX 64

enum console_dir {
	CONSOLE_TO_GUEST,       /* read the host fd, deliver to the guest; host EOF = guest EOF */
	CONSOLE_FROM_GUEST,     /* receive from the guest, write the host fd */
};

struct console_port_config {
	const char *name;       /* shown in the guest's /sys/class/virtio-ports/<port>/name */
	int fd;
	enum console_dir dir;
};

struct console_config {
	/* The console, port 0 (hvc0): guest input from in_fd, output to out_fd; -1 for none. */
	int in_fd, out_fd;
	/* Named ports 1..nr_ports (VIRTIO_CONSOLE_F_MULTIPORT is offered only when there are some). */
	unsigned int nr_ports;
	struct console_port_config ports[CONSOLE_MAX_PORTS - 1];
	/*
	 * Called once, on the device's loop thread, when the host reader of a named output port
	 * went away (EPIPE). A guest port cannot fail the program's writes (Linux blocks them), so
	 * the owner decides how the run ends. Optional.
	 */
	void (*output_closed)(void *opaque);
	void *opaque;
};

/*
 * All fds stay the caller's: the device works on its own descriptions of them. If in_fd is a
 * terminal it is put in raw mode until the device is destroyed (or the process exits), and
 * its size is the console size. -EINVAL for a bad config (too many ports, long or empty name).
 */
int virtio_console_create(const struct console_config *cfg, struct virtio_dev **out)
	__attribute__((warn_unused_result));

#endif
