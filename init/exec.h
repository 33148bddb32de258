/* The program's side of the fork: session, streams, limits, credentials, exec. */
#ifndef KRUN_INIT_EXEC_H
#define KRUN_INIT_EXEC_H

#include "config.h"

/*
 * Runs in the forked child: never returns. Exit status 127/126 when the program cannot be
 * found/executed (after "<path>: <error>" on its stderr), 1 when its setup fails.
 */
void exec_child(const struct config *c, char *const envp[], const int fds[3])
	__attribute__((noreturn));

#endif
