# The two quick-start commands: `make demo` and `make check`.
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build demo check check-full check-under-load bench clean

all: build

# Installs the Debian packages the build and the tests need (apt-get, as root). Plain `make` never
# does: demo and check (the quick start's two commands) and CI ask for it.
deps:
	@bash scripts/install-deps.sh

# werror is off by default for distribution builds (meson.build); every build of ours keeps it.
$(BUILD)/build.ninja:
	meson setup -Dwerror=true $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: deps
	$(MAKE) build
	bash scripts/demo.sh $(BUILD)

# Every test: unit and integration (real vssd, real writers, loop devices where needed), then the
# same suite built with ASan+UBSan, then the daemon and writers under valgrind.
check: deps
	$(MAKE) build
	bash scripts/check.sh $(BUILD) $(ASAN_BUILD)

# The same with the heavy scenarios at the full count the issues ask for.
check-full: deps
	$(MAKE) build
	OPENVSS_CHECK_FULL=1 bash scripts/check.sh $(BUILD) $(ASAN_BUILD)

# make check three times in a row with stress-ng loading the machine beside it.
check-under-load: deps
	$(MAKE) build
	bash scripts/check-under-load.sh $(BUILD) $(ASAN_BUILD)

# Every benchmark, then issue 14's table with the targets (bench/run-all.sh). ROUNDS sets the rounds.
bench: build
	bash bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
