"""bench/rows_mpi.py - workload M: the MPI executor (issue 9), a plug-in of
bench/driver.py (see load_plugins() there and bench/README.md).

Every row is one `mpiexec -n 2` job started by bench/mpi-row.sh: rank 0 is
the client, rank 1 the only worker rank, so the two ranks fill the 2 CPUs
and compare with the raw C master/worker and with mpi4py.futures (one
worker) on equal terms.  Transports: shm (btl self,vader, no single-copy
mechanism) and tcp (btl self,tcp over loopback: what separate machines
would use).  conc runs with and without crash isolation (a local process
pool per worker rank: each task runs in a forked child).

Programs: bench-mpi (conc), anchor-mpi-raw (raw C MPI, blocking calls),
anchor-mpi4py.py (mpi4py.futures.MPIPoolExecutor); each checks every
result and prints one RESULT line.  Built by bench/build.d/mpi.sh.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROW = os.path.join(HERE, "mpi-row.sh")

WORKLOADS = {
    "M": "MPI executor (issue 9): 1 worker rank (mpiexec -n 2); shm = btl vader, "
         "tcp = btl tcp over loopback",
}
CLASSES = ["one in flight, shm", "pipelined, shm", "1 MiB in+out, shm",
           "one in flight, tcp", "pipelined, tcp", "1 MiB in+out, tcp", "idle, MPI"]
HIGHER_BETTER = {"GB/s"}
WINDOW = 64       # tasks in flight in the pipelined rows (conc and raw MPI)
BIGW = 2          # 1 MiB tasks in flight


def rows(quick, add):
    if os.environ.get("CONC_BENCH_MPI_SKIP"):
        return
    q = quick
    # (conc no isolation, conc isolated, raw MPI, mpi4py) per class
    # full mode: about 3 min for the workload (5 rounds) on a quiet machine
    ONE = (300, 200, 2_000, 100) if q else (10_000, 3_000, 20_000, 1_000)
    PIPE = (2_000, 1_000, 10_000, 500) if q else (100_000, 30_000, 200_000, 5_000)
    BIGN = (8, 8, 8, 4) if q else (150, 100, 150, 20)
    TONE = (100, 100, 300) if q else (1_000, 1_000, 2_000)
    TPIPE = (500, 300, 1_000) if q else (10_000, 10_000, 20_000)
    TBIG = (4, 4, 4) if q else (30, 30, 30)
    IDLE = 100 if q else 1000

    def conc(net, np_, *args):
        return [ROW, net, np_, "bench-mpi"] + list(args)

    def raw(net, *args):
        return [ROW, net, 2, "anchor-mpi-raw"] + list(args)

    def py(*args):
        return [ROW, "shm", 2, "anchor-mpi4py.py"] + list(args)

    ni, iso = "conc: no isolation", "conc: crash isolation"
    c = "one in flight, shm"
    add("M", c, ni + ", submit_task + result", conc("shm", 2, "one", "{n}", "--no-isolate"), ONE[0], conc=True)
    add("M", c, iso + ", submit_task + result", conc("shm", 2, "one", "{n}"), ONE[1], lang="mpi-c")
    add("M", c, "raw C MPI: Send + Irecv/Waitany", raw("shm", "one", "{n}"), ONE[2], lang="mpi-c")
    add("M", c, "mpi4py MPIPoolExecutor.submit().result()", py("one", "{n}"), ONE[3], lang="mpi4py")
    c = "pipelined, shm"
    add("M", c, ni + ", %d futures in flight" % WINDOW, conc("shm", 2, "pipe", "{n}", WINDOW, "--no-isolate"), PIPE[0], conc=True)
    add("M", c, iso + ", %d in flight" % WINDOW, conc("shm", 2, "pipe", "{n}", WINDOW), PIPE[1], lang="mpi-c")
    add("M", c, "raw C MPI: %d in flight" % WINDOW, raw("shm", "pipe", "{n}", WINDOW), PIPE[2], lang="mpi-c")
    add("M", c, "mpi4py MPIPoolExecutor.map, chunksize 1", py("pipe", "{n}"), PIPE[3], lang="mpi4py")
    c = "1 MiB in+out, shm"
    add("M", c, ni + ", %d in flight" % BIGW, conc("shm", 2, "big", "{n}", BIGW, "--no-isolate"), BIGN[0], conc=True)
    add("M", c, iso + ", %d in flight" % BIGW, conc("shm", 2, "big", "{n}", BIGW), BIGN[1], lang="mpi-c")
    add("M", c, "raw C MPI: %d in flight, worker copies" % BIGW, raw("shm", "big", "{n}", BIGW), BIGN[2], lang="mpi-c")
    add("M", c, "mpi4py MPIPoolExecutor.map (pickled bytes)", py("big", "{n}"), BIGN[3], lang="mpi4py")
    c = "one in flight, tcp"
    add("M", c, ni, conc("tcp", 2, "one", "{n}", "--no-isolate"), TONE[0], conc=True)
    add("M", c, iso, conc("tcp", 2, "one", "{n}"), TONE[1], lang="mpi-c")
    add("M", c, "raw C MPI", raw("tcp", "one", "{n}"), TONE[2], lang="mpi-c")
    c = "pipelined, tcp"
    add("M", c, ni + ", %d in flight" % WINDOW, conc("tcp", 2, "pipe", "{n}", WINDOW, "--no-isolate"), TPIPE[0], conc=True)
    add("M", c, iso + ", %d in flight" % WINDOW, conc("tcp", 2, "pipe", "{n}", WINDOW), TPIPE[1], lang="mpi-c")
    add("M", c, "raw C MPI: %d in flight" % WINDOW, raw("tcp", "pipe", "{n}", WINDOW), TPIPE[2], lang="mpi-c")
    c = "1 MiB in+out, tcp"
    add("M", c, ni + ", %d in flight" % BIGW, conc("tcp", 2, "big", "{n}", BIGW, "--no-isolate"), TBIG[0], conc=True)
    add("M", c, iso + ", %d in flight" % BIGW, conc("tcp", 2, "big", "{n}", BIGW), TBIG[1], lang="mpi-c")
    add("M", c, "raw C MPI: %d in flight" % BIGW, raw("tcp", "big", "{n}", BIGW), TBIG[2], lang="mpi-c")
    c = "idle, MPI"
    add("M", c, ni + ": rank 0 + worker rank", conc("shm", 2, "idle", IDLE, "--no-isolate"), 2, conc=True, shown_n="%d ms" % IDLE)
    add("M", c, iso + ": rank 0 + worker rank", conc("shm", 2, "idle", IDLE), 2, lang="mpi-c", shown_n="%d ms" % IDLE)


def setup(out, env, quick):
    env["CONC_BENCH_OUT"] = out
    for p in ("bench-mpi", "anchor-mpi-raw"):
        if not os.access(os.path.join(out, p), os.X_OK):
            raise RuntimeError("%s not built (bench/build.d/mpi.sh)" % p)
    return None


def targets(get, line, rows):
    def us(v):
        return ("%.2f" % (v / 1e3)).rstrip("0").rstrip(".") + " µs"

    def fig(w, cls, prefix):
        v, _ = get(w, cls, prefix)
        return v

    for cls, name, limit in (("one in flight, shm", "tiny task one in flight", 5000),
                             ("pipelined, shm", "tiny task pipelined", 1000)):
        c = fig("M", cls, "conc: no isolation")
        if c is None:
            continue
        iso = fig("M", cls, "conc: crash isolation")
        raw = fig("M", cls, "raw C MPI")
        extra = []
        if iso is not None:
            extra.append("with crash isolation %s (reported)" % us(iso))
        if raw is not None:
            extra.append("raw C MPI %s" % us(raw))
        line("(issue 9) MPI, %s ≤ %s over shm (no isolation)" % (name, us(limit)), c <= limit,
             "%s%s" % (us(c), "; " + "; ".join(extra) if extra else ""))
    c = fig("M", "1 MiB in+out, shm", "conc: no isolation")
    if c is not None:
        iso = fig("M", "1 MiB in+out, shm", "conc: crash isolation")
        raw = fig("M", "1 MiB in+out, shm", "raw C MPI")
        line("(issue 9) MPI, 1 MiB in + 1 MiB out ≥ 5 GB/s of verified payload over shm",
             c >= 5, "%.2f GB/s without isolation%s%s" % (
                 c, "; %.2f GB/s with crash isolation" % iso if iso is not None else "",
                 "; raw C MPI %.2f GB/s" % raw if raw is not None else ""))
    for cls, what in (("one in flight, shm", "one in flight"), ("pipelined, shm", "pipelined")):
        c = fig("M", cls, "conc: no isolation")
        p = fig("M", cls, "mpi4py")
        if c and p:
            iso = fig("M", cls, "conc: crash isolation")
            line("(issue 9) MPI ≥ 40× mpi4py.futures on tiny tasks (%s)" % what, p / c >= 40,
                 "%.0f× (mpi4py %s, conc %s%s)" % (
                     p / c, us(p), us(c),
                     "; with crash isolation %.0f×" % (p / iso) if iso else ""))
    parts = []
    for cls in ("one in flight, tcp", "pipelined, tcp", "1 MiB in+out, tcp"):
        c = fig("M", cls, "conc: no isolation")
        r = fig("M", cls, "raw C MPI")
        if c is not None:
            f = (lambda v: "%.2f GB/s" % v) if "MiB" in cls else us
            parts.append("%s: %s (raw C MPI %s)" % (cls, f(c), f(r) if r is not None else "—"))
    if parts:
        lines_tcp = "; ".join(parts)
        line("(issue 9) MPI over TCP loopback (reported, no target)", True, lines_tcp)
