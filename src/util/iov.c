/* iovec helpers shared by every device that moves bytes in and out of guest buffers. */
#include "util/iov.h"

#include <string.h>

size_t iov_length(const struct iovec *iov, unsigned int cnt)
{
	size_t total = 0;

	for (unsigned int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	return total;
}

static size_t copy_iov(const struct iovec *iov, unsigned int cnt, size_t offset, void *buf,
		       size_t len, int to_iov)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		size_t seg = iov[i].iov_len, n;
		if (offset >= seg) {
			offset -= seg;
			continue;
		}
		n = seg - offset;
		if (n > len - done)
			n = len - done;
		if (to_iov)
			memcpy((char *)iov[i].iov_base + offset, (char *)buf + done, n);
		else
			memcpy((char *)buf + done, (char *)iov[i].iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset, void *buf, size_t len)
{
	return copy_iov(iov, cnt, offset, buf, len, 0);
}

size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset, const void *buf, size_t len)
{
	return copy_iov(iov, cnt, offset, (void *)buf, len, 1);
}

unsigned int iov_slice(const struct iovec *iov, unsigned int cnt, size_t offset, size_t len,
		       struct iovec *dst, unsigned int dst_cap)
{
	unsigned int used = 0;

	for (unsigned int i = 0; i < cnt && len > 0 && used < dst_cap; i++) {
		size_t seg = iov[i].iov_len, n;
		if (offset >= seg) {
			offset -= seg;
			continue;
		}
		n = seg - offset;
		if (n > len)
			n = len;
		dst[used].iov_base = (char *)iov[i].iov_base + offset;
		dst[used].iov_len = n;
		used++;
		len -= n;
		offset = 0;
	}
	return used;
}
