/* The krun_* configuration API and the launch spec, without KVM: validation and snapshots. */
#include "harness.h"

#include "api/launch_priv.h"
#include "common/krun_init.h"
#include "libkrun.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char tmp[256];       /* canonical temp dir */
static char root_dir[300];  /* tmp/root, a directory */
static char vol_dir[300];   /* tmp/vol, a directory */
static char a_file[300];    /* tmp/file, a regular file */
static char missing[300];   /* tmp/missing, absent */

static void setup_tmp(void)
{
	char templ[] = "/tmp/krun_test_api_XXXXXX", *canon;
	int fd;

	/* Canonical, because the library stores canonical paths. */
	if (!mkdtemp(templ) || !(canon = realpath(templ, NULL)) || strlen(canon) >= sizeof(tmp))
		abort();
	strcpy(tmp, canon);
	free(canon);
	snprintf(root_dir, sizeof(root_dir), "%s/root", tmp);
	snprintf(vol_dir, sizeof(vol_dir), "%s/vol", tmp);
	snprintf(a_file, sizeof(a_file), "%s/file", tmp);
	snprintf(missing, sizeof(missing), "%s/missing", tmp);
	fd = open(a_file, O_CREAT | O_WRONLY, 0644);
	if (mkdir(root_dir, 0755) || mkdir(vol_dir, 0755) || fd < 0)
		abort();
	close(fd);
}

static void cleanup_tmp(void)
{
	unlink(a_file);
	rmdir(root_dir);
	rmdir(vol_dir);
	rmdir(tmp);
}

/* A context with a root, so launch_spec_from_ctx can snapshot it. */
static int new_ctx(void)
{
	int id = krun_create_ctx();

	if (id >= 0 && krun_set_root((uint32_t)id, root_dir) != 0)
		return -1;
	return id;
}

static struct launch_spec *spec_of(int id)
{
	struct launch_spec *spec = NULL;

	if (launch_spec_from_ctx((uint32_t)id, &spec) != 0)
		return NULL;
	return spec;
}

/* Records are "key=value\0"; returns how many have this key, *nth set to the idx-th value. */
static int rec_find(const struct launch_spec *spec, const char *key, int idx, const char **nth)
{
	const char *p = spec->init_config, *end = p + spec->init_config_len;
	size_t klen = strlen(key);
	int count = 0;

	*nth = NULL;
	while (p && p < end) {
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			if (count == idx)
				*nth = p + klen + 1;
			count++;
		}
		p += strlen(p) + 1;
	}
	return count;
}

static int rec_count(const struct launch_spec *spec, const char *key)
{
	const char *unused;

	return rec_find(spec, key, 0, &unused);
}

static const char *rec_get(const struct launch_spec *spec, const char *key, int idx)
{
	const char *v;

	rec_find(spec, key, idx, &v);
	return v ? v : "(none)";
}

/* Every record is NUL-terminated and has a key. */
static int records_well_formed(const struct launch_spec *spec)
{
	const char *p = spec->init_config;
	size_t off = 0, len;

	while (off < spec->init_config_len) {
		len = strnlen(p + off, spec->init_config_len - off);
		if (off + len == spec->init_config_len || !memchr(p + off, '=', len) || p[off] == '=')
			return 0;
		off += len + 1;
	}
	return 1;
}

static void test_create_free_use(void)
{
	int a = krun_create_ctx(), b = krun_create_ctx();

	CHECK(a >= 0 && b >= 0 && a != b);
	CHECK_EQ(krun_free_ctx((uint32_t)a), 0);
	CHECK_EQ(krun_free_ctx((uint32_t)a), -ENOENT);
	CHECK_EQ(krun_set_vm_config((uint32_t)a, 1, 64), -ENOENT);
	CHECK_EQ(krun_set_root((uint32_t)a, root_dir), -ENOENT);
	CHECK_EQ(krun_set_workdir((uint32_t)a, "/"), -ENOENT);
	/* IDs are not reused: a new context never answers to a freed ID. */
	CHECK(krun_create_ctx() != a);
	CHECK_EQ(krun_free_ctx((uint32_t)b), 0);
}

