/*
 * TSI guest side: DNS. A stub resolver on 127.0.0.1:53 (UDP) forwards each query to the host
 * proxy (KRUN_TSI_OP_DNS, DNS-over-TCP framing), which asks the host's resolver; the guest's
 * /etc/resolv.conf is overlaid (in the guest only) to point at the stub. Queries are answered
 * one at a time over one kept-open connection. TCP queries to the stub are not served: an
 * answer too big for the client's UDP size comes back truncated (TC), header only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "tsi_int.h"

#define STUB_CONF "/run/krun-resolv.conf"
#define DNS_MAX 65535
#define DNS_HDR 12
#define ANSWER_TIMEOUT_S 10

/* Our resolv.conf: the stub, plus the original's search/domain/options lines. */
static int write_conf(const char *dst)
{
	char line[512];
	FILE *in = fopen("/etc/resolv.conf", "re"), *out = fopen(dst, "we");

	if (!out) {
		if (in)
			fclose(in);
		return -1;
	}
	fputs("nameserver 127.0.0.1\n", out);
	while (in && fgets(line, sizeof(line), in))
		if (!strncmp(line, "search", 6) || !strncmp(line, "domain", 6) ||
		    !strncmp(line, "options", 7))
			fputs(line, out);
	if (in)
		fclose(in);
	return fclose(out) ? -1 : 0;
}

static void mkdir_parents(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
}

/*
 * A missing file needs nothing (musl and glibc then ask 127.0.0.1). A symlink into /run
 * (systemd-resolved's) gets its target created on the guest's own /run; a plain file gets
 * ours bind-mounted over it. The host's file is never written.
 */
static void overlay_resolv_conf(void)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (lstat("/etc/resolv.conf", &st))
		return;
	if (S_ISLNK(st.st_mode)) {
		n = readlink("/etc/resolv.conf", target, sizeof(target) - 1);
		if (n <= 0)
			return;
		target[n] = '\0';
		if (!strncmp(target, "../run/", 7))
			memmove(target, target + 2, (size_t)n - 1);
		if (strncmp(target, "/run/", 5) || strstr(target, "/../")) {
			log_debug("tsi: /etc/resolv.conf points at %s; DNS left alone", target);
			return;
		}
		mkdir_parents(target);
		if (write_conf(target))
			log_debug("tsi: cannot write %s: %m", target);
		return;
	}
	if (write_conf(STUB_CONF) || mount(STUB_CONF, "/etc/resolv.conf", NULL, MS_BIND, NULL))
		log_debug("tsi: cannot overlay /etc/resolv.conf: %m");
}

static int open_proxy(void)
{
	struct krun_tsi_request r = { .magic = KRUN_TSI_MAGIC, .version = KRUN_TSI_VERSION,
				      .op = KRUN_TSI_OP_DNS, .type = SOCK_STREAM };
	struct tsi_sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = KRUN_TSI_PORT,
				      .svm_cid = TSI_VMADDR_CID_HOST };
	struct timeval tv = { .tv_sec = ANSWER_TIMEOUT_S };
	struct krun_tsi_response resp;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r) ||
	    recv(fd, &resp, sizeof(resp), MSG_WAITALL) != (ssize_t)sizeof(resp) ||
	    resp.magic != KRUN_TSI_MAGIC || resp.error) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One query over the kept connection; the answer's length, or -1. */
static long ask(int *vfd, const uint8_t *q, size_t qlen, uint8_t *a)
{
	uint8_t len[2] = { (uint8_t)(qlen >> 8), (uint8_t)qlen };
	struct iovec iov[2] = { { len, 2 }, { (void *)q, qlen } };
	size_t alen;

	if (*vfd < 0)
		*vfd = open_proxy();
	if (*vfd < 0)
		return -1;
	if (writev(*vfd, iov, 2) != (ssize_t)(qlen + 2) ||
	    recv(*vfd, len, 2, MSG_WAITALL) != 2)
		goto broken;
	alen = (size_t)len[0] << 8 | len[1];
	if (alen < DNS_HDR || recv(*vfd, a, alen, MSG_WAITALL) != (ssize_t)alen)
		goto broken;
	return (long)alen;
broken:
	close(*vfd);
	*vfd = -1;
	return -1;
}

/* The query's header turned into an answer-less reply: rcode 2 (SERVFAIL) or TC set. */
static size_t header_only(const uint8_t *q, uint8_t *a, bool truncated)
{
	memcpy(a, q, DNS_HDR);
	a[2] = (uint8_t)(0x80 | (q[2] & 0x79) | (truncated ? 0x02 : 0));  /* QR, opcode, RD */
	a[3] = truncated ? 0x80 : 0x82;                                   /* RA; SERVFAIL */
	memset(a + 4, 0, DNS_HDR - 4);
	return DNS_HDR;
}

/* The UDP size the client accepts: 512 unless its query carries an EDNS record (ARCOUNT). */
static size_t udp_limit(const uint8_t *q)
{
	return (q[10] | q[11]) ? 4096 : 512;
}

static void __attribute__((noreturn)) stub_run(int ufd)
{
	static uint8_t q[DNS_MAX], a[DNS_MAX];
	int vfd = -1;

	for (;;) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(ufd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
		long alen;

		if (n < DNS_HDR)
			continue;
		alen = ask(&vfd, q, (size_t)n, a);
		if (alen < 0)
			alen = ask(&vfd, q, (size_t)n, a);  /* once more on a fresh connection */
		if (alen < 0)
			alen = (long)header_only(q, a, false);
		else if ((size_t)alen > udp_limit(q))
			alen = (long)header_only(q, a, true);
		sendto(ufd, a, (size_t)alen, 0, (struct sockaddr *)&from, flen);
	}
}

void tsi_dns_start(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(53),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int ufd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	if (ufd < 0 || bind(ufd, (struct sockaddr *)&sin, sizeof(sin))) {
		log_debug("tsi: no DNS stub: %m");
		if (ufd >= 0)
			close(ufd);
		return;
	}
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		stub_run(ufd);
	}
	close(ufd);
	if (pid < 0)
		log_error("tsi: fork: %m");
	else
		overlay_resolv_conf();
}
