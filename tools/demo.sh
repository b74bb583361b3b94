#!/usr/bin/env bash
# demo.sh BUILD_DIR - the `make demo` walkthrough.
#
# Follows the seed tutorial (../shared/seed/tutorial.md, the Python
# threading / concurrent.futures lesson) section by section: a heading per
# section, a few words on how conc does it, then the example program that
# mirrors the section's Python, with long output shortened to its head and
# tail.  Sections whose part of conc is not built yet say so in one line.
#
# CONC_DEMO_QUICK=1 scales every sleep down (CI); the output is the same
# apart from timings.  Exits non-zero if any example fails or is missing.
set -uo pipefail

build="${1:?usage: tools/demo.sh BUILD_DIR}"
ex="$build/examples"
if [ ! -d "$ex" ]; then
  echo "demo: $ex not found: build first (make build-gcc)" >&2
  exit 1
fi

if [ "${CONC_DEMO_QUICK:-0}" != 0 ]; then
  export CONC_EXAMPLE_SLEEP_SCALE=0.05
else
  export CONC_EXAMPLE_SLEEP_SCALE=1
fi

failed=()
tmp="$(mktemp -d "${TMPDIR:-/tmp}/conc-demo.XXXXXX")"
crawl_shm=''
trap 'rm -rf "$tmp" ${crawl_shm:+"$crawl_shm"}' EXIT

if [ -t 1 ]; then B=$'\e[1m'; D=$'\e[2m'; R=$'\e[0m'; else B='' D='' R=''; fi

heading() { printf '\n%s==== %s ====%s\n' "$B" "$1" "$R"; }
say() { printf '%s\n' "$@"; }

# switches: how often the output of the last `show` goes from "func" lines to
# "main" lines or back - the visible sign of two threads running at once.
switches() {
  [ -s "$tmp/out" ] || return 0
  awk '{ if (NR > 1 && $1 != prev) n++; prev = $1 } END {
    printf "The output switches between func and main %d time(s) in this run.\n", n }' "$tmp/out"
}

# show NAME [HEAD TAIL]: run examples/NAME, print its output (only the first
# HEAD and last TAIL lines if it is longer), record a failure.
show() {
  local name="$1" head="${2:-0}" tail="${3:-0}" out="$tmp/out" rc
  rm -f "$out"
  printf '%s$ examples/%s%s\n' "$D" "$name" "$R"
  if [ ! -x "$ex/$name" ]; then
    echo "demo: $ex/$name is missing" >&2
    failed+=("$name (missing)")
    return
  fi
  local t0=$EPOCHREALTIME
  "$ex/$name" >"$out"
  rc=$?
  local t1=$EPOCHREALTIME
  local n
  n=$(wc -l <"$out")
  if [ "$head" -gt 0 ] && [ "$n" -gt $((head + tail)) ]; then
    sed -n "1,${head}p" "$out"
    printf '%s    ... %d more lines ...%s\n' "$D" $((n - head - tail)) "$R"
    tail -n "$tail" "$out"
  else
    cat "$out"
  fi
  printf '%s(%d lines, %s s)%s\n' "$D" "$n" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" "$R"
  if [ "$rc" -ne 0 ]; then
    echo "demo: examples/$name FAILED with status $rc" >&2
    failed+=("$name")
  fi
}

say "${B}conc: the seed tutorial (Python threading / concurrent.futures) in C${R}"
say "Every example is a small program in examples/; read it next to its Python."
[ "${CONC_DEMO_QUICK:-0}" != 0 ] &&
  say "(quick mode: every sleep is scaled by $CONC_EXAMPLE_SLEEP_SCALE)"

heading "一, 什么是进程, 什么是线程?"
say "A process owns resources (memory, files); a thread is what the CPU runs."
say "Every program starts with one thread, main.  conc adds threads"
say "(conc/thread.h), thread pools (conc/thread_pool.h) and futures"
say "(conc/future.h); every call returns 0 or a negative CONC_E* code."

heading "二, 多线程 / 第一种方法: Thread(target=func)"
say "conc_thread_start(&t, func, arg, NULL) starts func on a new thread;"
say "conc_thread_join(&t, -1, NULL) waits for it (Python does that at exit)."
say "Both loops run at the same time; how their lines mix depends on timing"
say "and changes from run to run (1000 printf calls take well under a"
say "millisecond, so one loop may finish before the other has started)."
show thread-target 8 4
switches

heading "2. 第二种方法. 继承Thread类: override run"
say "C has no classes: embed a conc_thread in your struct, start it with"
say "conc_thread_start_run(&t.base, run, NULL); run() gets the conc_thread"
say "back and finds your struct with CONC_CONTAINER_OF."
show thread-subclass 8 4
switches

heading "3. 线程池: ThreadPoolExecutor(10), 100 named tasks"
say "conc_thread_pool_create() with max_workers = 10, conc_executor_submit()"
say "for each task, conc_executor_destroy() where the with block ends: it"
say "waits for every task.  100 tasks x 1000 lines, shortened here."
show pool-names 10 5

heading "如果任务有返回值怎么办? 方案一: add_done_callback"
say "Each task sleeps 2 s and returns its name; the callback prints it as"
say "soon as the task is done, so the order is the completion order."
show pool-callback