static void test_unknown_ctx(void)
{
	const char *none[] = { NULL };
	uint32_t bad = 0x7ffffff0;
	struct launch_spec *spec;

	CHECK_EQ(krun_free_ctx(bad), -ENOENT);
	CHECK_EQ(krun_set_vm_config(bad, 1, 64), -ENOENT);
	CHECK_EQ(krun_set_root(bad, root_dir), -ENOENT);
	CHECK_EQ(krun_add_virtiofs(bad, "t", vol_dir), -ENOENT);
	CHECK_EQ(krun_set_mapped_volumes(bad, none), -ENOENT);
	CHECK_EQ(krun_set_port_map(bad, none), -ENOENT);
	CHECK_EQ(krun_set_rlimits(bad, none), -ENOENT);
	CHECK_EQ(krun_set_exec(bad, "/bin/sh", none, none), -ENOENT);
	CHECK_EQ(krun_set_env(bad, none), -ENOENT);
	CHECK_EQ(krun_set_kernel(bad, a_file, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -ENOENT);
	CHECK_EQ(krun_setuid(bad, 1), -ENOENT);
	CHECK_EQ(krun_setgid(bad, 1), -ENOENT);
	CHECK_EQ(krun_set_console_output(bad, "/tmp/x"), -ENOENT);
	CHECK_EQ(krun_get_shutdown_eventfd(bad), -ENOENT);
	CHECK_EQ(krun_split_irqchip(bad, false), -ENOENT);
	CHECK_EQ(krun_set_gpu_options(bad, 0), -ENOENT);
	CHECK_EQ(krun_add_vsock_port(bad, 5, "/tmp/s"), -ENOENT);
	CHECK_EQ(launch_spec_from_ctx(bad, &spec), -ENOENT);
}

static void test_vm_config(void)
{
	int id = new_ctx();
	struct launch_spec *spec;

	CHECK(id >= 0);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 2, 64), 0);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 0, 512), -EINVAL);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 17, 512), -EINVAL);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 255, 512), -EINVAL);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 1, 0), -EINVAL);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 1, 31), -EINVAL);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 1, UINT32_MAX), -EINVAL);
	spec = spec_of(id);
	CHECK(spec);
	/* Failed calls kept the last good values. */
	CHECK_EQ(spec->vcpus, 2);
	CHECK_EQ(spec->ram_bytes, 64ull << 20);
	launch_spec_free(spec);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 16, 32), 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->vcpus, 16);
	CHECK_EQ(spec->ram_bytes, 32ull << 20);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_root(void)
{
	int id = krun_create_ctx();
	struct launch_spec *spec;
	char rel[400];

	CHECK(id >= 0);
	CHECK_EQ(launch_spec_from_ctx((uint32_t)id, &spec), -EINVAL); /* no root yet */
	CHECK_EQ(krun_set_root((uint32_t)id, NULL), -EINVAL);
	CHECK_EQ(krun_set_root((uint32_t)id, ""), -EINVAL);
	CHECK_EQ(krun_set_root((uint32_t)id, missing), -ENOENT);
	CHECK_EQ(krun_set_root((uint32_t)id, a_file), -ENOTDIR);
	CHECK_EQ(launch_spec_from_ctx((uint32_t)id, &spec), -EINVAL); /* failures set nothing */
	/* A non-canonical spelling is stored canonical. */
	snprintf(rel, sizeof(rel), "%s/../root/.", root_dir);
	CHECK_EQ(krun_set_root((uint32_t)id, rel), 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->nr_shares, 1);
	CHECK(!strcmp(spec->shares[0].tag, KRUN_ROOT_TAG));
	CHECK(!strcmp(spec->shares[0].host_path, root_dir));
	CHECK(!spec->shares[0].guest_path);
	CHECK(!spec->shares[0].read_only);
	CHECK(!strcmp(spec->cmdline, KRUN_BASE_CMDLINE));
	CHECK_EQ(spec->exit_status, -1);
	CHECK_EQ(spec->shutdown_eventfd, -1);
	CHECK(!spec->port_map && !spec->console_output);
	/* Nothing configured: only the host clock record ("clock=<seconds>\0"). */
	CHECK(spec->init_config_len > 6 && !memcmp(spec->init_config, "clock=", 6));
	CHECK_EQ(strlen(spec->init_config) + 1, spec->init_config_len);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_virtiofs(void)
{
	char tag36[37], tag37[38];
	int id = krun_create_ctx();
	struct launch_spec *spec;

	CHECK(id >= 0);
	memset(tag36, 'a', 36);
	tag36[36] = 0;
	memset(tag37, 'b', 37);
	tag37[37] = 0;
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, tag37, vol_dir), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "", vol_dir), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, NULL, vol_dir), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "data", NULL), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "data", missing), -ENOENT);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "data", a_file), -ENOTDIR);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, KRUN_ROOT_TAG, vol_dir), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, tag36, vol_dir), 0);
	CHECK_EQ(krun_add_virtiofs2((uint32_t)id, "data", vol_dir, 1 << 20), 0);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "data", vol_dir), -EEXIST);
	/* The root tag makes the share the root, read-only here. */
	CHECK_EQ(krun_add_virtiofs3((uint32_t)id, KRUN_FS_ROOT_TAG, root_dir, 0, true), 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->nr_shares, 3);
	CHECK(!strcmp(spec->shares[0].tag, KRUN_ROOT_TAG));
	CHECK(!strcmp(spec->shares[0].host_path, root_dir));
	CHECK(spec->shares[0].read_only);
	CHECK(!strcmp(spec->shares[1].tag, tag36));
	CHECK(!strcmp(spec->shares[2].tag, "data"));
	CHECK(!strcmp(spec->shares[2].host_path, vol_dir));
	CHECK(!spec->shares[2].guest_path && !spec->shares[2].read_only);
	CHECK_EQ(rec_count(spec, "mount"), 0);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_mapped_volumes(void)
{
	char good[400], to_root[400], rel_guest[400];
	char bad_missing[400], bad_file[400];
	const char *v_good[] = { good, NULL };
	int id = new_ctx();
	struct launch_spec *spec;

	CHECK(id >= 0);
	snprintf(good, sizeof(good), "%s:/work", vol_dir);
	snprintf(to_root, sizeof(to_root), "%s:/", vol_dir);
	snprintf(rel_guest, sizeof(rel_guest), "%s:work", vol_dir);
	snprintf(bad_missing, sizeof(bad_missing), "%s:/x", missing);
	snprintf(bad_file, sizeof(bad_file), "%s:/x", a_file);
	CHECK_EQ(krun_set_mapped_volumes((uint32_t)id, NULL), -EINVAL);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "krunvol0", vol_dir), 0);
	CHECK_EQ(krun_set_mapped_volumes((uint32_t)id, v_good), 0);
	{
		const char *bad[][3] = {
			{ "relative:/x", NULL }, { "/tmp", NULL }, { rel_guest, NULL },
			{ to_root, NULL }, { bad_missing, NULL }, { bad_file, NULL },
			{ good, "nocolon", NULL },
		};
		const int want[] = { -EINVAL, -EINVAL, -EINVAL, -EINVAL, -ENOENT, -ENOTDIR, -EINVAL };
		size_t i;

		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			CHECK_EQ(krun_set_mapped_volumes((uint32_t)id, bad[i]), want[i]);
	}
	spec = spec_of(id);
	CHECK(spec);
	/* Root, the user's "krunvol0", then the volume under a generated tag that avoids it. */
	CHECK_EQ(spec->nr_shares, 3);
	CHECK(!strcmp(spec->shares[2].tag, "krunvol1"));
	CHECK(!strcmp(spec->shares[2].host_path, vol_dir));
	CHECK(!strcmp(spec->shares[2].guest_path, "/work"));
	CHECK_EQ(rec_count(spec, "mount"), 1);
	CHECK(!strcmp(rec_get(spec, "mount", 0), "krunvol1:/work"));
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_port_map(void)
{
	const char *good[] = { "8080:80", "18000:8000", NULL };
	const char *empty[] = { NULL };
	const char *bad[][3] = {
		{ "80", NULL }, { "0:80", NULL }, { "80:0", NULL }, { "65536:1", NULL },
		{ "a:b", NULL }, { "80:80:80", NULL }, { "-1:5", NULL }, { " 80:80", NULL },
		{ ":80", NULL }, { "8080:80", "8080:81", NULL }, { "8080:80", "8081:80", NULL },
	};
	int id = new_ctx();
	struct launch_spec *spec;
	size_t i;

	CHECK(id >= 0);
	CHECK_EQ(krun_set_port_map((uint32_t)id, good), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(krun_set_port_map((uint32_t)id, bad[i]), -EINVAL);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->nr_port_map, 2);
	CHECK(!strcmp(spec->port_map[0], "8080:80") && !strcmp(spec->port_map[1], "18000:8000"));
	launch_spec_free(spec);
	/* Empty array: no port exposed, but a map is present; NULL: no map at all. */
	CHECK_EQ(krun_set_port_map((uint32_t)id, empty), 0);
	spec = spec_of(id);
	CHECK(spec && spec->port_map && spec->nr_port_map == 0);
	launch_spec_free(spec);
	CHECK_EQ(krun_set_port_map((uint32_t)id, NULL), 0);
	spec = spec_of(id);
	CHECK(spec && !spec->port_map && spec->nr_port_map == 0);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_rlimits(void)
{
	const char *good[] = { "6=4096:8192", "NOFILE=10:20", "RLIMIT_CORE=0:RLIM_INFINITY",
			       "15=1:unlimited", NULL };
	const char *bad[] = { "6=", "x=1:2", "6=5:4", "16=1:2", "6=1:", "=1:2", "6=-1:5",
			      "6=1:2:3", "6", "NOFILE =1:2", "6=1:99999999999999999999999", "6=+1:2" };
	int id = new_ctx();
	struct launch_spec *spec;
	size_t i;

	CHECK(id >= 0);
	CHECK_EQ(krun_set_rlimits((uint32_t)id, NULL), -EINVAL);
	CHECK_EQ(krun_set_rlimits((uint32_t)id, good), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *one[] = { "7=1:2", bad[i], NULL };

		CHECK_EQ(krun_set_rlimits((uint32_t)id, one), -EINVAL);
	}
	spec = spec_of(id);
	CHECK(spec);
	CHECK(records_well_formed(spec));
	CHECK_EQ(rec_count(spec, "rlimit"), 4);
	CHECK(!strcmp(rec_get(spec, "rlimit", 0), "6=4096:8192"));
	CHECK(!strcmp(rec_get(spec, "rlimit", 1), "7=10:20"));
	CHECK(!strcmp(rec_get(spec, "rlimit", 2), "4=0:18446744073709551615"));
	CHECK(!strcmp(rec_get(spec, "rlimit", 3), "15=1:18446744073709551615"));
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_exec_records(void)
{
	const char *args[] = { "-c", "echo \"a b\" 'c' $X", "", "x=y", NULL };
	const char *env[] = { "TEST=works", "EMPTY=", "SPACES=a b  c", NULL };
	const char *bad_env1[] = { "OK=1", "NOEQUALS", NULL };
	const char *bad_env2[] = { "=x", NULL };
	int id = new_ctx();
	struct launch_spec *spec;

	CHECK(id >= 0);
	CHECK_EQ(krun_set_exec((uint32_t)id, NULL, args, env), -EINVAL);
	CHECK_EQ(krun_set_exec((uint32_t)id, "", args, env), -EINVAL);
	CHECK_EQ(krun_set_exec((uint32_t)id, "/bin/sh", args, env), 0);
	CHECK_EQ(krun_set_exec((uint32_t)id, "/bin/false", NULL, bad_env1), -EINVAL);
	CHECK_EQ(krun_set_exec((uint32_t)id, "/bin/false", NULL, bad_env2), -EINVAL);
	CHECK_EQ(krun_set_env((uint32_t)id, bad_env1), -EINVAL);
	CHECK_EQ(krun_set_workdir((uint32_t)id, NULL), -EINVAL);
	CHECK_EQ(krun_set_workdir((uint32_t)id, ""), -EINVAL);
	CHECK_EQ(krun_set_workdir((uint32_t)id, "relative"), -EINVAL);
	CHECK_EQ(krun_set_workdir((uint32_t)id, "/srv/app dir"), 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK(records_well_formed(spec));
	CHECK_EQ(rec_count(spec, "exec"), 1);
	CHECK(!strcmp(rec_get(spec, "exec", 0), "/bin/sh"));
	CHECK_EQ(rec_count(spec, "arg"), 4);
	CHECK(!strcmp(rec_get(spec, "arg", 0), "-c"));
	CHECK(!strcmp(rec_get(spec, "arg", 1), "echo \"a b\" 'c' $X"));
	CHECK(!strcmp(rec_get(spec, "arg", 2), ""));
	CHECK(!strcmp(rec_get(spec, "arg", 3), "x=y"));
	CHECK_EQ(rec_count(spec, "env"), 3);
	CHECK(!strcmp(rec_get(spec, "env", 0), "TEST=works"));
	CHECK(!strcmp(rec_get(spec, "env", 1), "EMPTY="));
	CHECK(!strcmp(rec_get(spec, "env", 2), "SPACES=a b  c"));
	CHECK_EQ(rec_count(spec, "workdir"), 1);
	CHECK(!strcmp(rec_get(spec, "workdir", 0), "/srv/app dir"));
	CHECK_EQ(rec_count(spec, "uid") + rec_count(spec, "gid") + rec_count(spec, "mount"), 0);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_env_inherit(void)
{
	const char *env[] = { "ONLY=1", NULL };
	int id = new_ctx(), n = 0, i, found = -1;
	struct launch_spec *spec;

	CHECK(id >= 0);
	setenv("KRUN_TEST_INHERIT", "at-config", 1);
	CHECK_EQ(krun_set_exec((uint32_t)id, "/bin/env", NULL, NULL), 0);
	/* Inherited when the spec is made (krun_start_enter), not when configured. */
	setenv("KRUN_TEST_INHERIT", "at-start", 1);
	spec = spec_of(id);
	CHECK(spec);
	while (environ[n])
		n++;
	CHECK_EQ(rec_count(spec, "env"), n);
	CHECK_EQ(rec_count(spec, "arg"), 0);
	for (i = 0; i < n; i++)
		if (!strcmp(rec_get(spec, "env", i), "KRUN_TEST_INHERIT=at-start"))
			found = i;
	CHECK(found >= 0);
	launch_spec_free(spec);
	/* krun_set_env replaces the environment; NULL goes back to inheriting. */
	CHECK_EQ(krun_set_env((uint32_t)id, env), 0);
	spec = spec_of(id);
	CHECK(spec && rec_count(spec, "env") == 1 && !strcmp(rec_get(spec, "env", 0), "ONLY=1"));
	CHECK(!strcmp(rec_get(spec, "exec", 0), "/bin/env"));
	launch_spec_free(spec);
	CHECK_EQ(krun_set_env((uint32_t)id, NULL), 0);
	spec = spec_of(id);
	CHECK(spec && rec_count(spec, "env") == n);
	launch_spec_free(spec);
	unsetenv("KRUN_TEST_INHERIT");
	krun_free_ctx((uint32_t)id);
}

static void test_kernel(void)
{
	int id = new_ctx();
	struct launch_spec *spec;
	char long_cmdline[2100];

	CHECK(id >= 0);
	memset(long_cmdline, 'x', sizeof(long_cmdline) - 1);
	long_cmdline[sizeof(long_cmdline) - 1] = 0;
	CHECK_EQ(krun_set_kernel((uint32_t)id, NULL, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
	CHECK_EQ(krun_set_kernel((uint32_t)id, missing, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -ENOENT);
	CHECK_EQ(krun_set_kernel((uint32_t)id, root_dir, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), -EINVAL);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_PE_GZ, NULL, NULL), -ENOTSUP);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_IMAGE_ZSTD, NULL, NULL),
		 -ENOTSUP);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, 6, NULL, NULL), -EINVAL);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_ELF, missing, NULL), -ENOENT);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_ELF, NULL, long_cmdline),
		 -EINVAL);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->kernel.source, VMM_KERNEL_FLAT); /* nothing set: the bundled kernel */
	CHECK(!strcmp(spec->cmdline, KRUN_BASE_CMDLINE));
	launch_spec_free(spec);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_RAW, a_file, "console=hvc0"),
		 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(spec->kernel.source, VMM_KERNEL_FILE);
	CHECK_EQ(spec->kernel.format, KRUN_KERNEL_FORMAT_RAW);
	CHECK(spec->kernel.path && !strcmp(spec->kernel.path, a_file));
	CHECK(spec->kernel.initrd_path && !strcmp(spec->kernel.initrd_path, a_file));
	CHECK(!strcmp(spec->cmdline, "console=hvc0"));
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

