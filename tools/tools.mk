# tcg_vm: chroot_vm's twin on QEMU TCG, our device backends over vhost-user (tools/tcg_vm*.c).
TCG_VM_SRCS := $(sort $(wildcard tools/tcg_vm*.c))
TCG_VM := $(BUILD)/tcg_vm
TOOLS += $(TCG_VM)

# The kernel the build produces (kernel/build.sh); KRUN_VMLINUX overrides it at run time.
$(TCG_VM): $(TCG_VM_SRCS) tools/tcg_vm.h examples/vm_options.c examples/vm_options.h $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TOOL    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) -Itools -Iexamples -DKRUN_DEFAULT_VMLINUX='"$(abspath $(BUILD))/vmlinux"' \
		$(TCG_VM_SRCS) examples/vm_options.c $(CORE_LIB) $(KRUN_LDFLAGS) $(LIBS) -o $@
