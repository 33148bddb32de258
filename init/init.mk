# The static guest init, embedded into libkrun.so (src/common/init_blob.S).
INIT_SRCS := $(sort $(wildcard init/*.c))
INIT_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -Os -static -s -ffunction-sections \
	-fdata-sections -Wl,--gc-sections

$(BUILD)/init.krun: $(INIT_SRCS) $(wildcard init/*.h) src/common/krun_init.h init/init.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  INIT    $@")
	$(Q)$(CC) $(INIT_CFLAGS) $(INIT_SRCS) -o $@
