/*
 * libkrun: run a program from a host directory inside a KVM microVM, in-process.
 *
 * Usage: create a context, configure it with the krun_set_* / krun_add_* calls, then call
 * krun_start_enter(), which boots the VM and, on success, never returns: the process exits
 * with the guest program's status. Every function returns 0 (or a documented non-negative
 * value) on success and a negative errno value on failure; a failed call leaves the context
 * unchanged. Contexts may be configured from several threads at once.
 *
 * Common errors (not repeated below): -ENOENT for an unknown or already freed context ID,
 * -EINVAL for a NULL pointer or a malformed string argument, -ENOMEM when out of memory.
 * Functions marked "not supported" exist so that programs built against the upstream header
 * load and link; they always return -ENOTSUP.
 */
#ifndef _LIBKRUN_H
#define _LIBKRUN_H

#ifdef __cplusplus
extern "C" {
#endif

#include <inttypes.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------- */

#define KRUN_LOG_TARGET_DEFAULT -1

#define KRUN_LOG_LEVEL_OFF 0
#define KRUN_LOG_LEVEL_ERROR 1
#define KRUN_LOG_LEVEL_WARN 2
#define KRUN_LOG_LEVEL_INFO 3
#define KRUN_LOG_LEVEL_DEBUG 4
#define KRUN_LOG_LEVEL_TRACE 5

#define KRUN_LOG_STYLE_AUTO 0
#define KRUN_LOG_STYLE_ALWAYS 1
#define KRUN_LOG_STYLE_NEVER 2

#define KRUN_LOG_OPTION_NO_ENV 1

/**
 * Chooses how much the library logs (process-wide, all contexts).
 *
 * Arguments:
 *  "level" - 0 off, 1 errors, 2 warnings, 3 info, 4 debug, 5 trace
 *            (the KRUN_LOG_LEVEL_* constants).
 *
 * Returns:
 *  Zero on success, -EINVAL for a level above 5.
 */
int32_t krun_set_log_level(uint32_t level);

/**
 * Sets up logging: destination, verbosity, coloring and options (process-wide).
 *
 * Arguments:
 *  "target_fd" - descriptor that receives log lines; KRUN_LOG_TARGET_DEFAULT (-1) means
 *                standard error. The descriptor must stay open while the library runs.
 *  "level"     - one of KRUN_LOG_LEVEL_*.
 *  "style"     - KRUN_LOG_STYLE_AUTO, _ALWAYS or _NEVER: whether escape sequences may be
 *                used (this library never colors its output; the value is only checked).
 *  "options"   - 0, or KRUN_LOG_OPTION_NO_ENV to ignore KRUN_LOG_LEVEL in the environment.
 *
 * Returns:
 *  Zero on success; -EINVAL for target_fd 0 or below -1, an unknown level, style or option.
 */
int32_t krun_init_log(int target_fd, uint32_t level, uint32_t style, uint32_t options);

/* ---------------------------------------------------------------------------------------
 * Contexts and the machine
 * ------------------------------------------------------------------------------------- */

/**
 * Creates an empty configuration context. Opens no descriptors and starts no threads, so it
 * may be called before forking or switching namespaces; it loads libkrunfw.so.5 (the bundled
 * guest kernel) if it can be found (env KRUN_LIBKRUNFW, the library search path, or the
 * directory of libkrun.so).
 *
 * Returns:
 *  The new context ID (>= 0), or -ENOMEM.
 */
int32_t krun_create_ctx(void);

/**
 * Frees a context and everything it holds (including its shutdown eventfd, if created).
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *
 * Returns:
 *  Zero on success, -ENOENT if no such context exists.
 */
int32_t krun_free_ctx(uint32_t ctx_id);

/**
 * Sets the number of vCPUs and the amount of guest RAM.
 *
 * Arguments:
 *  "ctx_id"    - the context ID.
 *  "num_vcpus" - 1 to 16.
 *  "ram_mib"   - guest RAM in MiB: at least 32, at most the host's physical RAM.
 *
 * A new context has 1 vCPU and 512 MiB.
 *
 * Returns:
 *  Zero on success, -EINVAL for a value out of range (the previous values are kept).
 */
int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);

/**
 * The virtio-fs tag naming the guest's root file system in krun_add_virtiofs*().
 */
