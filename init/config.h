/* The workload description the init runs: parsed from the contract's records or the OCI file. */
#ifndef KRUN_INIT_CONFIG_H
#define KRUN_INIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Bounds that keep a hostile or corrupt description from exhausting guest memory. */
#define CONFIG_MAX_STRINGS 65536
#define CONFIG_MAX_RLIMITS 64
#define CONFIG_MAX_MOUNTS 256
#define CONFIG_MAX_GROUPS 256

struct config_rlimit {
	int resource;
	rlim_t cur;
	rlim_t max;
};

struct config_mount {
	char *tag;
	char *path;
};

/* Every pointer is owned (heap) and released by config_free. */
struct config {
	char *exec;
	char **argv;            /* NULL-terminated; argv[0] is the exec path */
	size_t argc;
	char **env;             /* NULL-terminated */
	size_t envc;
	bool has_env;
	char *workdir;
	char *hostname;
	long long clock_sec;    /* host wall clock at launch (seconds), or 0 */
	struct config_rlimit rlimits[CONFIG_MAX_RLIMITS];
	size_t nrlimits;
	struct config_mount *mounts;
	size_t nmounts;
	uid_t uid;
	gid_t gid;
	bool has_uid;
	bool has_gid;
	gid_t *groups;
	size_t ngroups;
	bool has_groups;
};

void config_init(struct config *c);
void config_free(struct config *c);

/*
 * Parses "key=value\0" records (krun_init.h). Unknown keys are skipped for forward
 * compatibility. Returns 0 or -errno; on error *why names the offending record.
 */
int config_parse_records(struct config *c, const char *buf, size_t len, const char **why);

/* Appends a copy of s to a NULL-terminated string vector. Returns 0 or -errno. */
int config_strv_push(char ***v, size_t *n, const char *s);

/* RLIMIT_* number for "NOFILE", "RLIMIT_NOFILE", "nofile" or a decimal number; -1 if unknown. */
int config_rlimit_resource(const char *name);

/* Adds (or replaces) a limit. Returns 0 or -E2BIG. */
int config_add_rlimit(struct config *c, int resource, rlim_t cur, rlim_t max);

/* Strict decimal parse of [0, max]; returns 0, -EINVAL or -ERANGE. */
int config_parse_u64(const char *s, unsigned long long max, unsigned long long *out);

/* Fills each field c lacks from other (moving ownership); rlimits of c win over other's. */
void config_merge(struct config *c, struct config *other);

#endif
