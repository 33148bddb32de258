/* vmm_run with results for callers that want more than the return code (tests, benchmarks). */
#ifndef KRUN_VMM_VMM_RUN_H
#define KRUN_VMM_VMM_RUN_H

#include <stdint.h>

#include "vmm/vmm.h"

struct vmm_result {
	/* Status the test guest wrote to LAYOUT_PORT_TEST_EXIT, or -1 (Linux guests never do). */
	int test_status;
	/* Nanoseconds from vmm_run's start to the guest's first LAYOUT_PORT_TEST_MARK write
	 * (the test guest's first instruction), or 0; and to the end of teardown. */
	uint64_t first_insn_ns;
	uint64_t total_ns;
	/* Per-device DEVICE_NEEDS_RESET at the end (bit i = cfg->devices[i]). */
	uint32_t needs_reset_mask;
};

/* vmm_run, filling *res (may be NULL). */
int vmm_run_ex(struct vmm_config *cfg, struct vmm_result *res) __attribute__((warn_unused_result));

#endif
