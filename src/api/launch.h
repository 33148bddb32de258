/*
 * A context's configuration resolved into what any transport needs to start the guest:
 * the in-process VMM (krun_start_enter) and the vhost-user harness (tcg_vm) both use it,
 * so the guest sees the same kernel command line, init, config and shares in both worlds.
 */
#ifndef KRUN_API_LAUNCH_H
#define KRUN_API_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vmm.h"

struct fs;
struct evloop;
struct virtio_dev;

struct launch_share {
	char *tag;          /* virtio-fs tag; shares[0] is the root with KRUN_ROOT_TAG */
	char *host_path;
	char *guest_path;   /* where the init mounts it (mapped volume), or NULL (guest mounts by tag) */
	bool read_only;
};

/* krun_add_vsock_port2 pairing: guest vsock port <-> host UNIX socket path. */
struct launch_vsock_port {
	uint32_t port;
	char *path;
	bool listen;        /* the VMM listens on path (host connects in) */
};

struct launch_spec {
	unsigned int vcpus;
	uint64_t ram_bytes;
	struct vmm_kernel kernel;   /* bundled libkrunfw kernel or krun_set_kernel's */
	char *cmdline;              /* complete guest command line minus transport device entries */
	void *init_config;          /* records for KRUN_INIT_CONFIG_PATH (see common/krun_init.h) */
	size_t init_config_len;
	struct launch_share *shares;
	unsigned int nr_shares;
	char **port_map;            /* "HOST:GUEST" strings, validated */
	unsigned int nr_port_map;
	struct launch_vsock_port *vsock_ports;
	unsigned int nr_vsock_ports;
	char *console_output;       /* krun_set_console_output path, or NULL */
	int shutdown_eventfd;       /* -1 if none */
	/* Written by the exit vfile (any thread): the status the init reported, or -1. */
	int exit_status;
};

/* Snapshot of a context (the context may change or be freed afterwards). */
int launch_spec_from_ctx(uint32_t ctx_id, struct launch_spec **out) __attribute__((warn_unused_result));
void launch_spec_free(struct launch_spec *spec);
/* The FUSE server for share i; the root share also serves the init, config and exit files. */
int launch_create_fs(struct launch_spec *spec, unsigned int i, struct fs **out)
	__attribute__((warn_unused_result));
/*
 * The vsock device for the guest: the krun_add_vsock_port pairings plus the TSI proxy (socket
 * impersonation, DNS, port map). loop: the device's loop if already known (vhost-user), else
 * NULL (the in-process transport hands it over at activation).
 */
int launch_create_vsock(const struct launch_spec *spec, struct evloop *loop, struct virtio_dev **out)
	__attribute__((warn_unused_result));

/* Host process status after the guest ended: the reported status, else KRUN_STATUS_NO_REPORT. */
int launch_exit_status(const struct launch_spec *spec);

#endif
