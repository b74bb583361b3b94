# bench/build.d/crawl.sh - workload W (the crawler, issue 8), sourced by
# bench/run.sh: the anchors' Debian packages, then conc-crawl and its site
# generator, built Release into build/bench (bench/rows_crawl.py runs them).
# Quick mode: if the packages cannot be installed or conc-crawl cannot be
# built, W is skipped with the reason; a full run fails instead.
CRAWL_PKGS="nginx libcurl4-openssl-dev libxml2-dev libssl-dev wget wget2 curl wrk strace python3-requests python3-bs4 python3-lxml python3-aiohttp python3-scrapy"
crawl_skip() {
  if [ -n "$QUICK" ]; then
    say "SKIPPING workload W (crawler): $1 (quick mode)"
    export CONC_BENCH_CRAWL_SKIP=1
    DRIVER_ARGS+=(--skip crawl --skip-reason "workload W (crawler): $1 (quick mode)")
  else
    die "workload W (crawler): $1"
  fi
}
if ! timeout 900 tools/deps.sh $CRAWL_PKGS; then
  crawl_skip "$CRAWL_PKGS could not be installed"
else
  if [ ! -f build/bench/CMakeCache.txt ]; then
    cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" \
      -DCONC_WERROR=OFF -DCONC_BUILD_TESTS=OFF -DCONC_BUILD_EXAMPLES=OFF >/dev/null || true
  fi
  say "building conc-crawl (Release, -O2) in build/bench"
  if ! cmake --build build/bench --target conc-crawl conc-crawl-sitegen -j "$(nproc)" >/dev/null ||
    [ ! -x build/bench/crawl/conc-crawl ]; then
    crawl_skip "conc-crawl did not build (cmake --build build/bench --target conc-crawl)"
  else
    export CONC_BENCH_CRAWL_DIR=$ROOT/build/bench/crawl
  fi
fi
