/* virtio-console (virtio 1.2 section 5.3): one port between host fds and the guest's hvc0. */
#ifndef KRUN_DEVICES_CONSOLE_H
#define KRUN_DEVICES_CONSOLE_H

struct virtio_dev;

/*
 * Guest input from in_fd (-1: none), guest output to out_fd. The fds stay the caller's (the
 * device works on its own descriptions of them). If in_fd is a terminal it is put in raw mode
 * until the device is destroyed (or the process exits), and its size is the console size.
 */
int virtio_console_create(int in_fd, int out_fd, struct virtio_dev **out)
	__attribute__((warn_unused_result));

#endif
