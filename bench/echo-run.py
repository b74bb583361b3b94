#!/usr/bin/python3
"""bench/echo-run.py - one row of workload E (bench/rows_echo.py): start an
echo server pinned to one core, load it from bench/echo-client.c pinned to
the other core, print one RESULT line, stop the server.

    echo-run.py [--syscalls] KIND CONNS SECONDS BYTES [WARMUP]

KIND: conc | epoll | go | asyncio | uvloop | libuv.  The programs are in
$CONC_BENCH_OUT (bench/out by default).  The server prints "PORT <n>"
first; the client checks every echoed byte and exits 2 on a wrong one.

RESULT value=<requests/s> unit=req/s cpu_us=<server CPU µs per request>
       server_cpu=<server CPU seconds / wall seconds> requests=<measured>

--syscalls: instead of timing, count the server's system calls during the
client's measured window (perf stat on the raw_syscalls:sys_enter
tracepoint, switched on and off through its control fifo when the client
says START and prints its result; where perf cannot, strace -c -f over the
whole client run, divided by all requests), and print
RESULT value=<syscalls per request> unit=syscalls/req.
A separate pass, because counting slows every syscall down.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import resource

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("CONC_BENCH_OUT", os.path.join(HERE, "out"))
PY = "/usr/bin/python3"


def fail(msg, code=2):
    print("CHECK FAILED: %s" % msg, file=sys.stderr)
    sys.exit(code)


def server_cmd(kind):
    return {
        "conc": [os.path.join(OUT, "bench-echo"), "serve"],
        "epoll": [os.path.join(OUT, "echo-epoll")],
        "go": [os.path.join(OUT, "anchor-go-echo")],
        "asyncio": [PY, os.path.join(HERE, "anchor-py-echo.py"), "asyncio"],
        "uvloop": [PY, os.path.join(HERE, "anchor-py-echo.py"), "uvloop"],
        "libuv": [os.path.join(OUT, "anchor-uv-echo")],
    }.get(kind)


def pin(core):
    """taskset prefix for one core, when there are two or more."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def read_port(p, timeout=30):
    deadline = time.time() + timeout
    line = b""
    os.set_blocking(p.stdout.fileno(), False)
    while time.time() < deadline:
        if p.poll() is not None:
            fail("server exited early (%s)" % p.returncode, 1)
        try:
            chunk = p.stdout.read()
        except BlockingIOError:
            chunk = None
        if chunk:
            line += chunk
            m = re.search(rb"PORT (\d+)\n", line)
            if m:
                return int(m.group(1))
        time.sleep(0.01)
    fail("server printed no port in %d s" % timeout, 1)


def count_syscalls_start(pid, path, ctl):
    """Attach a counter of pid's syscalls, disabled until enable(); returns
    (process, kind).  perf's control fifo lets the count cover the
    client's measured window only."""
    if shutil.which("perf"):
        os.mkfifo(ctl)
        pr = subprocess.Popen(["perf", "stat", "-x", ",", "-o", path, "-D", "-1",
                               "--control", "fifo:%s" % ctl, "-e",
                               "raw_syscalls:sys_enter", "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fd = os.open(ctl, os.O_WRONLY)  # blocks until perf opened it
        time.sleep(0.2)
        if pr.poll() is None:
            return pr, "perf", fd
        os.close(fd)
    if shutil.which("strace"):  # counts the whole client run
        pr = subprocess.Popen(["strace", "-c", "-f", "-o", path, "-p", str(pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        if pr.poll() is None:
            return pr, "strace", None
    fail("neither perf nor strace can count syscalls here", 1)


def count_syscalls_stop(pr, kind, path):
    pr.send_signal(signal.SIGINT)
    pr.wait(timeout=60)
    text = open(path).read()
    if kind == "perf":
        for ln in text.splitlines():
            f = ln.split(",")
            if len(f) > 2 and "raw_syscalls:sys_enter" in f[2]:
                return int(float(f[0]))
        fail("no count from perf: %s" % text.strip()[-200:], 1)
    for ln in text.splitlines():  # strace -c: the "total" line
        t = ln.split()
        if t and t[-1] == "total":
            return int(t[3])
    fail("no total from strace", 1)


def main():
    args = sys.argv[1:]
    syscalls = bool(args) and args[0] == "--syscalls"
    if syscalls:
        args = args[1:]
    if len(args) < 4:
        fail("usage: echo-run.py [--syscalls] KIND CONNS SECONDS BYTES [WARMUP]", 1)
    kind, conns, secs, nbytes = args[0], args[1], args[2], args[3]
    warm = args[4] if len(args) > 4 else "0.5"
    cmd = server_cmd(kind)
    if cmd is None:
        fail("unknown server kind %s" % kind, 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    env = dict(os.environ)
    if kind == "go":
        env["GOMAXPROCS"] = "1"  # one core, as every server here
    srv = subprocess.Popen(pin(0) + cmd, stdout=subprocess.PIPE, env=env)
    try:
        port = read_port(srv)
        counter = None
        tmpd = tempfile.mkdtemp(prefix="conc-echo-sys-")
        path, ctl = os.path.join(tmpd, "count"), os.path.join(tmpd, "ctl")
        if syscalls:
            counter = count_syscalls_start(srv.pid, path, ctl)
        cl = subprocess.Popen(pin(1) + [os.path.join(OUT, "echo-client"), str(port), conns,
                                        secs, nbytes, str(srv.pid), warm],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result = None
        for ln in cl.stdout:
            if ln.startswith("START") and counter and counter[2] is not None:
                os.write(counter[2], b"enable\n")
            elif ln.startswith("ECHO "):
                if counter and counter[2] is not None:
                    os.write(counter[2], b"disable\n")
                result = ln
        err = cl.stderr.read()
        rc = cl.wait(timeout=300)
        if counter:
            calls = count_syscalls_stop(counter[0], counter[1], path)
            if counter[2] is not None:
                os.close(counter[2])
        shutil.rmtree(tmpd, ignore_errors=True)
        if rc != 0 or result is None:
            sys.stderr.write(err)
            fail("client exit %d" % rc, rc or 1)
        m = dict(kv.split("=", 1) for kv in result.split()[1:])
        if srv.poll() is not None:
            fail("server died during the run (%s)" % srv.returncode)
        n = int(m["requests"])
        if n <= 0:
            fail("no request completed")
        if syscalls:
            # perf: the measured window only; strace: the whole client run
            per = n if counter[1] == "perf" else int(m["total"])
            print("RESULT value=%.3f unit=syscalls/req requests=%d via=%s"
                  % (calls / per, per, counter[1]))
        else:
            wall = float(m["seconds"])
            scpu = float(m["server_cpu_s"])
            print("RESULT value=%s unit=req/s cpu_us=%.3f server_cpu=%.3f "
                  "client_cpu=%.3f requests=%d"
                  % (m["req_per_s"], 1e6 * scpu / n, scpu / wall,
                     float(m["client_cpu_s"]) / wall, n))
    finally:
        if srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()


if __name__ == "__main__":
    main()
