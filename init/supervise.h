/* PID 1 duties: run the program, forward signals, reap everything, stop the rest. */
#ifndef KRUN_INIT_SUPERVISE_H
#define KRUN_INIT_SUPERVISE_H

#include "config.h"

/* Forks and execs the program, waits for it; returns its status (exit code or 128+signal). */
int supervise_run(const struct config *c, char *const envp[], const int fds[3]);
/* After the program: SIGTERM to every other process, a short grace, then SIGKILL; reaps them. */
void supervise_stop_all(void);

#endif