#define KRUN_FS_ROOT_TAG "/dev/root"

/**
 * Chooses the host directory that becomes the guest's root file system (shared through
 * virtio-fs, writable). Same as krun_add_virtiofs(ctx_id, KRUN_FS_ROOT_TAG, root_path).
 *
 * Arguments:
 *  "ctx_id"    - the context ID.
 *  "root_path" - an existing host directory.
 *
 * Returns:
 *  Zero on success, -ENOENT if the path does not exist, -ENOTDIR if it is not a directory.
 */
int32_t krun_set_root(uint32_t ctx_id, const char *root_path);

/**
 * Not supported (block devices): a raw disk image as the root file system.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_root_disk(uint32_t ctx_id, const char *disk_path);

/**
 * Not supported (block devices): a raw disk image as a data partition.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_data_disk(uint32_t ctx_id, const char *disk_path);

/**
 * Not supported (block devices): adds a raw disk image as a virtio-blk device.
 *
 * Arguments:
 *  "ctx_id", "block_id" (partition name), "disk_path", "read_only".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only);

/* Disk image formats for krun_add_disk2/3. */
#define KRUN_DISK_FORMAT_RAW 0
#define KRUN_DISK_FORMAT_QCOW2 1
/* Flat/zero VMDK extents only, no delta links. */
#define KRUN_DISK_FORMAT_VMDK 2

/**
 * Not supported (block devices): adds a disk image in the given KRUN_DISK_FORMAT_*.
 * Image formats that reference other files must only come from trusted sources.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_disk2(uint32_t ctx_id,
		       const char *block_id,
		       const char *disk_path,
		       uint32_t disk_format,
		       bool read_only);

/* Flush handling for krun_add_disk3. */
/* Ignore flush requests (fast, may lose data on a host crash). */
#define KRUN_SYNC_NONE 0
/* Honor flushes; on Linux identical to KRUN_SYNC_FULL. */
#define KRUN_SYNC_RELAXED 1
/* Honor flushes down to the physical medium. */
#define KRUN_SYNC_FULL 2

/**
 * Not supported (block devices): krun_add_disk2 plus direct I/O and a KRUN_SYNC_* mode.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_disk3(uint32_t ctx_id,
		       const char *block_id,
		       const char *disk_path,
		       uint32_t disk_format,
		       bool read_only,
		       bool direct_io,
		       uint32_t sync_mode);

/**
 * Shares host directories with the guest and mounts them at guest paths before the program
 * starts. Each entry is "HOST_PATH:GUEST_PATH" (split at the first ':'); both paths absolute,
 * the host path an existing directory, the guest path not "/". Replaces earlier volumes.
 *
 * Arguments:
 *  "ctx_id"         - the context ID.
 *  "mapped_volumes" - NULL-terminated array of strings (at most 4096).
 *
 * Returns:
 *  Zero on success; -EINVAL for a malformed entry, -ENOENT / -ENOTDIR for a host path that
 *  is missing / not a directory, -E2BIG for too many entries.
 */
int32_t krun_set_mapped_volumes(uint32_t ctx_id, const char *const mapped_volumes[]);

/**
 * Shares a host directory with the guest as a virtio-fs device the guest can mount by tag.
 * With tag KRUN_FS_ROOT_TAG the directory becomes the root file system instead.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *  "c_tag"  - 1 to 36 bytes, unique within the context.
 *  "c_path" - an existing host directory.
 *
 * Returns:
 *  Zero on success; -EINVAL for an empty or too long tag, -EEXIST for a tag already used,
 *  -ENOENT / -ENOTDIR for a path that is missing / not a directory.
 */
int32_t krun_add_virtiofs(uint32_t ctx_id,
			  const char *c_tag,
			  const char *c_path);

/**
 * krun_add_virtiofs with the size of a DAX window. This implementation has no DAX window;
 * the size is accepted and ignored.
 *
 * Arguments:
 *  "ctx_id", "c_tag", "c_path" - as in krun_add_virtiofs.
 *  "shm_size" - DAX window size in bytes (ignored).
 *
 * Returns:
 *  As krun_add_virtiofs.
 */
int32_t krun_add_virtiofs2(uint32_t ctx_id,
			   const char *c_tag,
			   const char *c_path,
			   uint64_t shm_size);

