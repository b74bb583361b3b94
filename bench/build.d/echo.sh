# bench/build.d/echo.sh - workload E (issue 6's echo target), sourced by
# bench/run.sh after the built-in programs (uses build, say, die, $OUT, $B,
# $ROOT, $CONC_LIB, $QUICK, $ANCHORS_ONLY, $GO, DRIVER_ARGS).
#
# Builds the shared load generator (echo-client), the hand-written epoll
# ceiling (echo-epoll), conc's server (bench-echo serve), the libuv and Go
# anchors; the Python anchors (asyncio, uvloop) need python3-uvloop, and
# the syscall counts perf (linux-perf) or strace.
tools/deps.sh libuv1-dev python3-uvloop strace || die "cannot install the echo anchors' packages"
if ! command -v perf >/dev/null 2>&1; then
  tools/deps.sh linux-perf >/dev/null 2>&1 ||
    say "linux-perf not installed: workload E counts syscalls with strace"
fi
build "$OUT/echo-client" "$B/echo-client.c" \
  gcc $CFLAGS "$B/echo-client.c" -o "$OUT/echo-client"
build "$OUT/echo-epoll" "$B/echo-epoll.c" \
  gcc $CFLAGS "$B/echo-epoll.c" -o "$OUT/echo-epoll"
build "$OUT/anchor-uv-echo" "$B/anchor-uv-echo.c" \
  gcc $CFLAGS "$B/anchor-uv-echo.c" $(pkg-config --cflags --libs libuv) -o "$OUT/anchor-uv-echo"
if [ -z "$ANCHORS_ONLY" ]; then
  build "$OUT/bench-echo" "$B/bench-echo.c $CONC_LIB" \
    gcc $CFLAGS -I"$ROOT/include" "$B/bench-echo.c" "$CONC_LIB" -lpthread -lm \
    -o "$OUT/bench-echo"
fi
if [[ " ${DRIVER_ARGS[*]-} " != *" go "* ]]; then
  build "$OUT/anchor-go-echo" "$B/anchor-go-echo.go" \
    env GOCACHE="$OUT/go-cache" GOPATH="$OUT/go-path" GOFLAGS=-mod=mod GOPROXY=off \
    GO111MODULE= "$GO" build -o "$OUT/anchor-go-echo" "$B/anchor-go-echo.go"
fi
