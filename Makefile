# libkrun in C: one Makefile, out-of-tree build in $(BUILD). Components add rules in */*.mk.
BUILD   ?= build
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
CC      ?= gcc
V       ?= 0
SAN     ?= 0
Q       := $(if $(filter 1,$(V)),,@)

WARN    := -Wall -Wextra -Werror -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes \
           -Wshadow -Wvla
CFLAGS  ?= -O2 -g
comma := ,
SANFLAGS := $(if $(filter 1,$(SAN)),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined,)
KRUN_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Isrc -Iinclude -fPIC -fvisibility=hidden \
           -MMD -MP $(SANFLAGS) $(CFLAGS)
KRUN_LDFLAGS := $(SANFLAGS) $(LDFLAGS)
LIBS    := -lpthread -ldl

SONAME  := libkrun.so.1
VERSION := 1.0.0

LIB_SRCS := $(sort $(shell find src -name '*.c'))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/src/common/init_blob.o
CORE_LIB := $(BUILD)/libkrun-core.a

all: lib tools

# Components append to these.
TOOLS :=
TEST_BINS :=
CHECK_DEPS :=

include $(sort $(wildcard */*.mk tests/*/*.mk))

lib: $(BUILD)/$(SONAME) $(BUILD)/libkrun.pc
tools: $(TOOLS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(KRUN_CFLAGS) -c $< -o $@

$(BUILD)/obj/src/common/init_blob.o: src/common/init_blob.S $(BUILD)/init.krun
	@mkdir -p $(dir $@)
	$(Q)$(CC) -c -DINIT_BLOB_PATH='"$(BUILD)/init.krun"' $< -o $@

$(CORE_LIB): $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/$(SONAME): $(CORE_LIB) src/api/libkrun.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/api/libkrun.map \
		-Wl,--whole-archive $(CORE_LIB) -Wl,--no-whole-archive $(KRUN_LDFLAGS) $(LIBS) -o $@
	$(Q)ln -sf $(SONAME) $(BUILD)/libkrun.so

$(BUILD)/libkrun.pc: Makefile
	@mkdir -p $(BUILD)
	$(Q)printf 'prefix=%s\nlibdir=%s\nincludedir=%s\n\nName: libkrun\nDescription: %s\nVersion: %s\nLibs: -L$${libdir} -lkrun\nCflags: -I$${includedir}\n' \
		"$(PREFIX)" "$(LIBDIR)" "$(INCDIR)" "Run a program in a KVM microVM" "$(VERSION)" > $@

# Unit tests: every tests/unit/test_*.c is one binary linked with the core archive.
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
TEST_BINS += $(UNIT_BINS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(KRUN_CFLAGS) -Itests/unit $< $(CORE_LIB) $(KRUN_LDFLAGS) $(LIBS) -o $@

tests: $(TEST_BINS)

deps:
	$(Q)scripts/deps.sh build kernel test tcg

check: deps
	$(Q)$(MAKE) --no-print-directory all tests $(CHECK_DEPS)
	$(Q)BUILD=$(BUILD) tests/run.sh

check-asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all tests $(CHECK_DEPS)
	$(Q)BUILD=build-asan tests/run.sh

# Static analysis: clang-tidy's analyzer and a bugprone-* subset over the library and the init
# (docs/testing.md). Not in `check`: several minutes on 2 cores. One stamp per file, so
# `make -j2 tidy` is incremental; any header change re-checks everything.
TIDY ?= clang-tidy
TIDY_CHECKS := -*,clang-analyzer-*,-clang-analyzer-optin.performance.Padding,\
	-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,bugprone-*,\
	-bugprone-easily-swappable-parameters,-bugprone-narrowing-conversions,\
	-bugprone-implicit-widening-of-multiplication-result
# `if (strcmp(a, b))` and `!memcmp(...)` are the house style, not a bug.
TIDY_CONFIG := {Checks: '$(TIDY_CHECKS)', WarningsAsErrors: '*', CheckOptions: [{key: \
	bugprone-suspicious-string-compare.WarnOnImplicitComparison, value: false}]}
TIDY_SRCS := $(LIB_SRCS) $(filter-out init/test_%.c,$(wildcard init/*.c))
TIDY_HDRS := $(shell find src init include -name '*.h')

$(BUILD)/tidy/%.ok: %.c $(TIDY_HDRS) Makefile
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TIDY    $<")
	$(Q)$(TIDY) --quiet --config="$(TIDY_CONFIG)" --header-filter='/(src|init)/' $< -- \
		-std=gnu11 -D_GNU_SOURCE -Isrc -Iinclude -Iinit > $@.log 2>&1 || \
		{ grep -v 'warnings* generated' $@.log >&2; exit 1; }
	@touch $@

tidy: $(TIDY_SRCS:%.c=$(BUILD)/tidy/%.ok)

install: lib install-krunfw install-krun
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(BUILD)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libkrun.so
	install -m 0644 include/libkrun.h $(DESTDIR)$(INCDIR)/libkrun.h
	install -m 0644 $(BUILD)/libkrun.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libkrun.pc

clean:
	rm -rf $(BUILD) build-asan

.PHONY: all lib tools tests deps check check-asan tidy install clean
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