/**
 * krun_add_virtiofs2 with a read-only flag.
 *
 * Arguments:
 *  "ctx_id", "c_tag", "c_path", "shm_size" - as in krun_add_virtiofs2.
 *  "read_only" - the guest may not modify the share.
 *
 * Returns:
 *  As krun_add_virtiofs.
 */
int32_t krun_add_virtiofs3(uint32_t ctx_id,
			   const char *c_tag,
			   const char *c_path,
			   uint64_t shm_size,
			   bool read_only);

/* ---------------------------------------------------------------------------------------
 * Networking (virtio-net is not supported; TSI port maps are stored for the vsock device)
 * ------------------------------------------------------------------------------------- */

/* Network flags: send the vfkit magic after connecting (gvproxy in vfkit mode). */
#define NET_FLAG_VFKIT (1 << 0)
/* Network flags: run a DHCP client in the guest on this interface. */
#define NET_FLAG_DHCP_CLIENT (1 << 1)

/* TSI (transparent socket impersonation) features for krun_add_vsock. */
#define KRUN_TSI_HIJACK_INET  (1 << 0)
#define KRUN_TSI_HIJACK_UNIX  (1 << 1)

/* virtio-net feature bits (values from the Linux uapi virtio_net.h). */
#define NET_FEATURE_CSUM (1 << 0)
#define NET_FEATURE_GUEST_CSUM (1 << 1)
#define NET_FEATURE_GUEST_TSO4 (1 << 7)
#define NET_FEATURE_GUEST_TSO6 (1 << 8)
#define NET_FEATURE_GUEST_UFO (1 << 10)
#define NET_FEATURE_HOST_TSO4 (1 << 11)
#define NET_FEATURE_HOST_TSO6 (1 << 12)
#define NET_FEATURE_HOST_UFO (1 << 14)

/* The feature set the legacy krun_set_passt_fd / krun_set_gvproxy_path interfaces used. */
#define COMPAT_NET_FEATURES (NET_FEATURE_CSUM | NET_FEATURE_GUEST_CSUM | \
			     NET_FEATURE_GUEST_TSO4 | NET_FEATURE_GUEST_UFO | \
			     NET_FEATURE_HOST_TSO4 | NET_FEATURE_HOST_UFO)

/**
 * Not supported: adds a virtio-net interface backed by a unix stream socket (passt,
 * socket_vmnet), given either as a path ("c_path", with fd -1) or a connected fd
 * ("c_path" NULL). "c_mac" points to 6 bytes; "features" are NET_FEATURE_* bits; "flags"
 * NET_FLAG_* bits.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_net_unixstream(uint32_t ctx_id,
				const char *c_path,
				int fd,
				uint8_t *const c_mac,
				uint32_t features,
				uint32_t flags);

/**
 * Not supported: adds a virtio-net interface backed by a unix datagram socket (gvproxy,
 * vmnet-helper). Arguments as in krun_add_net_unixstream.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_net_unixgram(uint32_t ctx_id,
			      const char *c_path,
			      int fd,
			      uint8_t *const c_mac,
			      uint32_t features,
			      uint32_t flags);

/**
 * Not supported: adds a virtio-net interface backed by the host tap device "c_tap_name".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_net_tap(uint32_t ctx_id,
			 char *c_tap_name,
			 uint8_t *const c_mac,
			 uint32_t features,
			 uint32_t flags);

/**
 * Not supported (legacy): networking through passt on the connected descriptor "fd".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_passt_fd(uint32_t ctx_id, int fd);

/**
 * Not supported (legacy): networking through gvproxy's vfkit datagram socket at "c_path".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_gvproxy_path(uint32_t ctx_id, char *c_path);

/**
 * Not supported (legacy): the MAC address (6 bytes) of the passt/gvproxy interface.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_net_mac(uint32_t ctx_id, uint8_t *const c_mac);

/**
 * Exposes guest TCP ports on the host (TSI networking). Each entry is "HOST:GUEST", both
 * decimal ports 1-65535; a host port and a guest port may each appear only once. A guest
 * service is reached, from the host and from inside the guest, at its host port.
 * Replaces an earlier map.
 *
 * Arguments:
 *  "ctx_id"   - the context ID.
 *  "port_map" - NULL-terminated array of strings (at most 4096). NULL means "expose every
 *               listening guest port"; an empty array means "expose none".
 *
 * Returns:
 *  Zero on success; -EINVAL for a malformed entry or a duplicate port, -E2BIG for too many.
 */
