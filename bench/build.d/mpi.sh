# bench/build.d/mpi.sh - workload M (issue 9: the MPI executor), sourced by
# bench/run.sh after the built-in programs.  Builds, with mpicc against
# build/bench's static libraries (libconc.a and libconc_mpi.a, the latter
# built here: run.sh builds only conc_static):
#   bench/out/bench-mpi       conc's MPI executor (bench/bench-mpi.c)
#   bench/out/anchor-mpi-raw  raw C MPI master/worker (the floor)
# The mpi4py.futures anchor (bench/anchor-mpi4py.py) needs no build.
# Open MPI (libopenmpi-dev, openmpi-bin) and python3-mpi4py are installed by
# run.sh (MPI_PKGS); when run.sh had to skip them (quick mode only), the
# whole workload is left out and said so.
if [[ " ${DRIVER_ARGS[*]-} " == *" --skip mpi "* ]]; then
  export CONC_BENCH_MPI_SKIP="Open MPI / mpi4py unavailable"
  DRIVER_ARGS+=(--skip-reason "workload M (MPI executor): Open MPI or mpi4py unavailable (quick mode)")
else
  command -v mpicc >/dev/null || die "mpicc missing (libopenmpi-dev)"
  if [ -z "$ANCHORS_ONLY" ]; then
    CONC_MPI_LIB=$ROOT/build/bench/libconc_mpi.a
    cmake --build build/bench --target conc_mpi -j "$(nproc)" >/dev/null ||
      die "building conc_mpi failed (cmake --build build/bench --target conc_mpi; is MPI found by cmake?)"
    build "$OUT/bench-mpi" "$B/bench-mpi.c $B/common.h $CONC_LIB $CONC_MPI_LIB" \
      mpicc $CFLAGS -I"$ROOT/include" "$B/bench-mpi.c" "$CONC_MPI_LIB" "$CONC_LIB" \
      -lpthread -lm -o "$OUT/bench-mpi"
  fi
  build "$OUT/anchor-mpi-raw" "$B/anchor-mpi-raw.c" \
    mpicc $CFLAGS "$B/anchor-mpi-raw.c" -o "$OUT/anchor-mpi-raw"
fi
