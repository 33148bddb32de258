/* A socket file whose listener is gone refuses connections: that is how we tell it is stale. */
#include "util/unixsock.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unixsock_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (!len)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len + 1);
	return 0;
}

bool unixsock_is_stale(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	bool stale;
	int fd;

	if (lstat(path, &st) || !S_ISSOCK(st.st_mode) || unixsock_addr(path, &sa))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	stale = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED;
	close(fd);
	return stale;
}