int32_t krun_set_port_map(uint32_t ctx_id, const char *const port_map[]);

/* ---------------------------------------------------------------------------------------
 * GPU, display, input, sound (no such devices here: options are stored and ignored)
 * ------------------------------------------------------------------------------------- */

/* virglrenderer flags for krun_set_gpu_options*. */
#define VIRGLRENDERER_USE_EGL (1 << 0)
#define VIRGLRENDERER_THREAD_SYNC (1 << 1)
#define VIRGLRENDERER_USE_GLX (1 << 2)
#define VIRGLRENDERER_USE_SURFACELESS (1 << 3)
#define VIRGLRENDERER_USE_GLES (1 << 4)
#define VIRGLRENDERER_USE_EXTERNAL_BLOB (1 << 5)
#define VIRGLRENDERER_VENUS (1 << 6)
#define VIRGLRENDERER_NO_VIRGL (1 << 7)
#define VIRGLRENDERER_USE_ASYNC_FENCE_CB (1 << 8)
#define VIRGLRENDERER_RENDER_SERVER (1 << 9)
#define VIRGLRENDERER_DRM (1 << 10)

/**
 * Requests a virtio-gpu device with the given virglrenderer flags. There is no GPU device
 * in this implementation: the flags are stored and the VM starts without one, so clients
 * that always call this keep working.
 *
 * Arguments:
 *  "ctx_id"      - the context ID.
 *  "virgl_flags" - VIRGLRENDERER_* bits.
 *
 * Returns:
 *  Zero on success.
 */
int32_t krun_set_gpu_options(uint32_t ctx_id, uint32_t virgl_flags);

/**
 * krun_set_gpu_options with the size of the host memory window used as guest vRAM
 * ("shm_size", bytes). Stored and ignored likewise.
 *
 * Returns:
 *  Zero on success.
 */
int32_t krun_set_gpu_options2(uint32_t ctx_id,
			      uint32_t virgl_flags,
			      uint64_t shm_size);

/* Most displays a VM may have (the virtio-gpu scanout limit). */
#define KRUN_MAX_DISPLAYS 16

/**
 * Not supported: adds a display of "width" x "height" pixels. Would return the display ID.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_display(uint32_t ctx_id, uint32_t width, uint32_t height);

/**
 * Not supported: replaces a display's generated EDID with "blob_size" bytes at "edid_blob".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_display_set_edid(uint32_t ctx_id, uint32_t display_id, const uint8_t *edid_blob,
			      size_t blob_size);

/**
 * Not supported: the pixel density (dots per inch) reported for a display.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_display_set_dpi(uint32_t ctx_id, uint32_t display_id, uint32_t dpi);

/**
 * Not supported: the physical size in millimeters reported for a display.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_display_set_physical_size(uint32_t ctx_id, uint32_t display_id, uint16_t width_mm,
				       uint16_t height_mm);

/**
 * Not supported: the refresh rate in Hz reported for a display.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_display_set_refresh_rate(uint32_t ctx_id, uint32_t display_id, uint32_t refresh_rate);

/**
 * Not supported: installs a display backend (a struct of "backend_size" bytes with
 * callbacks, from the upstream libkrun_display.h).
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_display_backend(uint32_t ctx_id, const void *display_backend, size_t backend_size);

/**
 * Not supported: adds a virtio-input device from a configuration backend and an event
 * provider backend (structs from the upstream input header, with their sizes).
 *
 * Returns:
 *  -ENOTSUP.
 */
int krun_add_input_device(uint32_t ctx_id, const void *config_backend, size_t config_backend_size,
			  const void *events_backend, size_t events_backend_size);

/**
 * Not supported: adds a virtio-input device passing through the host evdev descriptor
 * "input_fd" (/dev/input/...).
 *
 * Returns:
 *  -ENOTSUP.
 */
int krun_add_input_device_fd(uint32_t ctx_id, int input_fd);