static void test_console_and_eventfd(void)
{
	int id = new_ctx(), efd, efd2;
	struct launch_spec *spec;
	uint64_t one = 1, got = 0;

	CHECK(id >= 0);
	CHECK_EQ(krun_set_console_output((uint32_t)id, NULL), -EINVAL);
	CHECK_EQ(krun_set_console_output((uint32_t)id, ""), -EINVAL);
	CHECK_EQ(krun_set_console_output((uint32_t)id, "/tmp/console.log"), 0);
	CHECK_EQ(krun_set_console_output((uint32_t)id, "/tmp/other.log"), -EINVAL);
	efd = krun_get_shutdown_eventfd((uint32_t)id);
	CHECK(efd >= 0);
	efd2 = krun_get_shutdown_eventfd((uint32_t)id);
	CHECK_EQ(efd2, efd);
	spec = spec_of(id);
	CHECK(spec);
	CHECK(!strcmp(spec->console_output, "/tmp/console.log"));
	/* The spec holds its own descriptor for the same eventfd. */
	CHECK(spec->shutdown_eventfd >= 0 && spec->shutdown_eventfd != efd);
	CHECK_EQ(write(efd, &one, sizeof(one)), sizeof(one));
	CHECK_EQ(read(spec->shutdown_eventfd, &got, sizeof(got)), sizeof(got));
	CHECK_EQ(got, 1);
	CHECK_EQ(krun_free_ctx((uint32_t)id), 0);
	CHECK(fcntl(efd, F_GETFD) < 0 && errno == EBADF);
	CHECK(fcntl(spec->shutdown_eventfd, F_GETFD) >= 0);
	launch_spec_free(spec);
}

