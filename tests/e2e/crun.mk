# crun_harness (tests/e2e/crun_harness.c): crun's libkrun call sequence, run by tests/e2e/crun.sh.
# Public header only; libkrun.so.1 is found with dlopen at run time, as crun finds it.
$(BUILD)/tests/e2e/crun_harness: tests/e2e/crun_harness.c include/libkrun.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude $(SANFLAGS) $(CFLAGS) $< \
		$(KRUN_LDFLAGS) -ldl -o $@

TEST_BINS += $(BUILD)/tests/e2e/crun_harness
