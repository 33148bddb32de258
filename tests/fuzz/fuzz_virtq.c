/* libFuzzer target: the split-ring parser against arbitrary ring contents written by a guest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtq.h"

#define RAM_GPA 0x10000ull
#define RAM_SIZE 0x10000u

static struct virtq_elem elem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t ram[RAM_SIZE];
	struct gmem mem;
	struct virtq vq = { 0 };

	if (size < 4)
		return 0;
	memset(ram, 0, sizeof(ram));
	/* First bytes pick the queue shape; the rest is guest RAM (rings + buffers). */
	vq.size = (uint16_t)(1 + (data[0] % 64));
	vq.indirect = data[1] & 1;
	vq.event_idx = data[1] & 2;
	memcpy(ram, data + 2, size - 2 < RAM_SIZE ? size - 2 : RAM_SIZE);
	vq.desc_gpa = RAM_GPA;
	vq.avail_gpa = RAM_GPA + 0x1000;
	vq.used_gpa = RAM_GPA + 0x2000;
	gmem_init(&mem);
	if (gmem_add_region(&mem, RAM_GPA, RAM_SIZE, ram, RAM_GPA) || virtq_activate(&vq, &mem))
		return 0;
	for (int i = 0; i < 256; i++) {
		int ret = virtq_pop(&vq, &elem);
		if (ret <= 0)
			break;
		for (unsigned int k = 0; k < (unsigned int)elem.out_num + elem.in_num; k++) {
			/* Every returned buffer must lie inside guest RAM. */
			uint8_t *p = elem.iov[k].iov_base;
			if (p < ram || p + elem.iov[k].iov_len > ram + RAM_SIZE)
				abort();
		}
		virtq_push(&vq, elem.head, 0);
		(void)virtq_should_signal(&vq);
	}
	return 0;
}
