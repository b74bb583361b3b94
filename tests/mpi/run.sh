#!/usr/bin/env bash
# run.sh EXPECT PATTERN -- COMMAND... : run an MPI test under a hang bound.
#
# EXPECT is "ok" (the command must exit 0) or "fail" (it must exit non-zero,
# and not by the timeout).  PATTERN, if not empty, must occur in the
# combined output (an extended regular expression).  The command runs under
# `timeout` (CONC_MPI_TEST_TIMEOUT seconds, default 120), so a hung job fails
# the test instead of hanging ctest; the bound catches hangs, it never
# measures speed.
set -uo pipefail
expect="$1"; pattern="$2"; shift 2
[ "${1:-}" = "--" ] && shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Leak checks: LeakSanitizer cannot tell Open MPI's allocations (kept past
# MPI_Finalize, in components it has unloaded) from ours, so it is off
# here; test-mpi counts conc's own blocks through conc_set_allocator
# instead and fails if any is live at the end.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
limit="${CONC_MPI_TEST_TIMEOUT:-120}"
out="$(mktemp)"
supp="$(mktemp)"
trap 'rm -f "$out" "$supp"' EXIT
# Under TSan: the suppressions of tests/tsan.supp plus Open MPI's (TSan
# reads one file).
if [[ "${TSAN_OPTIONS:-}" == *suppressions=* ]]; then
  base="$(sed -n 's/.*suppressions=\([^:]*\).*/\1/p' <<<"$TSAN_OPTIONS")"
  cat "$base" "$(dirname "$0")/tsan.supp" >"$supp" 2>/dev/null
  TSAN_OPTIONS="${TSAN_OPTIONS//suppressions=$base/suppressions=$supp}"
  export TSAN_OPTIONS
fi
timeout --kill-after=10 "$limit" "$@" >"$out" 2>&1
rc=$?
cat "$out"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "run.sh: FAIL: the job hung (killed after ${limit}s)"; exit 1
fi
if [ "$expect" = ok ] && [ "$rc" -ne 0 ]; then
  echo "run.sh: FAIL: exit status $rc, want 0"; exit 1
fi
if [ "$expect" = fail ] && [ "$rc" -eq 0 ]; then
  echo "run.sh: FAIL: exit status 0, want a failure"; exit 1
fi
if [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$out"; then
  echo "run.sh: FAIL: output lacks /$pattern/"; exit 1
fi
echo "run.sh: ok (exit status $rc)"