heading "方案二: map - results in input order"
say "conc_executor_map() + conc_map_next(): sleeps of 5, 2, 3 s run at once,"
say "the results come back as 5, 2, 3 (map waits for the first), and the"
say "whole run takes about 5 s, not 10 (the last line is the elapsed time)."
show pool-map

heading "concurrent.futures docs: checking primes (ProcessPoolExecutor → threads)"
say "Python needs processes for CPU work; C threads run in parallel, so the"
say "thread pool runs the same map."
show futures-primes

heading "concurrent.futures docs: as_completed (loading URLs → local pages)"
say "Five sources with different delays, handled fastest first; the last"
say "one fails (conc_task_fail) and its message comes back with the future."
show futures-as-completed

heading "concurrent.futures.wait(return_when=FIRST_COMPLETED)"
say "conc_wait() returns as soon as one future is done; loop until none is"
say "left running."
show wait-first-completed

heading "Beyond concurrent.futures: backpressure, deadlines, stop, progress, statistics"
say "A pool with a bounded queue (max_queued) and timing; map with a"
say "progress display (on stderr), a task past its deadline, a running task"
say "stopped on request, a priority, and the pool's statistics."
show pool-extras

heading "多进程: processes and a queue between them"
say "conc_process_start runs a function in a child process (pidfd-tracked;"
say "a daemon child never outlives its parent), and conc_queue carries byte"
say "messages between processes through shared memory."

heading "ProcessPoolExecutor: the primes again, on a process pool"
say "Tasks that cross a process boundary are registered by name (CONC_TASK:"
say "bytes in, bytes out); conc_executor_map_task maps one over inputs."
say "Workers are forked from a fork server (this program run again, stopped"
say "in conc_init), never from the caller."
show procpool-primes

heading "A worker crashes: only its task fails"
say "Task 13 segfaults.  Python's ProcessPoolExecutor would fail every"
say "pending task (BrokenProcessPool); conc fails task 13 alone with the"
say "signal (CONC_EWORKER), replaces the worker and runs the rest."
show procpool-crash

heading "Beyond concurrent.futures, on the process pool"
say "The same options as on the thread pool: a bounded queue, a deadline,"
say "a stop honoured by one task and, after a grace period, enforced on one"
say "that ignores it (its worker is killed), a priority, a progress display"
say "and statistics with timing."
show procpool-extras

heading "Processes from the fork server (multiprocessing's \"forkserver\")"
say "conc_process_start_task runs a registered task in a child forked from"
say "a fork server (this program run again, stopped in conc_init): the child"
say "inherits nothing, so results come back through named shared memory."
show proc-forkserver

heading "什么时候用多进程: one process scans image addresses, another downloads"
say "The seed's crawler design on local data: a scanner process queues image"
say "addresses, a downloader process fetches and checksums them."
show proc-pipeline 4 3

heading "什么时候用多进程: a proxy pool (fetch, then validate)"
say "A fetcher process reads candidate proxies, a validator process checks"
say "each one; the valid ones are kept in a pool in shared memory."
show proc-proxy-pool 6 8

heading "协程: coroutines on one thread, as asyncio"
say "conc_coro_spawn / conc_coro_await / conc_coro_sleep / conc_coro_cancel on"
say "a conc_loop: two sleeps run at the same time on one thread, and a"
say "sleeping coroutine is cancelled.  Channels, sockets and the crawler built"
say "on them are still to come."
show coro-hello

heading "协程 and sockets: an echo server and its clients"
say "conc_tcp_listen / conc_tcp_accept / conc_tcp_connect / conc_sock_read /"
say "conc_sock_write_all: a server, a coroutine per connection and ten"
say "clients on one thread, each waiting for its socket on the loop's epoll."
show coro-echo

heading "conc-crawl: the seed's image crawler, on a local site"
crawl_bin="$build/crawl/conc-crawl"
sitegen="$build/crawl/conc-crawl-sitegen"
if [ ! -x "$crawl_bin" ] || [ ! -x "$sitegen" ]; then
  echo "demo: conc-crawl is not built (it needs libcurl and libxml2)" >&2
  failed+=("conc-crawl (missing)")
else
  if [ "${CONC_DEMO_QUICK:-0}" != 0 ]; then site_args="100 1000"; else site_args="500 5000"; fi
  say "A generated site ($site_args pages and images; shared images, broken links,"
  say "redirects, robots.txt) served by nginx on a free loopback port, crawled"
  say "with each engine: threads (conc thread pools), processes (a scanner"
  say "process feeding a downloader process through a conc queue) and"
  say "coroutines (conc's loop driving libcurl's multi-socket interface on"
  say "one thread)."
  # The images go to a tmpfs when there is one: creating thousands of
  # files right after deleting thousands is slow on ext4 and would swamp
  # the comparison.
  crawl_work="$tmp/crawl"
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    crawl_shm="$(mktemp -d /dev/shm/conc-demo-crawl.XXXXXX)"
    crawl_work="$crawl_shm"
  fi
  if ! "$(dirname "$0")/crawl-site.sh" -g "$sitegen" -a "$site_args" -w 2 \
    "$tmp/site" -- "$(dirname "$0")/crawl-compare.sh" "$crawl_bin" "$crawl_work"; then
    failed+=("conc-crawl")
  fi
fi

echo
if [ ${#failed[@]} -ne 0 ]; then
  echo "demo: FAILED: ${failed[*]}" >&2
  exit 1
fi
say "${B}demo: all examples ran.${R}  Next: make test (the whole suite)."
