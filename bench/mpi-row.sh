#!/usr/bin/env bash
# bench/mpi-row.sh NET NP PROG ARGS... - one row of workload M under mpiexec
# (bench/rows_mpi.py).  NET: shm (btl self,vader, no single-copy mechanism:
# containers often refuse cross-memory attach) or tcp (btl self,tcp over
# loopback, as between machines).  NP ranks: rank 0 is the client.  PROG is
# a program in $CONC_BENCH_OUT (default bench/out) or a .py anchor in
# bench/, run by Debian's python3 under `-m mpi4py.futures`.  The driver
# sets OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) when it runs as root.
set -euo pipefail
net=$1 np=$2 prog=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out=${CONC_BENCH_OUT:-$here/out}
case $net in
  shm) mca=(--mca btl self,vader --mca btl_vader_single_copy_mechanism none) ;;
  tcp) mca=(--mca btl self,tcp --mca btl_tcp_if_include lo) ;;
  *) echo "mpi-row.sh: NET is shm or tcp" >&2; exit 2 ;;
esac
case $prog in
  *.py) cmd=(/usr/bin/python3 -m mpi4py.futures "$here/$prog") ;;
  *) cmd=("$out/$prog") ;;
esac
exec mpiexec --oversubscribe -n "$np" "${mca[@]}" "${cmd[@]}" "$@"