static void test_vsock_ports(void)
{
	char long_path[200];
	int id = new_ctx();

	CHECK(id >= 0);
	memset(long_path, 'p', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = 0;
	CHECK_EQ(krun_add_vsock_port((uint32_t)id, 0, "/tmp/s"), -EINVAL);
	CHECK_EQ(krun_add_vsock_port((uint32_t)id, 5, NULL), -EINVAL);
	CHECK_EQ(krun_add_vsock_port((uint32_t)id, 5, ""), -EINVAL);
	CHECK_EQ(krun_add_vsock_port((uint32_t)id, 5, long_path), -ENAMETOOLONG);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 5, a_file, true), -EEXIST);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 5, a_file, false), 0);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 5, missing, true), -EEXIST); /* port taken */
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 6, missing, true), 0);
	krun_free_ctx((uint32_t)id);
}

static void test_misc_calls(void)
{
	const uint8_t *init;
	size_t init_len = 0;
	int id = new_ctx(), max;

	CHECK(id >= 0);
	CHECK_EQ(krun_has_feature(KRUN_FEATURE_INIT_BLOB), 1);
	CHECK_EQ(krun_has_feature(KRUN_FEATURE_NET), 0);
	CHECK_EQ(krun_has_feature(KRUN_FEATURE_GPU), 0);
	CHECK_EQ(krun_has_feature(3), -EINVAL);
	CHECK_EQ(krun_has_feature(12), -EINVAL);
	max = krun_get_max_vcpus();
	CHECK(max >= 1 && max <= 16);
	CHECK_EQ(krun_split_irqchip((uint32_t)id, false), 0);
	CHECK_EQ(krun_split_irqchip((uint32_t)id, true), -ENOTSUP);
	CHECK_EQ(krun_set_gpu_options((uint32_t)id, VIRGLRENDERER_USE_EGL), 0);
	CHECK_EQ(krun_set_gpu_options2((uint32_t)id, VIRGLRENDERER_VENUS, 1ull << 33), 0);
	CHECK_EQ(krun_setuid((uint32_t)id, 1000), 0);
	CHECK_EQ(krun_setgid((uint32_t)id, 1000), 0);
	CHECK_EQ(krun_set_log_level(6), -EINVAL);
	CHECK_EQ(krun_set_log_level(KRUN_LOG_LEVEL_ERROR), 0);
	CHECK_EQ(krun_init_log(0, 1, 0, 0), -EINVAL);
	CHECK_EQ(krun_init_log(-2, 1, 0, 0), -EINVAL);
	CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, 6, 0, 0), -EINVAL);
	CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, 1, 3, 0), -EINVAL);
	CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, 1, 0, 2), -EINVAL);
	CHECK_EQ(krun_init_log(KRUN_LOG_TARGET_DEFAULT, KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER,
			       KRUN_LOG_OPTION_NO_ENV), 0);
	CHECK_EQ(krun_get_default_init(NULL, &init_len), -EINVAL);
	CHECK_EQ(krun_get_default_init(&init, &init_len), 0);
	CHECK(init_len > 4 && !memcmp(init, "\177ELF", 4));
	CHECK(krun_check_nested_virt() == 0 || krun_check_nested_virt() == 1);
	/* A sample of the stubs: present and honest about it. */
	CHECK_EQ(krun_add_disk((uint32_t)id, "b", a_file, true), -ENOTSUP);
	CHECK_EQ(krun_add_net_unixstream((uint32_t)id, NULL, 3, NULL, 0, 0), -ENOTSUP);
	CHECK_EQ(krun_add_display((uint32_t)id, 640, 480), -ENOTSUP);
	CHECK_EQ(krun_disable_implicit_vsock((uint32_t)id), -ENOTSUP);
	krun_set_log_level(KRUN_LOG_LEVEL_OFF);
	krun_free_ctx((uint32_t)id);
}

