# The public example chroot_vm, built only against include/libkrun.h and linked to libkrun.so.1.
EXAMPLE_CFLAGS := -std=gnu11 $(WARN) -Iinclude $(SANFLAGS) $(CFLAGS)

$(BUILD)/chroot_vm: examples/chroot_vm.c include/libkrun.h $(BUILD)/$(SONAME)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $< $(BUILD)/$(SONAME) -Wl,-rpath,'$$ORIGIN' $(KRUN_LDFLAGS) -o $@

TOOLS += $(BUILD)/chroot_vm
