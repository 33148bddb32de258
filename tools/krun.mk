# krun, the command for people (tools/krun.c): public API only, linked to libkrun.so.1.
KRUN_CMD_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -DKRUN_VERSION='"$(VERSION)"' \
	$(SANFLAGS) $(CFLAGS)

$(BUILD)/krun: tools/krun.c include/libkrun.h $(BUILD)/$(SONAME)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(KRUN_CMD_CFLAGS) tools/krun.c $(BUILD)/$(SONAME) -Wl,-rpath,'$$ORIGIN' \
		$(KRUN_LDFLAGS) -o $@

TOOLS += $(BUILD)/krun

# The command and its manual page; `make install` runs this once the lead lists it there.
install-krun: $(BUILD)/krun
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/krun $(DESTDIR)$(PREFIX)/bin/krun
	install -m 0644 docs/krun.1 $(DESTDIR)$(PREFIX)/share/man/man1/krun.1

.PHONY: install-krun
