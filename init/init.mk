# The static guest init, embedded into libkrun.so (src/common/init_blob.S), and a host unit
# test of its parsers (records, JSON, OCI).
INIT_SRCS := $(filter-out init/test_%.c,$(sort $(wildcard init/*.c)))
# musl makes the init ~65 KiB instead of ~710 KiB with static glibc; both work.
INIT_CC ?= $(if $(shell command -v musl-gcc 2>/dev/null),musl-gcc,$(CC))
INIT_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -Os -static -s -ffunction-sections \
	-fdata-sections -Wl,--gc-sections

$(BUILD)/init.krun: $(INIT_SRCS) $(wildcard init/*.h) src/common/krun_init.h init/init.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  INIT    $@")
	$(Q)$(INIT_CC) $(INIT_CFLAGS) $(INIT_SRCS) -o $@

INIT_TEST_SRCS := init/test_init.c init/config.c init/json.c init/oci.c

$(BUILD)/tests/unit/test_init_parsers: $(INIT_TEST_SRCS) $(wildcard init/*.h) init/init.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -Itests/unit -O1 -g $(SANFLAGS) \
		$(INIT_TEST_SRCS) -o $@

TEST_BINS += $(BUILD)/tests/unit/test_init_parsers