static void test_two_contexts_and_snapshot(void)
{
	const char *args_a[] = { "a", NULL }, *args_b[] = { "b", NULL }, *none[] = { NULL };
	int a = new_ctx(), b = new_ctx();
	struct launch_spec *sa, *sb;

	CHECK(a >= 0 && b >= 0);
	CHECK_EQ(krun_set_vm_config((uint32_t)a, 3, 100), 0);
	CHECK_EQ(krun_set_vm_config((uint32_t)b, 5, 200), 0);
	CHECK_EQ(krun_set_exec((uint32_t)a, "/a", args_a, none), 0);
	CHECK_EQ(krun_set_exec((uint32_t)b, "/b", args_b, none), 0);
	CHECK_EQ(krun_add_virtiofs((uint32_t)a, "only-a", vol_dir), 0);
	sa = spec_of(a);
	sb = spec_of(b);
	CHECK(sa && sb);
	CHECK(sa->vcpus == 3 && sb->vcpus == 5);
	CHECK(sa->ram_bytes == 100ull << 20 && sb->ram_bytes == 200ull << 20);
	CHECK(!strcmp(rec_get(sa, "exec", 0), "/a") && !strcmp(rec_get(sb, "exec", 0), "/b"));
	CHECK(!strcmp(rec_get(sa, "arg", 0), "a") && !strcmp(rec_get(sb, "arg", 0), "b"));
	CHECK(sa->nr_shares == 2 && sb->nr_shares == 1);
	/* Snapshots survive changes to and the end of their context. */
	CHECK_EQ(krun_set_exec((uint32_t)a, "/changed", NULL, none), 0);
	CHECK_EQ(krun_free_ctx((uint32_t)a), 0);
	CHECK(!strcmp(rec_get(sa, "exec", 0), "/a"));
	CHECK(!strcmp(sa->shares[1].tag, "only-a"));
	launch_spec_free(sa);
	launch_spec_free(sb);
	krun_free_ctx((uint32_t)b);
}

