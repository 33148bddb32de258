# Kernel bundle tests: the libkrunfw ABI checker (tests/kernel/run.sh also boots vmlinux under QEMU TCG).
KRUNFW_CHECK := $(BUILD)/tests/kernel/krunfw_check
TEST_BINS += $(KRUNFW_CHECK)

$(KRUNFW_CHECK): tests/kernel/krunfw_check.c kernel/libkrunfw.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) -Ikernel $< $(KRUN_LDFLAGS) -ldl -o $@
