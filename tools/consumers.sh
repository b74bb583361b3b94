#!/usr/bin/env bash
# consumers.sh BUILD_ROOT - build user projects against the *installed* conc.
#
# Installs BUILD_ROOT/gcc into a temporary prefix (cmake --install), checks
# the shared library (soname libconc.so.0, only conc_* symbols exported),
# then builds the consumer programs of tests/consumer/ (a C and a C++
# program that submit a task and check its result) four ways:
#   pkg-config, shared      cc/c++ ... $(pkg-config --cflags --libs conc)
#   pkg-config, static      cc/c++ -static ... $(pkg-config --static ...)
#   CMake find_package      conc::conc and conc::conc_static
# and runs each, checking that it uses the installed library.  Where conc
# was built with MPI, also the MPI consumer (tests/consumer/mpi/) through
# conc-mpi.pc and find_package(conc COMPONENTS mpi), run under mpiexec -n 2.
# Any failure
# stops the script with a message and a non-zero status; the temporary
# directory is removed either way.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build_root="${1:?usage: tools/consumers.sh BUILD_ROOT}"
build="$build_root/gcc"
[ -d "$build" ] || { echo "consumers: $build does not exist (make build-gcc)" >&2; exit 1; }
build="$(cd "$build" && pwd)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/conc-consumers.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
step=""
fail() { echo "consumers: FAIL${step:+ ($step)}: $*" >&2; exit 1; }
trap 'echo "consumers: FAIL${step:+ ($step)}: command failed (line $LINENO)" >&2' ERR
say() { step="$1"; echo "consumers: $1"; }

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
CFLAGS_C=(-std=c11 -Wall -Wextra -Werror)
CFLAGS_CXX=(-std=c++11 -Wall -Wextra -Werror)
src="$root/tests/consumer"

# ---- install ----------------------------------------------------------------
say "install $build into a temporary prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
pc="$(find "$prefix" -name conc.pc -path '*/pkgconfig/*' | head -n1)"
[ -n "$pc" ] || fail "no conc.pc installed"
libdir="$(dirname "$(dirname "$pc")")"
for f in include/conc.h include/conc/thread_pool.h; do
  [ -f "$prefix/$f" ] || fail "$f not installed"
done
[ -f "$libdir/libconc.a" ] || fail "libconc.a not installed"
[ -f "$(find "$prefix" -name conc-config.cmake | head -n1)" ] ||
  fail "conc-config.cmake not installed"

# ---- the shared library ---------------------------------------------------------
say "shared library: soname and exported symbols"
so="$libdir/libconc.so"
[ -e "$so" ] || fail "libconc.so not installed"
soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = "libconc.so.0" ] || fail "soname is '$soname', want libconc.so.0"
[ -e "$libdir/libconc.so.0" ] || fail "libconc.so.0 link not installed"
exported="$(nm -D --defined-only "$so" | awk '{print $NF}' | sort -u)"
bad="$(printf '%s\n' "$exported" | grep -v '^conc_' || true)"
internal="$(printf '%s\n' "$exported" | grep '^conc__' || true)"
[ -z "$bad$internal" ] ||
  fail "symbols other than the conc_* API are exported: $(printf '%s\n' "$bad" "$internal" | tr '\n' ' ')"
echo "consumers:   soname $soname, $(printf '%s\n' "$exported" | wc -l) conc_* symbols"

# ---- pkg-config -----------------------------------------------------------------
export PKG_CONFIG_PATH="$libdir/pkgconfig"
say "pkg-config: conc.pc points into the install prefix"
pc_libdir="$(pkg-config --variable=libdir conc)"
pc_incdir="$(pkg-config --variable=includedir conc)"
if ! [ "$pc_libdir" -ef "$libdir" ] || ! [ "$pc_incdir" -ef "$prefix/include" ]; then
  fail "conc.pc is not relocatable: it says libdir=$pc_libdir includedir=$pc_incdir, but the library was installed with --prefix into $libdir (conc.pc hard-codes the configure-time prefix; use prefix=\${pcfiledir}/../.. or configure it at install time)"
fi

run() { # run NAME BINARY: run it, show its line, check it succeeded
  local out
  out="$("$2")" || fail "$1 exited with status $?"
  case "$out" in *"7 * 7 = 49"*) ;; *) fail "$1 printed '$out'" ;; esac
  echo "consumers:   $1: $out"
}
uses_installed() { # the binary resolves libconc.so.0 from the install prefix
  local where
  where="$(ldd "$2" | awk '/libconc\.so/ {print $3}')"
  if [ -z "$where" ] || ! [ "$where" -ef "$libdir/libconc.so.0" ]; then
    fail "$1 loads libconc from '${where:-nowhere}', not $libdir"
  fi
}
no_shared_conc() { # statically linked: no libconc.so needed at run time
  if readelf -d "$2" | grep -q 'NEEDED.*libconc'; then
    fail "$1 needs libconc.so though linked statically"
  fi
}

