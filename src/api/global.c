/* krun_* calls that concern the process, not a context: logging, features, host limits. */
#include "api/api.h"
#include "common/init_blob.h"
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define LOG_MODULE "api"
#include "util/log.h"

int32_t krun_set_log_level(uint32_t level)
{
	if (level > KRUN_LOG_LEVEL_TRACE)
		return -EINVAL;
	log_set_level((enum log_level)level);
	return 0;
}

/* KRUN_LOG_LEVEL=0..5 in the environment, or -1. */
static int env_level(void)
{
	const char *s = getenv("KRUN_LOG_LEVEL");

	if (s && s[0] >= '0' && s[0] <= '5' && !s[1])
		return s[0] - '0';
	return -1;
}

int32_t krun_init_log(int target_fd, uint32_t level, uint32_t style, uint32_t options)
{
	int from_env;

	/* Standard input is never a log target; below -1 is not a descriptor. */
	if (target_fd < KRUN_LOG_TARGET_DEFAULT || target_fd == 0)
		return -EINVAL;
	if (level > KRUN_LOG_LEVEL_TRACE || style > KRUN_LOG_STYLE_NEVER)
		return -EINVAL;
	if (options & ~(uint32_t)KRUN_LOG_OPTION_NO_ENV)
		return -EINVAL;
	from_env = (options & KRUN_LOG_OPTION_NO_ENV) ? -1 : env_level();
	log_set_level((enum log_level)(from_env >= 0 ? (uint32_t)from_env : level));
	log_set_fd(target_fd);
	return 0;
}

int32_t krun_has_feature(uint64_t feature)
{
	switch (feature) {
	case KRUN_FEATURE_INIT_BLOB:
		return 1;
	case KRUN_FEATURE_NET:
	case KRUN_FEATURE_BLK:
	case KRUN_FEATURE_GPU:
	case KRUN_FEATURE_INPUT:
	case KRUN_FEATURE_TEE:
	case KRUN_FEATURE_AMD_SEV:
	case KRUN_FEATURE_INTEL_TDX:
	case KRUN_FEATURE_AWS_NITRO:
	case KRUN_FEATURE_VIRGL_RESOURCE_MAP2:
		return 0;
	default:
		return -EINVAL;
	}
}

int32_t krun_get_max_vcpus(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int n;

	if (fd < 0)
		return VMM_MAX_VCPUS;
	n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	close(fd);
	/* krun_set_vm_config accepts at most VMM_MAX_VCPUS whatever KVM allows. */
	if (n <= 0 || n > VMM_MAX_VCPUS)
		n = VMM_MAX_VCPUS;
	return n;
}

static bool param_enabled(const char *path)
{
	char buf[8] = "";
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] == '1' || buf[0] == 'Y' || buf[0] == 'y';
}

int32_t krun_check_nested_virt(void)
{
	return param_enabled("/sys/module/kvm_intel/parameters/nested") ||
	       param_enabled("/sys/module/kvm_amd/parameters/nested");
}

int32_t krun_get_default_init(const uint8_t **data_out, size_t *len_out)
{
	if (!data_out || !len_out)
		return -EINVAL;
	*data_out = krun_init_blob;
	*len_out = krun_init_blob_size;
	return 0;
}
