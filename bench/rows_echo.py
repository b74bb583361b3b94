"""bench/rows_echo.py - workload E: issue 6's echo target, as a driver
plug-in (see load_plugins() in bench/driver.py; built by
bench/build.d/echo.sh).

Every row is bench/echo-run.py: one echo server pinned to core 0 (one
thread, or GOMAXPROCS=1), loaded by the same C client (bench/echo-client.c,
epoll, one request of 64 bytes in flight on each of 1000 connections)
pinned to core 1; the client checks every echoed byte.  The figure is
requests per second over the measured window; the notes give the server's
CPU time per request (what it would sustain on a whole core of its own:
where its CPU share stays below 1 the client was the limit).

Targets (full runs only): conc ≥ Go's requests/s, conc ≥ 0.95 × the
hand-written epoll ceiling, and about two syscalls per request on the
server (counted in a separate pass after the rounds: perf stat on the
raw_syscalls:sys_enter tracepoint, or strace -c, while the client runs).
"""
import os
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOADS = {
    "E": "echo over loopback (issue 6): 1000 connections × 64-byte requests, "
         "server on one core, one C client on the other",
}
CLASSES = ["echo"]
HIGHER_BETTER = {"req/s"}

_state = {"out": None, "env": None, "quick": False}

SERVERS = [
    # kind, implementation, row options
    ("conc", "conc: coroutine per connection (bench-echo serve)", {"conc": True}),
    ("epoll", "hand-written single-threaded epoll server (ceiling)", {}),
    ("go", "Go: goroutine per connection, GOMAXPROCS=1", {"lang": "go"}),
    ("libuv", "libuv: uv_read_start + uv_try_write", {"lang": "uv"}),
    ("uvloop", "Python uvloop: asyncio streams", {"lang": "python"}),
    ("asyncio", "Python asyncio: start_server streams", {"lang": "python"}),
]


def _params(quick):
    # conns, measured seconds, warm-up seconds, bytes
    return (100, 0.3, 0.2, 64) if quick else (1000, 2.0, 0.5, 64)


def rows(quick, add):
    conns, secs, warm, nbytes = _params(quick)
    for kind, impl, kw in SERVERS:
        add("E", "echo", impl, ["echo-run.py", kind, conns, secs, nbytes, warm],
            conns, shown_n="%d conn" % conns, **kw)


def setup(out, env, quick):
    env["CONC_BENCH_OUT"] = out
    _state.update(out=out, env=dict(env), quick=quick)
    for prog in ("echo-client", "echo-epoll"):
        if not os.access(os.path.join(out, prog), os.X_OK):
            raise RuntimeError("%s not built (bench/build.d/echo.sh)" % prog)
    return None


def _syscalls(kind):
    """Server syscalls per request, from one extra run (not timed)."""
    conns, secs, warm, nbytes = _params(False)
    env = dict(_state["env"] or os.environ)
    try:
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "echo-run.py"),
                            "--syscalls", kind, str(conns), "1", str(nbytes), "0.3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env, timeout=300)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    for ln in p.stdout.splitlines():
        if ln.startswith("RESULT "):
            d = dict(kv.split("=", 1) for kv in ln.split()[1:])
            return float(d["value"]), d.get("via", "?")
    return None, (p.stderr.strip().splitlines() or ["no RESULT"])[-1]


def _extra(r, key):
    xs = [float(x[key]) for x in r.results if key in x] if r else []
    return statistics.median(xs) if xs else None


def targets(get, line, rows):
    c, rc = get("E", "echo", "conc")
    if c is None:
        return
    e, re_ = get("E", "echo", "hand-written")
    g, rg = get("E", "echo", "Go")

    def cpu(r):
        v = _extra(r, "cpu_us")
        return "%.2f µs" % v if v is not None else "?"

    def share(r):
        v = _extra(r, "server_cpu")
        return "%.0f %%" % (100 * v) if v is not None else "?"
    if g is not None:
        line("(issue 6) echo server ≥ Go's requests/s", c >= g,
             "conc %.0f req/s vs Go %.0f req/s (%.2f×); server CPU per request conc %s, "
             "Go %s; server CPU share conc %s, Go %s"
             % (c, g, c / g, cpu(rc), cpu(rg), share(rc), share(rg)))
    else:
        line("(issue 6) echo server ≥ Go's requests/s", None, "no Go row")
    if e is not None:
        line("(issue 6) echo server ≥ 0.95× the hand-written epoll ceiling", c >= 0.95 * e,
             "conc %.0f vs epoll %.0f req/s (%.3f×); server CPU per request conc %s, "
             "epoll %s; server CPU share conc %s, epoll %s (below 100 %%: the server "
             "waited, for the client or for its core if other work shares it)"
             % (c, e, c / e, cpu(rc), cpu(re_), share(rc), share(re_)))
    sc, via = _syscalls("conc")
    if sc is None:
        line("(issue 6) echo server about 2 syscalls per request", None, via)
        return
    others = []
    for kind, name in (("epoll", "epoll"), ("go", "Go")):
        if any(r.w == "E" and r.results and r.impl.startswith(pre)
               for r in rows for pre in (("hand-written",) if kind == "epoll" else ("Go",))):
            v, _ = _syscalls(kind)
            if v is not None:
                others.append("%s %.2f" % (name, v))
    line("(issue 6) echo server about 2 syscalls per request", sc <= 2.2,
         "conc %.2f per request (%s, in the client's measured window, epoll_wait "
         "included)%s" % (sc, via, "; " + ", ".join(others) if others else ""))