/**
 * Not supported (legacy): enables or disables a virtio-snd device.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_snd_device(uint32_t ctx_id, bool enable);

/**
 * Not supported (legacy): configures display "display_id" as "width" x "height".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_display(uint32_t ctx_id, uint32_t display_id, uint32_t width, uint32_t height);

/* ---------------------------------------------------------------------------------------
 * vhost-user devices (not supported)
 * ------------------------------------------------------------------------------------- */

/* virtio device type IDs accepted by krun_add_vhost_user_device. */
#define KRUN_VIRTIO_DEVICE_CONSOLE 3
#define KRUN_VIRTIO_DEVICE_RNG 4
#define KRUN_VIRTIO_DEVICE_GPU 16
#define KRUN_VIRTIO_DEVICE_RTC 17
#define KRUN_VIRTIO_DEVICE_INPUT 18
#define KRUN_VIRTIO_DEVICE_VSOCK 19
#define KRUN_VIRTIO_DEVICE_SND 25
#define KRUN_VIRTIO_DEVICE_CAN 36

/* Default queue counts and sizes per device type. */
#define KRUN_VHOST_USER_CONSOLE_NUM_QUEUES 4
#define KRUN_VHOST_USER_CONSOLE_QUEUE_SIZES ((uint16_t[]){128, 128, 64, 64})
#define KRUN_VHOST_USER_RNG_NUM_QUEUES 1
#define KRUN_VHOST_USER_RNG_QUEUE_SIZES ((uint16_t[]){256})
#define KRUN_VHOST_USER_RTC_NUM_QUEUES 2
#define KRUN_VHOST_USER_RTC_QUEUE_SIZES ((uint16_t[]){1024, 1024})
#define KRUN_VHOST_USER_INPUT_NUM_QUEUES 2
#define KRUN_VHOST_USER_INPUT_QUEUE_SIZES ((uint16_t[]){1024, 1024})
#define KRUN_VHOST_USER_SND_NUM_QUEUES 4
#define KRUN_VHOST_USER_SND_QUEUE_SIZES ((uint16_t[]){64, 64, 64, 64})
#define KRUN_VHOST_USER_VSOCK_NUM_QUEUES 3
#define KRUN_VHOST_USER_VSOCK_QUEUE_SIZES ((uint16_t[]){128, 128, 128})
#define KRUN_VHOST_USER_CAN_NUM_QUEUES 3
#define KRUN_VHOST_USER_CAN_QUEUE_SIZES ((uint16_t[]){64, 64, 64})
#define KRUN_VHOST_USER_GPU_NUM_QUEUES 2
#define KRUN_VHOST_USER_GPU_QUEUE_SIZES ((uint16_t[]){1024, 1024})

/**
 * Not supported: attaches a device served by an external vhost-user backend listening on
 * "socket_path". "device_type" is a KRUN_VIRTIO_DEVICE_* value, "name" a label (or NULL),
 * "num_queues" 0 to ask the backend, "queue_sizes" NULL for defaults, else one size per
 * queue (0-terminated when num_queues is 0).
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_vhost_user_device(uint32_t ctx_id,
				   uint32_t device_type,
				   const char *socket_path,
				   const char *name,
				   uint16_t num_queues,
				   const uint16_t *queue_sizes);

/* ---------------------------------------------------------------------------------------
 * The workload
 * ------------------------------------------------------------------------------------- */

/**
 * Resource limits the guest init applies before starting the program. Each entry is
 * "RESOURCE=CUR:MAX": RESOURCE a number 0..RLIM_NLIMITS-1 or a name (NOFILE or
 * RLIMIT_NOFILE, ...); CUR and MAX decimal, or RLIM_INFINITY / unlimited; CUR <= MAX.
 * Replaces earlier limits.
 *
 * Arguments:
 *  "ctx_id"  - the context ID.
 *  "rlimits" - NULL-terminated array of strings (at most 4096).
 *
 * Returns:
 *  Zero on success; -EINVAL for NULL or a malformed entry, -E2BIG for too many.
 */
int32_t krun_set_rlimits(uint32_t ctx_id, const char *const rlimits[]);

/**
 * Not supported: SMBIOS OEM strings (NULL-terminated array) for the guest firmware tables.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_smbios_oem_strings(uint32_t ctx_id, const char *const oem_strings[]);

/**
 * The program's working directory inside the guest.
 *
 * Arguments:
 *  "ctx_id"       - the context ID.
 *  "workdir_path" - an absolute guest path.
 *
 * Returns:
 *  Zero on success, -EINVAL for an empty or relative path.
 */
