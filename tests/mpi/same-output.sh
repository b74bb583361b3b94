#!/usr/bin/env bash
# same-output.sh PROG MPIEXEC... : the same program prints the same lines on
# a thread pool, a process pool and MPI.  Runs `PROG --threads` and
# `PROG --processes` alone and `MPIEXEC... PROG --mpi` (MPIEXEC holds
# mpiexec and its options), keeps the lines that start with "result" and
# compares them.
set -uo pipefail
prog="$1"; shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export CONC_EXAMPLE_SLEEP_SCALE="${CONC_EXAMPLE_SLEEP_SCALE:-0.01}"
limit="${CONC_MPI_TEST_TIMEOUT:-120}"
supp="$(mktemp)"
trap 'rm -f "$supp"' EXIT
if [[ "${TSAN_OPTIONS:-}" == *suppressions=* ]]; then # as in run.sh
  base="$(sed -n 's/.*suppressions=\([^:]*\).*/\1/p' <<<"$TSAN_OPTIONS")"
  cat "$base" "$(dirname "$0")/tsan.supp" >"$supp" 2>/dev/null
  TSAN_OPTIONS="${TSAN_OPTIONS//suppressions=$base/suppressions=$supp}"
  export TSAN_OPTIONS
fi
t="$(timeout "$limit" "$prog" --threads)" || { echo "FAIL: $prog --threads"; exit 1; }
a="$(timeout "$limit" "$prog" --processes)" || { echo "FAIL: $prog --processes"; exit 1; }
b="$(timeout "$limit" "$@" "$prog" --mpi)" || { echo "FAIL: $* $prog --mpi"; exit 1; }
t="$(grep '^result' <<<"$t")"
a="$(grep '^result' <<<"$a")"; b="$(grep '^result' <<<"$b")"
echo "thread pool:"; echo "$t"; echo "process pool:"; echo "$a"; echo "MPI:"; echo "$b"
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$t" ] ||
  { echo "same-output: FAIL: outputs differ"; exit 1; }
echo "same-output: ok"
