/*
 * TSI guest side: what an impersonated socket looks like to the program. getpeername and
 * getsockname answer with the inet addresses (the vsock ones would surprise it); TCP/IP level
 * setsockopt (TCP_NODELAY, IP_TOS...) succeeds without effect: the host socket is the proxy's.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsi_int.h"

/*
 * Keyed by the vsock socket's inode (sockfs numbers are not reused soon). An entry outlives
 * its socket (we cannot see the program's close), so the table is a ring: past
 * TSI_MAX_NAMES live impersonated sockets the oldest fall back to their vsock names.
 */
struct tsi_name {
	ino_t ino;
	socklen_t peer_len, local_len;
	struct sockaddr_storage peer, local;
};

static struct tsi_name names[TSI_MAX_NAMES];
static unsigned int next_name;

static ino_t inode_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

void tsi_names_add(int vfd, const struct sockaddr_storage *peer, socklen_t peer_len,
		   const struct sockaddr_storage *local, socklen_t local_len)
{
	ino_t ino = inode_of(vfd);
	struct tsi_name *nm = NULL;

	if (!ino)
		return;
	for (unsigned int i = 0; i < TSI_MAX_NAMES && !nm; i++)
		if (names[i].ino == ino)
			nm = &names[i];
	if (!nm) {
		nm = &names[next_name];
		next_name = (next_name + 1) % TSI_MAX_NAMES;
	}
	*nm = (struct tsi_name){ .ino = ino, .peer_len = peer_len, .local_len = local_len,
				 .peer = *peer, .local = *local };
}

/* Our record for the program's fd, if it is one of our vsock sockets. */
static const struct tsi_name *lookup(const struct tsi_target *t, int fd)
{
	int sfd = tsi_target_getfd(t, fd), domain = -1;
	socklen_t len = sizeof(domain);
	const struct tsi_name *nm = NULL;
	ino_t ino;

	if (sfd < 0)
		return NULL;
	if (getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_VSOCK &&
	    (ino = inode_of(sfd)) != 0)
		for (unsigned int i = 0; i < TSI_MAX_NAMES && !nm; i++)
			if (names[i].ino == ino)
				nm = &names[i];
	close(sfd);
	return nm;
}

/* getpeername/getsockname semantics: truncate to *len, then report the full length. */
static int copy_name(const struct tsi_target *t, uint64_t addr, uint64_t lenp,
		     const struct sockaddr_storage *ss, socklen_t actual)
{
	int len;

	if (tsi_target_read(t, lenp, &len, sizeof(len)))
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	if (tsi_target_write(t, addr, ss, (size_t)len < actual ? (size_t)len : actual))
		return -EFAULT;
	len = (int)actual;
	return tsi_target_write(t, lenp, &len, sizeof(len));
}

void tsi_names_notif(int listener, const struct tsi_notif *n)
{
	const struct tsi_name *nm;
	struct tsi_target t;
	int ret;

	if (tsi_target_open(&t, listener, n)) {
		tsi_reply_continue(listener, n->id);
		return;
	}
	nm = lookup(&t, (int)n->data.args[0]);
	if (!nm)
		tsi_reply_continue(listener, n->id);
	else if (n->data.nr == SYS_setsockopt)
		tsi_reply(listener, n->id, 0);
	else {
		bool peer = n->data.nr == SYS_getpeername;
		ret = copy_name(&t, n->data.args[1], n->data.args[2], peer ? &nm->peer : &nm->local,
				peer ? nm->peer_len : nm->local_len);
		tsi_reply(listener, n->id, ret);
	}
	tsi_target_close(&t);
}
