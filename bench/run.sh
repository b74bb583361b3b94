#!/usr/bin/env bash
# bench/run.sh - what `make bench` runs (see bench/README.md).
#
#   bench/run.sh                      full run: N = 10^6, 5 interleaved rounds,
#                                     writes bench/RESULTS.md (~10-15 min)
#   CONC_BENCH_QUICK=1 bench/run.sh   CI: tiny N, 1 round, every row still
#                                     self-checked; writes bench/out/RESULTS-quick.md
#
# 1. installs the missing Debian packages (tools/deps.sh); in full mode an
#    anchor whose package cannot be installed fails the run; in quick mode
#    Go may be skipped (said so in the output) if golang-go cannot be had;
# 2. builds conc (-O2 -DNDEBUG, static) into build/bench;
# 3. builds the benchmark programs into bench/out/;
# 4. runs bench/driver.py, which runs the rows, prints the table and exits
#    non-zero if any row failed its self-check.
#
# CONC_BENCH_ANCHORS_ONLY=1 leaves conc's rows out (for working on the
# harness while the pool does not build); CONC_BENCH_ROUNDS=K overrides the
# number of rounds; CONC_BENCH_ONLY=REGEX keeps the rows whose workload
# number or implementation matches.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
QUICK=${CONC_BENCH_QUICK:-0}
[ "$QUICK" = 0 ] && QUICK=
ANCHORS_ONLY=${CONC_BENCH_ANCHORS_ONLY:-}
[ "$ANCHORS_ONLY" = 0 ] && ANCHORS_ONLY=
mkdir -p "$OUT"

