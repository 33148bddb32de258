/* Terminal handling for the console: raw mode with a restore on every exit path, and SIGWINCH. */
#ifndef KRUN_DEVICES_CONSOLE_TTY_H
#define KRUN_DEVICES_CONSOLE_TTY_H

#include <stdbool.h>
#include <stdint.h>

/* Put fd in raw mode (if it is a terminal); restored by console_tty_restore or at exit. */
bool console_tty_make_raw(int fd);
void console_tty_restore(int fd);
/* An eventfd that becomes readable on SIGWINCH, or -errno; release with console_tty_winch_put. */
int console_tty_winch_get(void);
void console_tty_winch_put(int fd);
/* Terminal size of fd; false when unknown. */
bool console_tty_size(int fd, uint16_t *cols, uint16_t *rows);

#endif