int32_t krun_set_workdir(uint32_t ctx_id,
			 const char *workdir_path);

/**
 * The program to run inside the guest, its arguments and its environment. Without this
 * call the guest init runs the workload described by /.krun_config.json in the root
 * (an OCI config.json, as crun writes it).
 *
 * Arguments:
 *  "ctx_id"    - the context ID.
 *  "exec_path" - the program, a guest path (absolute, or looked up in PATH by the init).
 *  "argv"      - NULL-terminated arguments NOT including argv[0] (the init passes exec_path
 *                as argv[0]); NULL means none. At most 4096.
 *  "envp"      - NULL-terminated "NAME=VALUE" strings, the complete environment; NULL means
 *                the caller's environment at the time krun_start_enter is called.
 *
 * Returns:
 *  Zero on success; -EINVAL for an empty path or an environment entry without '=' (or
 *  starting with '='), -E2BIG for too many arguments or variables.
 */
int32_t krun_set_exec(uint32_t ctx_id,
		      const char *exec_path,
		      const char *const argv[],
		      const char *const envp[]);

/**
 * Not supported: a firmware image to boot instead of a kernel.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_firmware(uint32_t ctx_id, const char *firmware_path);

/* Kernel image formats for krun_set_kernel. */
#define KRUN_KERNEL_FORMAT_RAW 0
#define KRUN_KERNEL_FORMAT_ELF 1
#define KRUN_KERNEL_FORMAT_PE_GZ 2
#define KRUN_KERNEL_FORMAT_IMAGE_BZ2 3
#define KRUN_KERNEL_FORMAT_IMAGE_GZ 4
#define KRUN_KERNEL_FORMAT_IMAGE_ZSTD 5

/**
 * Boots a kernel from a host file instead of the one bundled in libkrunfw.
 *
 * Arguments:
 *  "ctx_id"        - the context ID.
 *  "kernel_path"   - an existing regular file.
 *  "kernel_format" - KRUN_KERNEL_FORMAT_ELF (vmlinux) or KRUN_KERNEL_FORMAT_RAW (an x86
 *                    bzImage); the compressed formats 2-5 are not supported.
 *  "initramfs"     - an existing regular file, or NULL for none.
 *  "cmdline"       - the complete kernel command line replacing the default one (it must
 *                    then boot the root share and the init itself), or NULL for the default.
 *
 * Returns:
 *  Zero on success; -ENOENT for a missing kernel or initramfs, -EINVAL for a file that is
 *  not a regular file, an unknown format or an empty command line or one of 2048 bytes or
 *  more, -ENOTSUP for formats 2-5.
 */
int32_t krun_set_kernel(uint32_t ctx_id,
			const char *kernel_path,
			uint32_t kernel_format,
			const char *initramfs,
			const char *cmdline);

/**
 * Replaces the program's environment (see krun_set_exec).
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *  "envp"   - NULL-terminated "NAME=VALUE" strings; NULL means the caller's environment at
 *             the time krun_start_enter is called.
 *
 * Returns:
 *  Zero on success; -EINVAL for an entry without '=', -E2BIG for too many entries.
 */
int32_t krun_set_env(uint32_t ctx_id, const char *const envp[]);

/**
 * Not supported (confidential computing builds only): the TEE configuration file.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *filepath);

/* ---------------------------------------------------------------------------------------
 * vsock
 * ------------------------------------------------------------------------------------- */

/**
 * Connects guest vsock port "port" to the host unix socket "c_filepath": a guest
 * connection to the port is forwarded to that socket. Same as
 * krun_add_vsock_port2(ctx_id, port, c_filepath, false).
 *
 * Returns:
 *  As krun_add_vsock_port2.
 */
int32_t krun_add_vsock_port(uint32_t ctx_id,
			    uint32_t port,
			    const char *c_filepath);

