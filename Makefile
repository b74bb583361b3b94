# conc - front door.  `make demo` runs the walkthrough, `make test` the whole
# suite in every build of the matrix, `make bench` the benchmarks.  Each
# installs the Debian packages it needs first (only those missing).
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
CONFIGS ?= gcc clang asan tsan

DEPS_BUILD := build-essential cmake pkg-config clang libclang-rt-14-dev check g++ \
  libcurl4-openssl-dev libxml2-dev
# nginx serves conc-crawl's local site (tools/crawl-site.sh); tinyproxy is
# the real proxy of conc-proxy-pool's test.  Open MPI: the MPI executor.
DEPS_DEMO := $(DEPS_BUILD) nginx
DEPS_TEST := $(DEPS_BUILD) nginx tinyproxy gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
  libopenmpi-dev openmpi-bin

CMAKE_gcc := -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++
CMAKE_clang := -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
CMAKE_asan := $(CMAKE_clang) -DCONC_SANITIZE=address,undefined
CMAKE_tsan := $(CMAKE_clang) -DCONC_SANITIZE=thread

# Sanitizer runtime settings for the test runs.
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp

.PHONY: all demo test bench deps-test deps-demo build-% test-% clean api-coverage consumers test-aarch64

all: build-gcc

deps-test:
	@tools/deps.sh $(DEPS_TEST)
deps-demo:
	@tools/deps.sh $(DEPS_DEMO)

build-%:
	@cmake -S . -B $(BUILD)/$* -DCMAKE_BUILD_TYPE=RelWithAssert $(CMAKE_$*) >/dev/null
	@cmake --build $(BUILD)/$* -j $(JOBS)

# TSan needs a fixed address-space layout on kernels with large mmap
# randomisation; setarch -R disables ASLR for the test processes.
RUN_tsan := setarch $$(uname -m) -R

test-%: build-%
	@echo "=== tests: $* ==="
	@cd $(BUILD)/$* && $(RUN_$*) ctest --output-on-failure -j $(JOBS)

test: deps-test
	@for c in $(CONFIGS); do $(MAKE) --no-print-directory test-$$c || exit 1; done
	@$(MAKE) --no-print-directory api-coverage consumers test-aarch64

# The aarch64 context switch, cross-compiled and run under qemu-user.
test-aarch64:
	@echo "=== tests: aarch64 context switch (qemu-user) ==="
	@tools/test-aarch64.sh

api-coverage:
	@tools/api-coverage.sh

consumers: build-gcc
	@tools/consumers.sh $(BUILD)

demo: deps-demo build-gcc
	@tools/demo.sh $(BUILD)/gcc

bench: deps-test
	@bench/run.sh

clean:
	rm -rf $(BUILD)
