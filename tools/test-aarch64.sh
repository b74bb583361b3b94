#!/bin/sh
# test-aarch64.sh - build the context-switch smoke test (tests/arch/ctx-smoke.c)
# for aarch64 with Debian's cross compiler, statically, and run it under
# qemu-user: the assembly switch (plain and with BTI/PAC branch protection)
# and the ucontext fallback.  Then the same test natively, with the native
# assembly switch and with the ucontext fallback.  Exits non-zero on any
# failure.  Needs: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user.
set -eu
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/conc-ctx-smoke.$$
trap 'rm -f "$out"-*' EXIT INT TERM
CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Werror -Isrc"
CC_A64=${CC_A64:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}

run() {
  name=$1; shift
  echo "== $name"
  "$@"
}

$CC_A64 $CFLAGS -static -o "$out-a64" tests/arch/ctx-smoke.c \
  src/arch/ctx-aarch64.S -lm
run "aarch64 asm (qemu)" $QEMU "$out-a64"

$CC_A64 $CFLAGS -mbranch-protection=standard -static -o "$out-a64bti" \
  tests/arch/ctx-smoke.c src/arch/ctx-aarch64.S -lm
run "aarch64 asm, branch protection (qemu)" $QEMU "$out-a64bti"

$CC_A64 $CFLAGS -DCONC_CTX_FORCE_UCONTEXT -static -o "$out-a64uc" \
  tests/arch/ctx-smoke.c -lm
run "aarch64 ucontext (qemu)" $QEMU "$out-a64uc"

CC=${CC:-cc}
case $(uname -m) in
x86_64) arch_s=src/arch/ctx-x86_64.S ;;
aarch64) arch_s=src/arch/ctx-aarch64.S ;;
*) arch_s= ;;
esac
if [ -n "$arch_s" ]; then
  $CC $CFLAGS -o "$out-native" tests/arch/ctx-smoke.c "$arch_s" -lm
  run "native asm" "$out-native"
fi
$CC $CFLAGS -DCONC_CTX_FORCE_UCONTEXT -o "$out-nativeuc" tests/arch/ctx-smoke.c -lm
run "native ucontext" "$out-nativeuc"
echo "test-aarch64: all passed"
