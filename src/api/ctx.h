/*
 * The context table behind the krun_* configuration calls: plain data per context, one
 * mutex for the table and every context in it (configuration is rare and quick).
 */
#ifndef KRUN_API_CTX_H
#define KRUN_API_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTX_DEFAULT_VCPUS 1
#define CTX_DEFAULT_RAM_MIB 512
#define CTX_MIN_RAM_MIB 32

struct ctx_share {
	char *tag;
	char *host_path;
	bool read_only;
};

struct ctx_volume {
	char *host_path;
	char *guest_path;
};

struct ctx_vsock_port {
	uint32_t port;
	char *path;
	bool listen;
};

enum ctx_env_mode {
	CTX_ENV_UNSET,      /* no env records: the init (or the OCI config) decides */
	CTX_ENV_INHERIT,    /* the caller's environ when the launch spec is made */
	CTX_ENV_LIST,       /* ctx->env */
};

struct krun_ctx {
	uint32_t id;
	unsigned int vcpus;
	uint32_t ram_mib;
	char *root_path;            /* canonical host path, or NULL */
	bool root_read_only;
	struct ctx_share *shares;   /* krun_add_virtiofs* other than the root */
	unsigned int nr_shares;
	struct ctx_volume *volumes;
	unsigned int nr_volumes;
	char **port_map;            /* "HOST:GUEST"; NULL = never set (expose all) */
	char **rlimits;             /* normalized "RES=CUR:MAX" with numeric fields */
	char *workdir;
	char *exec_path;            /* NULL: the init reads /.krun_config.json */
	char **argv;                /* without argv[0] */
	enum ctx_env_mode env_mode;
	char **env;
	char *kernel_path;          /* krun_set_kernel, or NULL for libkrunfw */
	uint32_t kernel_format;
	char *initrd_path;
	char *kernel_cmdline;
	char *console_output;
	int shutdown_efd;           /* -1 until krun_get_shutdown_eventfd */
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	uint32_t gpu_virgl_flags;   /* stored only: there is no GPU device */
	uint64_t gpu_shm_size;
	struct ctx_vsock_port *vsock_ports;
	unsigned int nr_vsock_ports;
};

/* Locks the table and returns the context, or returns NULL (table unlocked) if unknown. */
struct krun_ctx *ctx_lock(uint32_t id);
void ctx_unlock(void);
/*
 * Replaces the string vector at byte offset `field` of the context (offsetof(struct
 * krun_ctx, ...)) with v, which it consumes either way. 0, or -ENOENT for an unknown context.
 */
int ctx_replace_strv(uint32_t id, size_t field, char **v);
/* Removes the context from the table; the caller owns it (ctx_destroy). NULL if unknown. */
struct krun_ctx *ctx_take(uint32_t id);
/* Frees a context taken out of the table; keep_efd leaves its shutdown eventfd open. */
void ctx_destroy(struct krun_ctx *c, bool keep_efd);

#endif
