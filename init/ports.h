/* The program's standard streams: named virtio-console ports, else the console. */
#ifndef KRUN_INIT_PORTS_H
#define KRUN_INIT_PORTS_H

/* fds[i] is an open port for stream i (0..2), or -1 to keep the console. Never fails. */
void ports_open(int fds[3]);

#endif
