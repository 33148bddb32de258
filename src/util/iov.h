/* Copies between flat buffers and iovec arrays, bounded by both sides. */
#ifndef KRUN_UTIL_IOV_H
#define KRUN_UTIL_IOV_H

#include <stddef.h>
#include <sys/uio.h>

size_t iov_length(const struct iovec *iov, unsigned int cnt);
/* Copy up to len bytes starting `offset` bytes into iov; returns bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset, const void *buf, size_t len);
/*
 * Describe bytes [offset, offset+len) of iov as a new iovec array in dst (at most dst_cap entries).
 * Returns the number of entries used; the described length may be shorter if iov or dst run out.
 */
unsigned int iov_slice(const struct iovec *iov, unsigned int cnt, size_t offset, size_t len,
		       struct iovec *dst, unsigned int dst_cap);

#endif