/**
 * Pairs guest vsock port "port" with the host unix socket path "c_filepath".
 *
 * Arguments:
 *  "ctx_id"     - the context ID.
 *  "port"       - the vsock port (non-zero), at most once per context.
 *  "c_filepath" - unix socket path (shorter than 108 bytes).
 *  "listen"     - false: the guest connects and the host socket must be listening;
 *                 true: the library creates a listening socket at the path (which must not
 *                 exist yet) and forwards host connections to the guest's port.
 *
 * Returns:
 *  Zero on success; -EINVAL for port 0 or an empty path, -ENAMETOOLONG for a long path,
 *  -EEXIST for a port already paired or, with "listen", a path that already exists.
 */
int32_t krun_add_vsock_port2(uint32_t ctx_id,
			     uint32_t port,
			     const char *c_filepath,
			     bool listen);

/**
 * Not supported: an explicit vsock device with KRUN_TSI_HIJACK_* features (after
 * krun_disable_implicit_vsock).
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features);

/**
 * Returns an eventfd the caller may write to (any non-zero 8-byte value) to make a running
 * VM shut down; krun_start_enter then exits the process. Created on the first call; later
 * calls return the same descriptor. Call it before krun_start_enter.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *
 * Returns:
 *  The eventfd (>= 0), or a negative errno from eventfd(2).
 */
int32_t krun_get_shutdown_eventfd(uint32_t ctx_id);

/**
 * Sends the guest console to a file instead of standard output; standard input is not
 * read. The file is created or truncated when the VM starts.
 *
 * Arguments:
 *  "ctx_id"     - the context ID.
 *  "c_filepath" - a host path.
 *
 * Returns:
 *  Zero on success; -EINVAL for an empty path or when a console output was already set.
 */
int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath);

/**
 * The user ID the library switches to (setuid) right before it starts the VM, after the
 * configuration is resolved. Lets a privileged caller drop privileges for the VM's life.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *  "uid"    - the user ID.
 *
 * Returns:
 *  Zero on success.
 */
int32_t krun_setuid(uint32_t ctx_id, uid_t uid);

/**
 * The group ID the library switches to (setgid) right before it starts the VM.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *  "gid"    - the group ID.
 *
 * Returns:
 *  Zero on success.
 */
int32_t krun_setgid(uint32_t ctx_id, gid_t gid);

/**
 * Not supported: exposing hardware virtualization to the guest.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled);

/**
 * Reports whether the host's KVM offers nested virtualization (kvm_intel or kvm_amd
 * module parameter "nested").
 *
 * Returns:
 *  1 if it does, 0 if not.
 */
int32_t krun_check_nested_virt(void);

/* Features for krun_has_feature. */
#define KRUN_FEATURE_NET 0
#define KRUN_FEATURE_BLK 1
#define KRUN_FEATURE_GPU 2
#define KRUN_FEATURE_INPUT 4
#define KRUN_FEATURE_TEE 6
#define KRUN_FEATURE_AMD_SEV 7
#define KRUN_FEATURE_INTEL_TDX 8
#define KRUN_FEATURE_AWS_NITRO 9
#define KRUN_FEATURE_VIRGL_RESOURCE_MAP2 10
#define KRUN_FEATURE_INIT_BLOB 11

/**
 * Tells whether this build of the library has an optional feature.
 *
 * Arguments:
 *  "feature" - a KRUN_FEATURE_* constant.
 *
 * Returns:
 *  1 if present (here only KRUN_FEATURE_INIT_BLOB), 0 if absent, -EINVAL for a value that
 *  is not a known feature.
 */
int32_t krun_has_feature(uint64_t feature);

/**
 * The largest vCPU count krun_set_vm_config accepts on this host: KVM's limit
 * (KVM_CAP_MAX_VCPUS), capped at 16, or 16 when /dev/kvm cannot be queried.
 *
 * Returns:
 *  The count (>= 1).
 */
int32_t krun_get_max_vcpus(void);

/**
 * Whether the interrupt controller is split between KVM (local APICs) and the VMM
 * (IOAPIC). Only the in-kernel irqchip is implemented.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *  "enable" - must be false.
 *
 * Returns:
 *  Zero for false, -ENOTSUP for true.
 */
int32_t krun_split_irqchip(uint32_t ctx_id, bool enable);

