/* Include this instead of libkrun.h in src/api: the krun_* definitions get default visibility. */
#ifndef KRUN_API_API_H
#define KRUN_API_API_H

/* The build hides every symbol (-fvisibility=hidden); the public API must leave the .so. */
#pragma GCC visibility push(default)
#include "libkrun.h"
#pragma GCC visibility pop

/* Upper bound on strings in one argv/envp/rlimit/port/volume array, as upstream. */
#define API_MAX_ARGS 4096

#endif