static void test_exit_vfile(void)
{
	int id = new_ctx();
	struct launch_spec *spec;

	CHECK(id >= 0);
	spec = spec_of(id);
	CHECK(spec);
	CHECK_EQ(launch_exit_status(spec), KRUN_STATUS_NO_REPORT);
	CHECK_EQ(launch_exit_write(spec, "42\n", 3, 0), 3);
	CHECK_EQ(spec->exit_status, 42);
	CHECK_EQ(launch_exit_status(spec), 42);
	CHECK_EQ(launch_exit_write(spec, "abc", 3, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "", 0, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "\n", 1, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "256", 3, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "-1", 2, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "4 2", 3, 0), -EINVAL);
	CHECK_EQ(launch_exit_write(spec, "1\n\n", 3, 0), -EINVAL);
	CHECK_EQ(launch_exit_status(spec), 42); /* garbage changed nothing */
	CHECK_EQ(launch_exit_write(spec, "0", 1, 0), 1);
	CHECK_EQ(launch_exit_status(spec), 0);
	CHECK_EQ(launch_exit_write(spec, "255\n", 4, 0), 4);
	CHECK_EQ(launch_exit_status(spec), 255);
	launch_spec_free(spec);
	krun_free_ctx((uint32_t)id);
}

/* crun closes every fd after krun_create_ctx: configuring must not depend on any. */
static void test_no_fds_kept(void)
{
	const char *args[] = { "x", NULL };
	int before = t_open_fds(), id, after;

	CHECK(before > 0);
	id = new_ctx();
	CHECK(id >= 0);
	CHECK_EQ(krun_set_vm_config((uint32_t)id, 2, 64), 0);
	CHECK_EQ(krun_set_exec((uint32_t)id, "/bin/true", args, NULL), 0);
	CHECK_EQ(krun_add_virtiofs((uint32_t)id, "data", vol_dir), 0);
	CHECK_EQ(krun_set_kernel((uint32_t)id, a_file, KRUN_KERNEL_FORMAT_ELF, NULL, NULL), 0);
	after = t_open_fds();
	CHECK_EQ(after, before);
	CHECK_EQ(krun_free_ctx((uint32_t)id), 0);
}

