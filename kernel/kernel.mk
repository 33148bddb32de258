# Guest kernel: vmlinux from kernel/build.sh (cached outside the tree), flattened into libkrunfw.so.5.
KRUNFW_SO  := $(BUILD)/libkrunfw.so.5
KERNEL_OUT := $(BUILD)/kernel
# No sanitizer flags: the library is dlopened by uninstrumented programs too.
KRUNFW_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden -MMD -MP $(CFLAGS)

TOOLS += $(KRUNFW_SO)

# build.sh keys its cache on the fragment, itself, the linux-source version and gcc; on a key
# hit it only copies. Its messages go to stderr so `make -s kernel-path` prints just the path.
$(BUILD)/vmlinux: kernel/config.fragment kernel/build.sh
	@mkdir -p $(BUILD)
	@$(if $(Q),echo "  KERNEL  $@ (first build takes minutes)" >&2)
	$(Q)kernel/build.sh $(BUILD) >&2

$(BUILD)/obj/kernel/flatten.o: kernel/flatten.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(KRUNFW_CFLAGS) -c $< -o $@

$(KERNEL_OUT)/flatten: $(BUILD)/obj/kernel/flatten.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $< $(LDFLAGS) -o $@

$(KERNEL_OUT)/vmlinux.bin $(KERNEL_OUT)/krunfw_layout.h &: $(BUILD)/vmlinux $(KERNEL_OUT)/flatten
	@$(if $(Q),echo "  FLATTEN $<")
	$(Q)$(KERNEL_OUT)/flatten $(BUILD)/vmlinux $(KERNEL_OUT)/vmlinux.bin $(KERNEL_OUT)/krunfw_layout.h

$(BUILD)/obj/kernel/krunfw.o: kernel/krunfw.c $(KERNEL_OUT)/krunfw_layout.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KRUNFW_CFLAGS) -Ikernel -I$(KERNEL_OUT) -c $< -o $@

$(BUILD)/obj/kernel/krunfw_image.o: kernel/krunfw_image.S $(KERNEL_OUT)/vmlinux.bin
	@mkdir -p $(dir $@)
	$(Q)$(CC) -c -DKRUNFW_IMAGE_PATH='"$(KERNEL_OUT)/vmlinux.bin"' $< -o $@

$(KRUNFW_SO): $(BUILD)/obj/kernel/krunfw.o $(BUILD)/obj/kernel/krunfw_image.o kernel/libkrunfw.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libkrunfw.so.5 -Wl,--version-script=kernel/libkrunfw.map \
		-Wl,-z,noexecstack $(filter %.o,$^) $(LDFLAGS) -o $@
	$(Q)ln -sf libkrunfw.so.5 $(BUILD)/libkrunfw.so

# Prints the absolute path of the guest vmlinux (building it if needed).
kernel-path: $(BUILD)/vmlinux
	@echo "$(abspath $(BUILD)/vmlinux)"

install-krunfw: $(KRUNFW_SO)
	install -d $(DESTDIR)$(LIBDIR)
	install -m 0755 $(KRUNFW_SO) $(DESTDIR)$(LIBDIR)/libkrunfw.so.5
	ln -sf libkrunfw.so.5 $(DESTDIR)$(LIBDIR)/libkrunfw.so

.PHONY: kernel-path install-krunfw
