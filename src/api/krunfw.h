/* libkrunfw.so.5, the bundled guest kernel: found and loaded once per process. */
#ifndef KRUN_API_KRUNFW_H
#define KRUN_API_KRUNFW_H

#include "vmm/vmm.h"

#define KRUNFW_SONAME "libkrunfw.so.5"

/*
 * Loads the library if not loaded yet: $KRUN_LIBKRUNFW (a full path), then the dynamic
 * linker's search path, then the directory libkrun.so was loaded from. 0 or -ENOENT.
 */
int krunfw_load(void);
/* Fills a VMM_KERNEL_FLAT kernel from the loaded library; -ENOENT if it is not loaded. */
int krunfw_kernel(struct vmm_kernel *k);

#endif