#define THREADS 4
#define ROUNDS 200

static int shared_ctx;

/* Each thread owns contexts and also hammers one shared context with consistent pairs. */
static void *config_worker(void *arg)
{
	long t = (long)arg, bad = 0;
	char exec[32];
	int r, id;

	snprintf(exec, sizeof(exec), "/thread%ld", t);
	for (r = 0; r < ROUNDS; r++) {
		struct launch_spec *spec;
		unsigned int n = (unsigned int)(t * ROUNDS + r) % 16 + 1;

		id = new_ctx();
		bad += id < 0;
		bad += krun_set_vm_config((uint32_t)id, (uint8_t)n, 32 + n) != 0;
		bad += krun_set_exec((uint32_t)id, exec, NULL, (const char *const[]){ NULL }) != 0;
		spec = spec_of(id);
		bad += !spec || spec->vcpus != n || strcmp(rec_get(spec, "exec", 0), exec);
		launch_spec_free(spec);
		bad += krun_free_ctx((uint32_t)id) != 0;
		/* Pairs (n, 32+n) only: a torn update would show a mismatched pair. */
		bad += krun_set_vm_config((uint32_t)shared_ctx, (uint8_t)n, 32 + n) != 0;
		spec = spec_of(shared_ctx);
		bad += !spec || spec->ram_bytes != (uint64_t)(32 + spec->vcpus) << 20;
		launch_spec_free(spec);
	}
	return (void *)bad;
}

