/* Reads the workload from an OCI runtime config.json (or a Docker-style image config). */
#ifndef KRUN_INIT_OCI_H
#define KRUN_INIT_OCI_H

#include <stddef.h>

#include "config.h"

/*
 * Fills c (freshly config_init'ed) from the JSON text: process.args/env/cwd/user/rlimits and
 * hostname, else Docker-style Entrypoint+Cmd/Env/WorkingDir/User at the top level or under
 * "config". Returns 0 or -errno with *why describing the problem.
 */
int oci_load(struct config *c, const char *text, size_t len, const char **why);

#endif
