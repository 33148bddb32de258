/* Public functions this implementation does not support: present so every client links. */
#include "api/api.h"

#include <errno.h>

#define LOG_MODULE "api"
#include "util/log.h"

/* Stubs ignore their arguments by design; naming each one in a (void) cast adds nothing. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static int32_t unsupported(const char *fn)
{
	log_warn("%s is not supported", fn);
	return -ENOTSUP;
}

int32_t krun_set_root_disk(uint32_t ctx_id, const char *disk_path)
{
	return unsupported(__func__);
}

int32_t krun_set_data_disk(uint32_t ctx_id, const char *disk_path)
{
	return unsupported(__func__);
}

int32_t krun_add_disk(uint32_t ctx_id, const char *block_id, const char *disk_path, bool read_only)
{
	return unsupported(__func__);
}

int32_t krun_add_disk2(uint32_t ctx_id, const char *block_id, const char *disk_path,
		       uint32_t disk_format, bool read_only)
{
	return unsupported(__func__);
}

int32_t krun_add_disk3(uint32_t ctx_id, const char *block_id, const char *disk_path,
		       uint32_t disk_format, bool read_only, bool direct_io, uint32_t sync_mode)
{
	return unsupported(__func__);
}

int32_t krun_set_root_disk_remount(uint32_t ctx_id, const char *device, const char *fstype,
				   const char *options)
{
	return unsupported(__func__);
}

int32_t krun_add_net_unixstream(uint32_t ctx_id, const char *c_path, int fd, uint8_t *const c_mac,
				uint32_t features, uint32_t flags)
{
	return unsupported(__func__);
}

int32_t krun_add_net_unixgram(uint32_t ctx_id, const char *c_path, int fd, uint8_t *const c_mac,
			      uint32_t features, uint32_t flags)
{
	return unsupported(__func__);
}

int32_t krun_add_net_tap(uint32_t ctx_id, char *c_tap_name, uint8_t *const c_mac,
			 uint32_t features, uint32_t flags)
{
	return unsupported(__func__);
}

int32_t krun_set_passt_fd(uint32_t ctx_id, int fd)
{
	return unsupported(__func__);
}

int32_t krun_set_gvproxy_path(uint32_t ctx_id, char *c_path)
{
	return unsupported(__func__);
}

int32_t krun_set_net_mac(uint32_t ctx_id, uint8_t *const c_mac)
{
	return unsupported(__func__);
}

int32_t krun_add_display(uint32_t ctx_id, uint32_t width, uint32_t height)
{
	return unsupported(__func__);
}

int32_t krun_display_set_edid(uint32_t ctx_id, uint32_t display_id, const uint8_t *edid_blob,
			      size_t blob_size)
{
	return unsupported(__func__);
}

int32_t krun_display_set_dpi(uint32_t ctx_id, uint32_t display_id, uint32_t dpi)
{
	return unsupported(__func__);
}

int32_t krun_display_set_physical_size(uint32_t ctx_id, uint32_t display_id, uint16_t width_mm,
				       uint16_t height_mm)
{
	return unsupported(__func__);
}

int32_t krun_display_set_refresh_rate(uint32_t ctx_id, uint32_t display_id, uint32_t refresh_rate)
{
	return unsupported(__func__);
}

int32_t krun_set_display_backend(uint32_t ctx_id, const void *display_backend, size_t backend_size)
{
	return unsupported(__func__);
}

int32_t krun_set_display(uint32_t ctx_id, uint32_t display_id, uint32_t width, uint32_t height)
{
	return unsupported(__func__);
}

int krun_add_input_device(uint32_t ctx_id, const void *config_backend, size_t config_backend_size,
			  const void *events_backend, size_t events_backend_size)
{
	return unsupported(__func__);
}

int krun_add_input_device_fd(uint32_t ctx_id, int input_fd)
{
	return unsupported(__func__);
}

int32_t krun_set_snd_device(uint32_t ctx_id, bool enable)
{
	return unsupported(__func__);
}

int32_t krun_add_vhost_user_device(uint32_t ctx_id, uint32_t device_type, const char *socket_path,
				   const char *name, uint16_t num_queues,
				   const uint16_t *queue_sizes)
{
	return unsupported(__func__);
}

int32_t krun_set_smbios_oem_strings(uint32_t ctx_id, const char *const oem_strings[])
{
	return unsupported(__func__);
}

int32_t krun_set_firmware(uint32_t ctx_id, const char *firmware_path)
{
	return unsupported(__func__);
}

int32_t krun_set_tee_config_file(uint32_t ctx_id, const char *filepath)
{
	return unsupported(__func__);
}

int32_t krun_add_vsock(uint32_t ctx_id, uint32_t tsi_features)
{
	return unsupported(__func__);
}

int32_t krun_disable_implicit_vsock(uint32_t ctx_id)
{
	return unsupported(__func__);
}

int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled)
{
	return unsupported(__func__);
}

int32_t krun_disable_implicit_console(uint32_t ctx_id)
{
	return unsupported(__func__);
}

int32_t krun_disable_implicit_init(uint32_t ctx_id)
{
	return unsupported(__func__);
}

int32_t krun_fs_add_overlay_file(uint32_t ctx_id, const char *fs_tag, const char *path,
				 const uint8_t *data, size_t data_len, uint32_t mode, bool one_shot)
{
	return unsupported(__func__);
}

int32_t krun_fs_add_overlay_dir(uint32_t ctx_id, const char *fs_tag, const char *path,
				uint32_t mode)
{
	return unsupported(__func__);
}

int32_t krun_set_kernel_console(uint32_t ctx_id, const char *console_id)
{
	return unsupported(__func__);
}

int32_t krun_add_virtio_console_default(uint32_t ctx_id, int input_fd, int output_fd, int err_fd)
{
	return unsupported(__func__);
}

int32_t krun_add_serial_console_default(uint32_t ctx_id, int input_fd, int output_fd)
{
	return unsupported(__func__);
}

int32_t krun_add_virtio_console_multiport(uint32_t ctx_id)
{
	return unsupported(__func__);
}

int32_t krun_add_console_port_tty(uint32_t ctx_id, uint32_t console_id, const char *name,
				  int tty_fd)
{
	return unsupported(__func__);
}

int32_t krun_add_console_port_inout(uint32_t ctx_id, uint32_t console_id, const char *name,
				    int input_fd, int output_fd)
{
	return unsupported(__func__);
}
