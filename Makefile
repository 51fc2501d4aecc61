# The two quick-start commands: `make demo` and `make check`.
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all deps build demo check check-full check-under-load bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)

# Every test: unit and integration (real vssd, real writers, loop devices where needed), then the
# same suite built with ASan+UBSan, then the daemon and writers under valgrind.
check: build
	bash scripts/check.sh $(BUILD) $(ASAN_BUILD)

# The same with the heavy scenarios at the full count the issues ask for.
check-full: build
	OPENVSS_CHECK_FULL=1 bash scripts/check.sh $(BUILD) $(ASAN_BUILD)

# make check three times in a row with stress-ng loading the machine beside it.
check-under-load: build
	bash scripts/check-under-load.sh $(BUILD) $(ASAN_BUILD)

# Every benchmark, then issue 14's table with the targets (bench/run-all.sh). ROUNDS sets the rounds.
bench: build
	bash bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