/**
 * Not supported: start the VM without the implicit console on standard input/output.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_disable_implicit_console(uint32_t ctx_id);

/**
 * Not supported: do not serve the embedded init as /init.krun in the root share.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_disable_implicit_init(uint32_t ctx_id);

/**
 * Gives access to the guest init embedded in the library (the /init.krun the root share
 * serves). The bytes are static and stay valid for the life of the process.
 *
 * Arguments:
 *  "data_out" - receives a pointer to the binary.
 *  "len_out"  - receives its length in bytes.
 *
 * Returns:
 *  Zero on success, -EINVAL if an argument is NULL.
 */
int32_t krun_get_default_init(const uint8_t **data_out, size_t *len_out);

/**
 * Not supported: adds a file held in caller memory to a virtio-fs share ("fs_tag"), at
 * "path" inside it, with "mode" bits; "one_shot" makes it visible to one lookup only.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_fs_add_overlay_file(uint32_t ctx_id, const char *fs_tag,
				 const char *path, const uint8_t *data,
				 size_t data_len, uint32_t mode, bool one_shot);

/**
 * Not supported: adds an empty read-only directory (a mount point) to a virtio-fs share.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_fs_add_overlay_dir(uint32_t ctx_id, const char *fs_tag,
				const char *path, uint32_t mode);

/**
 * Not supported: start the VM without the implicit vsock device.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_disable_implicit_vsock(uint32_t ctx_id);

/**
 * Not supported: the value of "console=" on the kernel command line.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_kernel_console(uint32_t ctx_id, const char *console_id);

/**
 * Not supported: adds a virtio-console on the given descriptors (one console port for
 * terminals, extra krun-stdin/-stdout/-stderr ports for the others).
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_virtio_console_default(uint32_t ctx_id,
#ifdef _WIN32
					void *input_handle,
					void *output_handle,
					void *err_handle
#else
					int input_fd,
					int output_fd,
					int err_fd
#endif
					);

/**
 * Not supported: adds a legacy serial port (ttyS*) on the given descriptors.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_serial_console_default(uint32_t ctx_id,
#ifdef _WIN32
					void *input_handle,
					void *output_handle
#else
					int input_fd,
					int output_fd
#endif
					);

/**
 * Not supported: adds an empty multiport virtio-console; would return its console ID.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_virtio_console_multiport(uint32_t ctx_id);

/**
 * Not supported: adds a terminal port "name" on descriptor "tty_fd" to a multiport console.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_console_port_tty(uint32_t ctx_id,
				  uint32_t console_id,
				  const char *name,
#ifdef _WIN32
				  void *tty_handle
#else
				  int tty_fd
#endif
				  );

/**
 * Not supported: adds a plain byte-stream port "name" (guest reads "input_fd", writes
 * "output_fd") to a multiport console.
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_add_console_port_inout(uint32_t ctx_id,
				    uint32_t console_id,
				    const char *name,
#ifdef _WIN32
				    void *input_handle,
				    void *output_handle
#else
				    int input_fd,
				    int output_fd
#endif
				    );

/**
 * Not supported (block devices): boot a root file system from "device" (a configured disk)
 * with "fstype" and mount "options".
 *
 * Returns:
 *  -ENOTSUP.
 */
int32_t krun_set_root_disk_remount(uint32_t ctx_id, const char *device, const char *fstype,
				   const char *options);

/* ---------------------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------------------- */

/**
 * Builds the VM from the context and runs it; the context is consumed. Standard input and
 * output become the guest console. Does not return once the guest has started: when the VM
 * ends, the process exits with the program's status (its exit code, or 128 + the signal
 * number), or with status 1 when the guest ended without reporting one or the init could
 * not set up the guest (a message says why); 126 when the program cannot be executed, 127
 * when it does not exist.
 *
 * Arguments:
 *  "ctx_id" - the context ID.
 *
 * Returns (only when the VM could not be started):
 *  -ENOENT  - unknown context, or no kernel (libkrunfw.so.5 not found and no krun_set_kernel).
 *  -EINVAL  - incomplete configuration (no root directory).
 *  -ENOTSUP - /dev/kvm is PVM nested virtualization, where a Linux guest cannot run
 *             (set KRUN_ALLOW_PVM=1 to try anyway).
 *  other    - the errno of the step that failed (opening /dev/kvm, setuid, ...).
 */
int32_t krun_start_enter(uint32_t ctx_id);

#ifdef __cplusplus
}
#endif

#endif /* _LIBKRUN_H */
