# tests/fuse: our FUSE server mounted on the host through /dev/fuse (test-only program).
FUSE_MOUNT := $(BUILD)/tests/fuse/fuse_mount
TEST_BINS += $(FUSE_MOUNT)

$(FUSE_MOUNT): tests/fuse/fuse_mount.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) $< $(CORE_LIB) $(KRUN_LDFLAGS) $(LIBS) -o $@
