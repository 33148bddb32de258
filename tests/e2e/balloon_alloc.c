/*
 * Guest program for the footprint bench and the balloon test (static, musl-gcc -static):
 *
 *   balloon_alloc idle                  print "alloc: ready", then sleep until killed
 *   balloon_alloc cycle MIB HOLD_S      allocate and fill MIB MiB, verify, free, wait HOLD_S
 *                                       seconds (free page reporting hands the RAM back), then
 *                                       allocate, fill and verify again
 *   balloc=idle or balloc=cycle,MIB,HOLD_S in the environment (the kernel command line of an
 *   initramfs /init) stands for the arguments.
 *
 * Every phase prints one line ("alloc: touched", "alloc: freed", ...) with its guest uptime so
 * the host can sample the VMM's RSS at the right moments. A canary region stays allocated
 * throughout and is verified after each phase: reporting must never take pages still in use.
 * Run as PID 1 (an initramfs under plain QEMU) without a console it mounts devtmpfs for one.
 * Exit status 0 when every check held, 1 on corruption, 2 on a usage or allocation error (as
 * PID 1 the last line says which, and the VM restarts).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024u * 1024u)
#define CANARY_MIB 8u
#define READY_PAUSE_S 3
#define TOUCHED_PAUSE_S 2
/*
 * Fill and check one qword every 256 bytes (16 per page, at every offset class of a page):
 * reporting works on whole pages, so a page taken while in use shows, and TCG writes the 1 GiB
 * in seconds instead of the half minute a full fill costs.
 */
#define STRIDE_QWORDS 32u

static unsigned int failures;

static double uptime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One unbuffered line per phase: the host polls our output for these. */
static void say(const char *what)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "alloc: %s t=%.3f\n", what, uptime_s());

	if (n > 0 && write(1, line, (size_t)n) < 0)
		return;
}

/* Value of the qword at `index` for a fill seeded with `seed`: unique per position. */
static uint64_t pattern(uint64_t seed, size_t index)
{
	return (seed << 40) ^ (index * 0x9e3779b97f4a7c15ull);
}

static void fill(uint64_t *p, size_t bytes, uint64_t seed)
{
	for (size_t i = 0; i < bytes / 8; i += STRIDE_QWORDS)
		p[i] = pattern(seed, i);
}

static bool holds(const uint64_t *p, size_t bytes, uint64_t seed)
{
	for (size_t i = 0; i < bytes / 8; i += STRIDE_QWORDS)
		if (p[i] != pattern(seed, i))
			return false;
	return true;
}

static void check(bool ok, const char *what)
{
	char line[128];

	snprintf(line, sizeof(line), "%s %s", ok ? "ok" : "FAIL", what);
	say(line);
	failures += !ok;
}

static uint64_t *map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* PID 1 from an initramfs has no fds: give it the console. */
static void pid1_console(void)
{
	int fd;

	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	fd = open("/dev/console", O_RDWR);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static _Noreturn void idle(void)
{
	say("ready");
	for (;;)
		pause();
}

/* One allocation round: fresh anonymous memory must read zero, then hold what we write. */
static uint64_t *alloc_round(size_t bytes, uint64_t seed, const char *name)
{
	uint64_t *p = map(bytes);
	char what[64];

	if (!p)
		return NULL;
	snprintf(what, sizeof(what), "%s: fresh memory reads zero", name);
	check(p[0] == 0 && p[bytes / 8 - 1] == 0, what);
	fill(p, bytes, seed);
	snprintf(what, sizeof(what), "%s: pattern verified", name);
	check(holds(p, bytes, seed), what);
	return p;
}

static int cycle(size_t mib, unsigned int hold_s)
{
	size_t bytes = mib * MIB, canary_bytes = CANARY_MIB * MIB;
	uint64_t *canary = map(canary_bytes), *p;

	if (!canary || mib == 0)
		return 2;
	fill(canary, canary_bytes, 0xca);
	say("ready");
	sleep(READY_PAUSE_S);
	p = alloc_round(bytes, 1, "round 1");
	if (!p)
		return 2;
	say("touched");
	sleep(TOUCHED_PAUSE_S);
	munmap(p, bytes);
	say("freed");
	sleep(hold_s);
	check(holds(canary, canary_bytes, 0xca), "canary intact after reporting");
	p = alloc_round(bytes, 2, "round 2");
	if (!p)
		return 2;
	check(holds(canary, canary_bytes, 0xca), "canary intact after round 2");
	munmap(p, bytes);
	say(failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}

/*
 * As /init the kernel gives us unknown "key=value" parameters as environment; QEMU appends its
 * virtio_mmio.device= entries after any "--", so the arguments come as balloc=MODE[,MIB,HOLD_S].
 */
static int args_from_env(char **argv, int max)
{
	static char buf[64];
	const char *env = getenv("balloc");
	int n = 1;

	if (!env)
		return 1;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ","))
		argv[n++] = tok;
	return n;
}

int main(int argc, char **argv)
{
	char *env_argv[5] = { argv[0] };
	int status = 2;

	if (getpid() == 1 && fcntl(1, F_GETFD) < 0)
		pid1_console();
	if (argc < 2) {
		argc = args_from_env(env_argv, 4);
		argv = env_argv;
	}
	if (argc >= 2 && strcmp(argv[1], "idle") == 0)
		idle();
	else if (argc >= 4 && strcmp(argv[1], "cycle") == 0)
		status = cycle(strtoul(argv[2], NULL, 0), (unsigned int)strtoul(argv[3], NULL, 0));
	else
		fprintf(stderr, "usage: %s idle | cycle MIB HOLD_S\n", argv[0]);
	if (status == 2)
		say("error");
	/* PID 1 must not exit (a panic): restart instead, which ends QEMU under -no-reboot. */
	if (getpid() == 1)
		reboot(RB_AUTOBOOT);
	return status;
}
