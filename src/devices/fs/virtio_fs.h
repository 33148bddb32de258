/* virtio-fs device (virtio 1.2 section 5.11): request queues feeding the FUSE server. */
#ifndef KRUN_DEVICES_FS_VIRTIO_FS_H
#define KRUN_DEVICES_FS_VIRTIO_FS_H

struct fs;
struct virtio_dev;

#define VIRTIO_FS_TAG_MAX 36

/* The device takes ownership of fs (destroyed with the device). */
int virtio_fs_create(const char *tag, struct fs *fs, unsigned int num_request_queues,
		     struct virtio_dev **out) __attribute__((warn_unused_result));

#endif
