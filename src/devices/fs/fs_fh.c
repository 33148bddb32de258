/* The file handle table: FUSE fh values index open fds (with generations), never pointers. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static void fh_free(struct fs *fs, struct fs_fh *h)
{
	close(h->fd);
	pthread_mutex_destroy(&h->dir_lock);
	fs_inode_put(fs, h->inode);
	free(h);
}

/* Takes ownership of fd and of one reference on inode, also on failure. */
int fs_fh_new(struct fs *fs, int fd, struct fs_inode *inode, uint64_t *fh)
{
	struct fs_fh *h = calloc(1, sizeof(*h));
	uint32_t idx;
	int ret;

	if (!h) {
		close(fd);
		fs_inode_put(fs, inode);
		return -ENOMEM;
	}
	h->fd = fd;
	h->refs = 1;
	h->inode = inode;
	pthread_mutex_init(&h->dir_lock, NULL);
	pthread_mutex_lock(&fs->lock);
	ret = fs_table_alloc(&fs->handles, h, &idx);
	if (!ret)
		*fh = fs_table_id(&fs->handles, idx);
	pthread_mutex_unlock(&fs->lock);
	if (ret) {
		fh_free(fs, h);
		return ret;
	}
	return 0;
}

struct fs_fh *fs_fh_get(struct fs *fs, uint64_t fh)
{
	struct fs_fh *h;

	pthread_mutex_lock(&fs->lock);
	h = fs_table_lookup(&fs->handles, fh);
	if (h)
		h->refs++;
	pthread_mutex_unlock(&fs->lock);
	return h;
}

void fs_fh_put(struct fs *fs, struct fs_fh *h)
{
	bool last;

	pthread_mutex_lock(&fs->lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&fs->lock);
	if (last)
		fh_free(fs, h);
}

int fs_fh_release(struct fs *fs, uint64_t fh)
{
	struct fs_fh *h;

	pthread_mutex_lock(&fs->lock);
	h = fs_table_lookup(&fs->handles, fh);
	if (h)
		fs_table_free(&fs->handles, (uint32_t)fh);
	pthread_mutex_unlock(&fs->lock);
	if (!h)
		return -EBADF;
	fs_fh_put(fs, h);   /* in-flight requests keep the fd open until they finish */
	return 0;
}

void fs_fh_release_all(struct fs *fs)
{
	for (uint32_t i = 1;; i++) {
		uint64_t id = 0;
		bool end;

		pthread_mutex_lock(&fs->lock);
		end = i >= fs->handles.used;
		if (!end && fs->handles.slots[i].ptr)
			id = fs_table_id(&fs->handles, i);
		pthread_mutex_unlock(&fs->lock);
		if (end)
			break;
		if (id)
			(void)fs_fh_release(fs, id);
	}
}

void fs_fh_table_fini(struct fs *fs)
{
	for (uint32_t i = 1; fs->handles.slots && i < fs->handles.used; i++) {
		struct fs_fh *h = fs->handles.slots[i].ptr;
		if (h)
			fh_free(fs, h);
	}
	fs_table_fini(&fs->handles);
}