static void test_concurrent_configuration(void)
{
	pthread_t th[THREADS];
	void *bad;
	long total = 0, t;

	shared_ctx = new_ctx();
	CHECK(shared_ctx >= 0);
	for (t = 0; t < THREADS; t++)
		CHECK_EQ(pthread_create(&th[t], NULL, config_worker, (void *)t), 0);
	for (t = 0; t < THREADS; t++) {
		pthread_join(th[t], &bad);
		total += (long)bad;
	}
	CHECK_EQ(total, 0);
	CHECK_EQ(krun_free_ctx((uint32_t)shared_ctx), 0);
}

/* A socket file bound to path; listening or left behind after close. */
static int bound_socket(const char *path, bool keep_listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1))
		return -1;
	if (!keep_listening) {
		close(fd);
		return 0;
	}
	return fd;
}

/* A listen path left by an earlier run (krun_start_enter exits) is reusable; a live one is not. */
static void test_vsock_listen_stale_socket(void)
{
	char stale[300], live[300];
	int id = krun_create_ctx(), fd;

	CHECK(id >= 0);
	snprintf(stale, sizeof(stale), "%s/stale.sock", tmp);
	snprintf(live, sizeof(live), "%s/live.sock", tmp);
	CHECK_EQ(bound_socket(stale, false), 0);
	fd = bound_socket(live, true);
	CHECK(fd >= 0);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 7, stale, true), 0);
	CHECK_EQ(krun_add_vsock_port2((uint32_t)id, 8, live, true), -EEXIST);
	close(fd);
	unlink(stale);
	unlink(live);
	krun_free_ctx((uint32_t)id);
}

int main(void)
{
	setup_tmp();
	/* Expected failures log warnings; keep the test output to verdicts. */
	krun_set_log_level(KRUN_LOG_LEVEL_OFF);
	RUN_TEST(test_create_free_use);
	RUN_TEST(test_vsock_listen_stale_socket);
	RUN_TEST(test_unknown_ctx);
	RUN_TEST(test_vm_config);
	RUN_TEST(test_root);
	RUN_TEST(test_virtiofs);
	RUN_TEST(test_mapped_volumes);
	RUN_TEST(test_port_map);
	RUN_TEST(test_rlimits);
	RUN_TEST(test_exec_records);
	RUN_TEST(test_env_inherit);
	RUN_TEST(test_kernel);
	RUN_TEST(test_console_and_eventfd);
	RUN_TEST(test_vsock_ports);
	RUN_TEST(test_misc_calls);
	RUN_TEST(test_two_contexts_and_snapshot);
	RUN_TEST(test_exit_vfile);
	RUN_TEST(test_no_fds_kept);
	RUN_TEST(test_concurrent_configuration);
	cleanup_tmp();
	return HARNESS_EXIT();
}
