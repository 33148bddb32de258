# The public examples (chroot_vm, jailer, isolate), built only against include/libkrun.h and linked to libkrun.so.1.
EXAMPLE_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Iexamples $(SANFLAGS) $(CFLAGS)

$(BUILD)/chroot_vm: examples/chroot_vm.c examples/vm_options.c examples/vm_options.h \
		include/libkrun.h $(BUILD)/$(SONAME)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(EXAMPLE_CFLAGS) examples/chroot_vm.c examples/vm_options.c $(BUILD)/$(SONAME) \
		-Wl,-rpath,'$$ORIGIN' $(KRUN_LDFLAGS) -o $@

TOOLS += $(BUILD)/chroot_vm

# jailer (one VM per request) and isolate (a helper VM behind pipes): single-file examples.
$(BUILD)/jailer $(BUILD)/isolate: $(BUILD)/%: examples/%.c include/libkrun.h $(BUILD)/$(SONAME)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(EXAMPLE_CFLAGS) $< $(BUILD)/$(SONAME) -Wl,-rpath,'$$ORIGIN' $(KRUN_LDFLAGS) -o $@

TOOLS += $(BUILD)/jailer $(BUILD)/isolate