say() { echo "bench: $*" >&2; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

# ---- 1. packages ------------------------------------------------------------
CORE_PKGS="build-essential cmake pkg-config g++ libtbb-dev libuv1-dev python3 strace libboost-context-dev libboost-fiber-dev python3-uvloop"
HEAVY_PKGS="golang-go"
MPI_PKGS="python3-mpi4py openmpi-bin libopenmpi-dev"  # workload 9 (mpi4py), workload M (bench/build.d/mpi.sh)
DRIVER_ARGS=()
tools/deps.sh $CORE_PKGS || die "cannot install $CORE_PKGS"
if [ -n "$QUICK" ]; then
  if ! timeout 600 tools/deps.sh $HEAVY_PKGS; then
    say "SKIPPING the Go anchors: golang-go could not be installed in time (quick mode)"
    DRIVER_ARGS+=(--skip go --skip-reason "Go anchors: golang-go could not be installed (quick mode)")
  fi
  if ! timeout 600 tools/deps.sh $MPI_PKGS; then
    say "SKIPPING the mpi4py anchors: $MPI_PKGS could not be installed in time (quick mode)"
    DRIVER_ARGS+=(--skip mpi --skip-reason "mpi4py anchors: $MPI_PKGS could not be installed (quick mode)")
  elif ! OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 60 \
      mpiexec -n 1 --oversubscribe /usr/bin/python3 -c \
      'from mpi4py.futures import MPIPoolExecutor as E; assert E(max_workers=1).submit(abs, -2).result() == 2' \
      >/dev/null 2>&1; then
    # containers without shared memory or ptrace for Open MPI: say so, go on
    say "SKIPPING the mpi4py anchors: mpiexec cannot start an MPIPoolExecutor here (quick mode)"
    DRIVER_ARGS+=(--skip mpi --skip-reason "mpi4py anchors: mpiexec cannot start an MPIPoolExecutor here (quick mode)")
  fi
else
  tools/deps.sh $HEAVY_PKGS || die "cannot install $HEAVY_PKGS (the Go anchors are required in a full run)"
  tools/deps.sh $MPI_PKGS || die "cannot install $MPI_PKGS (the mpi4py anchors are required in a full run)"
fi
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing"

# ---- 2. conc ----------------------------------------------------------------
CONC_LIB=$ROOT/build/bench/libconc.a
if [ -z "$ANCHORS_ONLY" ]; then
  say "building conc (Release, -O2) in build/bench"
  cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release \
    "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
    -DCONC_WERROR=OFF -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF >/dev/null ||
    die "cmake configure failed"
  cmake --build build/bench --target conc_static -j "$(nproc)" >/dev/null ||
    die "building conc failed (cmake --build build/bench --target conc_static)"
else
  say "CONC_BENCH_ANCHORS_ONLY set: conc rows left out"
  DRIVER_ARGS+=(--skip conc --skip-reason "conc rows (CONC_BENCH_ANCHORS_ONLY=1)")
fi

# ---- 3. programs --------------------------------------------------------------
CFLAGS="-O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror"
CXXFLAGS="-O2 -std=c++17 -D_GNU_SOURCE -Wall -Wextra -Werror"
B=$ROOT/bench

# stale TARGET DEP...: true when TARGET is missing or older than a DEP
stale() {
  local t=$1 d
  shift
  [ -e "$t" ] || return 0
  for d in "$@"; do [ "$d" -nt "$t" ] && return 0; done
  return 1
}
# build TARGET "DEPS" COMMAND...
build() {
  local t=$1 deps=$2
  shift 2
  if stale "$t" $deps; then
    say "cc ${t#$ROOT/}"
    "$@" || die "building ${t#$ROOT/} failed"
  fi
}

if [ -z "$ANCHORS_ONLY" ]; then
  for b in submit roundtrip map fib imbalanced memory idle; do
    build "$OUT/bench-$b" "$B/bench-$b.c $B/common.h $B/conc-bench.h $CONC_LIB" \
      gcc $CFLAGS -I"$ROOT/include" "$B/bench-$b.c" "$CONC_LIB" -lpthread -lm \
      -o "$OUT/bench-$b"
  done
  # workload C: coroutines (includes src/ctx.h for the raw switch)
  build "$OUT/bench-coro" "$B/bench-coro.c $B/common.h $ROOT/src/ctx.h $CONC_LIB" \
    gcc $CFLAGS -I"$ROOT/include" "$B/bench-coro.c" "$CONC_LIB" -lpthread -lm \
    -o "$OUT/bench-coro"
  # workload 9: the process pool (its fork server re-executes this binary)
  build "$OUT/bench-procpool" "$B/bench-procpool.c $B/procpool-common.h $B/common.h $CONC_LIB" \
    gcc $CFLAGS -I"$ROOT/include" "$B/bench-procpool.c" "$CONC_LIB" -lpthread -lm \
    -o "$OUT/bench-procpool"
fi
build "$OUT/anchor-forkpipe" "$B/anchor-forkpipe.c $B/procpool-common.h $B/common.h" \
  gcc $CFLAGS "$B/anchor-forkpipe.c" -lm -o "$OUT/anchor-forkpipe"
build "$OUT/anchor-pthread" "$B/anchor-pthread.c $B/pthread-pool.c $B/pthread-pool.h $B/common.h" \
  gcc $CFLAGS "$B/anchor-pthread.c" "$B/pthread-pool.c" -lpthread -lm -o "$OUT/anchor-pthread"
build "$OUT/anchor-tbb" "$B/anchor-tbb.cpp $B/common.h" \
  g++ $CXXFLAGS "$B/anchor-tbb.cpp" $(pkg-config --cflags --libs tbb) -lpthread -o "$OUT/anchor-tbb"
build "$OUT/anchor-omp" "$B/anchor-omp.c $B/common.h" \
  gcc $CFLAGS -fopenmp "$B/anchor-omp.c" -lm -o "$OUT/anchor-omp"
build "$OUT/anchor-uv" "$B/anchor-uv.c $B/common.h" \
  gcc $CFLAGS "$B/anchor-uv.c" $(pkg-config --cflags --libs libuv) -lpthread -lm -o "$OUT/anchor-uv"
build "$OUT/anchor-boost-coro" "$B/anchor-boost-coro.cpp $B/common.h" \
  g++ $CXXFLAGS "$B/anchor-boost-coro.cpp" -lboost_fiber -lboost_context -lpthread -o "$OUT/anchor-boost-coro"
build "$OUT/physical" "$B/physical.c $B/common.h $B/procpool-common.h" \
  gcc $CFLAGS "$B/physical.c" -lpthread -lm -o "$OUT/physical"

GO=
if [ -x /usr/lib/go-1.19/bin/go ]; then GO=/usr/lib/go-1.19/bin/go; else GO=$(command -v go || true); fi
if [[ " ${DRIVER_ARGS[*]-} " != *" go "* ]]; then
  [ -n "$GO" ] || die "no go toolchain"
  # offline, no modules: one file, the standard library only
  build "$OUT/anchor-go" "$B/anchor-go.go" \
    env GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" GOFLAGS=-mod=mod GOPROXY=off \
    GO111MODULE= "$GO" build -o "$OUT/anchor-go" "$B/anchor-go.go"
  build "$OUT/anchor-go-coro" "$B/anchor-go-coro.go" \
    env GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" GOFLAGS=-mod=mod GOPROXY=off \
    GO111MODULE= "$GO" build -o "$OUT/anchor-go-coro" "$B/anchor-go-coro.go"
  export CONC_BENCH_GO=$GO
fi

# ---- 3b. workloads kept in their own files (bench/build.d/*.sh, sourced:
# they use build, say, die, $OUT, $B, $CONC_LIB, $QUICK, $ANCHORS_ONLY and
# may install their own packages with tools/deps.sh and add DRIVER_ARGS).
for f in "$B"/build.d/*.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  . "$f"
done

# ---- 4. run -------------------------------------------------------------------
if [ -n "$QUICK" ]; then
  DRIVER_ARGS+=(--quick --results "$OUT/RESULTS-quick.md")
else
  DRIVER_ARGS+=(--results "$B/RESULTS.md")
fi
[ -n "${CONC_BENCH_ROUNDS:-}" ] && DRIVER_ARGS+=(--rounds "$CONC_BENCH_ROUNDS")
[ -n "${CONC_BENCH_ONLY:-}" ] && DRIVER_ARGS+=(--only "$CONC_BENCH_ONLY")
say "running the rows${QUICK:+ (quick mode)}"
exec /usr/bin/python3 "$B/driver.py" --out "$OUT" "${DRIVER_ARGS[@]}"