say "pkg-config, shared: C and C++"
out="$tmp/pc"
mkdir -p "$out"
# shellcheck disable=SC2046
$CC "${CFLAGS_C[@]}" "$src/main.c" -o "$out/c-shared" \
  $(pkg-config --cflags --libs conc) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2046
$CXX "${CFLAGS_CXX[@]}" "$src/main.cpp" -o "$out/cxx-shared" \
  $(pkg-config --cflags --libs conc) -Wl,-rpath,"$libdir"
uses_installed "pkg-config C shared" "$out/c-shared"
uses_installed "pkg-config C++ shared" "$out/cxx-shared"
run "pkg-config C shared" "$out/c-shared"
run "pkg-config C++ shared" "$out/cxx-shared"

say "pkg-config, static (-static with --static libs): C and C++"
# shellcheck disable=SC2046
$CC "${CFLAGS_C[@]}" -static "$src/main.c" -o "$out/c-static" \
  $(pkg-config --static --cflags --libs conc)
# shellcheck disable=SC2046
$CXX "${CFLAGS_CXX[@]}" -static "$src/main.cpp" -o "$out/cxx-static" \
  $(pkg-config --static --cflags --libs conc)
no_shared_conc "pkg-config C static" "$out/c-static"
no_shared_conc "pkg-config C++ static" "$out/cxx-static"
run "pkg-config C static" "$out/c-static"
run "pkg-config C++ static" "$out/cxx-static"

# ---- CMake find_package -----------------------------------------------------------
say "CMake find_package(conc): conc::conc and conc::conc_static, C and C++"
cmake -S "$src" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log" >&2; fail "configuring the consumer project"; }
cmake --build "$tmp/cmake" >>"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log" >&2; fail "building the consumer project"; }
uses_installed "find_package C" "$tmp/cmake/consumer-c"
uses_installed "find_package C++" "$tmp/cmake/consumer-cxx"
no_shared_conc "find_package C static" "$tmp/cmake/consumer-c-static"
no_shared_conc "find_package C++ static" "$tmp/cmake/consumer-cxx-static"
for t in consumer-c consumer-cxx consumer-c-static consumer-cxx-static; do
  run "find_package $t" "$tmp/cmake/$t"
done

# ---- the MPI executor (only where conc was built with MPI) ---------------------------
if [ -f "$libdir/libconc_mpi.a" ]; then
  command -v mpiexec >/dev/null || fail "libconc_mpi.a installed but no mpiexec"
  [ -f "$prefix/include/conc/mpi.h" ] || fail "conc/mpi.h not installed"
  [ -f "$libdir/pkgconfig/conc-mpi.pc" ] || fail "conc-mpi.pc not installed"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  mpirun_=(mpiexec --oversubscribe --mca btl self,vader
           --mca btl_vader_single_copy_mechanism none -n 2)
  run_mpi() { # run_mpi NAME BINARY: under mpiexec -n 2, bounded
    local out
    out="$(timeout 120 "${mpirun_[@]}" "$2")" || fail "$1 exited with status $?"
    case "$out" in *"7 * 7 = 49"*) ;; *) fail "$1 printed '$out'" ;; esac
    echo "consumers:   $1: $out"
  }
  say "pkg-config conc-mpi: C, under mpiexec -n 2"
  # shellcheck disable=SC2046
  $CC "${CFLAGS_C[@]}" "$src/mpi/main.c" -o "$out/c-mpi" \
    $(pkg-config --cflags --libs conc-mpi)
  no_shared_conc "pkg-config conc-mpi" "$out/c-mpi"
  run_mpi "pkg-config conc-mpi" "$out/c-mpi"
  say "CMake find_package(conc COMPONENTS mpi): conc::conc_mpi"
  cmake -S "$src/mpi" -B "$tmp/cmake-mpi" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake-mpi.log" 2>&1 ||
    { cat "$tmp/cmake-mpi.log" >&2; fail "configuring the MPI consumer project"; }
  cmake --build "$tmp/cmake-mpi" >>"$tmp/cmake-mpi.log" 2>&1 ||
    { cat "$tmp/cmake-mpi.log" >&2; fail "building the MPI consumer project"; }
  run_mpi "find_package mpi" "$tmp/cmake-mpi/consumer-mpi"
else
  echo "consumers: no libconc_mpi.a installed (conc built without MPI): MPI consumer skipped"
fi

step=""
echo "consumers: ok"
