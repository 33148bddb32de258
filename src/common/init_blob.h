/* The static guest init, embedded in the library at build time (see Makefile: init blob). */
#ifndef KRUN_COMMON_INIT_BLOB_H
#define KRUN_COMMON_INIT_BLOB_H

#include <stddef.h>

extern const unsigned char krun_init_blob[];
extern const size_t krun_init_blob_size;

#endif
