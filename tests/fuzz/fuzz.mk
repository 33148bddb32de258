# libFuzzer targets (clang): `make fuzz` runs each for FUZZ_SECONDS; `make fuzz-smoke` briefly.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Isrc -Iinclude -fsanitize=fuzzer,address,undefined
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
# Sources each target needs besides itself (targets add theirs here), and extra flags.
FUZZ_SRCS_virtq := src/virtio/virtq.c src/vmm/gmem.c src/util/log.c
FUZZ_SRCS_vhost_user := src/virtio/vhost_user_req.c src/virtio/virtq.c src/virtio/device.c \
	src/vmm/gmem.c src/util/evloop.c src/util/iov.c src/util/log.c src/util/unixsock.c
FUZZ_SRCS_kernel_loader := src/arch/x86_64/boot.c src/vmm/gmem.c src/util/log.c
FUZZ_SRCS_api_parsers := src/api/ctx.c src/api/exec.c src/api/net.c src/api/shares.c \
	src/api/strv.c src/api/krunfw.c src/util/log.c $(wildcard src/util/unixsock.c) \
	init/config.c init/json.c init/oci.c
FUZZ_CFLAGS_api_parsers := -Iinit
FUZZ_SRCS_vsock := $(wildcard src/devices/vsock/*.c) src/virtio/virtq.c src/virtio/device.c \
	src/vmm/gmem.c src/util/iov.c src/util/log.c $(wildcard src/util/unixsock.c)
FUZZ_SRCS_fuse := $(wildcard src/devices/fs/fs*.c) src/util/iov.c src/util/log.c
FUZZ_SRCS_console := $(wildcard src/devices/console*.c) src/virtio/virtq.c src/virtio/device.c \
	src/vmm/gmem.c src/util/iov.c src/util/log.c
FUZZ_SRCS_tsi := src/devices/tsi/tsi_req.c src/util/log.c

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRCS) $(INIT_SRCS) tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_CFLAGS_$*) $< $(FUZZ_SRCS_$*) -o $@

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	$(Q)for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz/corpus-$$t; \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(BUILD)/fuzz/$$t- \
		$(BUILD)/fuzz/corpus-$$t \
		tests/fuzz/corpus/$$t || exit 1; done

fuzz-smoke:
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

.PHONY: fuzz fuzz-build fuzz-smoke
