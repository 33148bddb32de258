# The freestanding x86-64 test guest (tests/guest) and its host driver on vmm_run.
GUEST_SRCS := tests/guest/entry.S tests/guest/guest.c tests/guest/guest_lib.c \
	tests/guest/guest_virtio.c tests/guest/guest_fs.c tests/guest/guest_balloon.c \
	tests/guest/guest_console_mp.c
GUEST_ELF := $(BUILD)/tests/guest/guest.elf
GUEST_HOST := $(BUILD)/tests/guest/host
# Only instructions PVM's emulator handles: no SSE/MMX/x87, no red zone, no PIC, no builtins
# that could turn loops into calls or string instructions.
GUEST_CFLAGS := -std=gnu11 $(WARN) -Isrc -O2 -ffreestanding -nostdlib -mno-sse -mno-mmx \
	-mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -no-pie -static -fno-builtin \
	-fno-tree-loop-distribute-patterns -fno-stack-protector -fno-asynchronous-unwind-tables \
	-Wl,-T,tests/guest/guest.ld -Wl,--build-id=none -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments

$(GUEST_ELF): $(GUEST_SRCS) tests/guest/guest.h tests/guest/guest.ld src/arch/x86_64/layout.h \
		src/common/krun_init.h tests/guest/guest.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(CC) $(GUEST_CFLAGS) $(GUEST_SRCS) -o $@

$(GUEST_HOST): tests/guest/host.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOST    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) $< $(CORE_LIB) $(KRUN_LDFLAGS) $(LIBS) -o $@

# Peers of bench/fs_rtt.sh: the host TSC rate (tools/tcg_vm_clock.c), fs_handle in-process, fstatat.
GUEST_RTT_PEER := $(BUILD)/tests/guest/fs_rtt_peer
$(GUEST_RTT_PEER): tests/guest/fs_rtt_peer.c tools/tcg_vm_clock.c tools/tcg_vm.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  HOST    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) -Itools tests/guest/fs_rtt_peer.c tools/tcg_vm_clock.c $(CORE_LIB) \
		$(KRUN_LDFLAGS) $(LIBS) -o $@

TEST_BINS += $(GUEST_ELF) $(GUEST_HOST) $(GUEST_RTT_PEER)
