"""bench/rows_crawl.py - workload W: conc-crawl beside the crawler anchors
(issue 8's Benchmarks section; a plug-in of bench/driver.py).

setup() generates the deterministic site (conc-crawl-sitegen: 500 pages,
5,000 images + 20 shared ones; 50/500 in quick mode) into a tmpfs, serves
it with nginx through tools/crawl-site.sh on a free loopback port, and
computes what a correct crawl needs (bench/crawl-row.py expect).  Every
row is one bench/crawl-row.py run: one tool, 16 connections, a fresh
output directory on the same tmpfs, its output checked.  See
bench/README.md (workload W) and docs/crawl.md.
"""
import os
import shutil
import signal
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKLOADS = {"W": "crawler: the whole local site (nginx, loopback), 16 connections, "
                  "output on a tmpfs; value = (pages + images) / s"}
CLASSES = ["crawl, 16 connections"]
HIGHER_BETTER = {"items/s"}

CLS = CLASSES[0]


def _bindir():
    return os.environ.get("CONC_BENCH_CRAWL_DIR", os.path.join(ROOT, "build", "bench", "crawl"))


def _default_engine():
    """conc-crawl's default engine, as its --help says (crawl/crawl.c); the
    targets bind it (DECISIONS.md)."""
    try:
        out = subprocess.run([os.path.join(_bindir(), "conc-crawl"), "--help"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        for word in out.replace(",", " ").split():
            if out.find(word + " (default)") >= 0 and word in ("threads", "processes",
                                                                "coroutines"):
                return word
    except OSError:
        pass
    return "processes"


DEFAULT_ENGINE = _default_engine()
ENGINES = [DEFAULT_ENGINE] + [e for e in ("threads", "processes", "coroutines")
                              if e != DEFAULT_ENGINE]

NOTES = {
    "requests": "requests.get per URL (a new connection each, as the tutorial), "
                "BeautifulSoup html.parser; follows the /r/ redirects to pages it already has",
    "scrapy": "ROBOTSTXT_OBEY, CONCURRENT_REQUESTS(_PER_DOMAIN) 16, images by FilesPipeline",
    "aiohttp": "one ClientSession, TCPConnector(limit=16), 16 worker tasks on a queue; "
               "follows the /r/ redirects to pages it already has",
    "wget": "wget -r -l inf: one connection (no parallel mode)",
    "wget2": "wget2 -r --max-threads=16",
    "curl": "download only: the known list of the 500 pages and every image URL, "
            "no parsing, no robots.txt",
    "wrk": "ceiling: image requests only, cycling through the image paths, "
           "responses discarded",
}


def rows(quick, add):
    if os.environ.get("CONC_BENCH_CRAWL_SKIP"):
        return  # bench/build.d/crawl.sh said why
    c = 16
    py = "crawl-row.py"
    for e in ENGINES:
        add("W", CLS, "conc-crawl -e %s%s" % (e, " (default)" if e == DEFAULT_ENGINE else ""),
            [py, "conc", e, "{n}"], c, conc=True, shown_n="16 conn")
    # the slow Python anchors run in the first rounds only (full mode:
    # 20 to 80 s a round each here), which keeps W near 3 minutes
    for impl, title, rounds in (
            ("requests", "Python requests + ThreadPoolExecutor (the tutorial)", 1),
            ("scrapy", "Scrapy (FilesPipeline)", 1),
            ("aiohttp", "Python aiohttp + lxml", 2),
            ("wget", "GNU wget -r", None),
            ("wget2", "wget2 -r", None),
            ("curl", "curl --parallel over the URL list", None)):
        add("W", CLS, title, [py, impl, "{n}"], c, lang="crawl", shown_n="16 conn",
            rounds=rounds)
    add("W", CLS, "wrk ceiling (image requests/s)", [py, "wrk", 1 if quick else 2, "{n}"], c,
        lang="crawl", shown_n="16 conn")


def _remove_stale(shm):
    """Work directories of earlier runs whose driver died (SIGKILL): the
    site and outputs would stay in memory.  Another live run's are kept."""
    for name in os.listdir(shm):
        d = os.path.join(shm, name)
        if not name.startswith("conc-bench-crawl."):
            continue
        try:
            with open(os.path.join(d, "owner")) as f:
                pid = int(f.read())
            os.kill(pid, 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # unknown owner: leave it
        shutil.rmtree(d, ignore_errors=True)


def setup(out, env, quick):
    bindir = _bindir()
    crawl_bin = os.path.join(bindir, "conc-crawl")
    sitegen = os.path.join(bindir, "conc-crawl-sitegen")
    for f in (crawl_bin, sitegen):
        if not os.access(f, os.X_OK):
            raise RuntimeError("%s not built (bench/build.d/crawl.sh)" % f)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    if shm is None and quick:  # CI containers: any directory will do
        shm = tempfile.gettempdir()
        print("bench: W: no writable /dev/shm, using %s" % shm, file=__import__("sys").stderr)
    if shm is None:
        raise RuntimeError("no writable tmpfs at /dev/shm")
    _remove_stale(shm)
    work = tempfile.mkdtemp(prefix="conc-bench-crawl.", dir=shm)
    with open(os.path.join(work, "owner"), "w") as f:
        f.write("%d\n" % os.getpid())
    proc = None

    def cleanup():
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # ends the `cat`: crawl-site.sh stops nginx
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)

    try:
        pages, images = ("50", "500") if quick else ("500", "5000")
        # quoted: wget2 1.99's HTML parser stops at the first unquoted
        # attribute value (crawl/sitegen.c)
        subprocess.run([sitegen, os.path.join(work, "site"), pages, images, "quoted"],
                       check=True, stdout=subprocess.DEVNULL)
        # nginx lives as long as this pipe is open (also if the driver dies)
        proc = subprocess.Popen(
            [os.path.join(ROOT, "tools", "crawl-site.sh"), "-w", "2", os.path.join(work, "site"),
             "--", "/bin/sh", "-c", 'echo "$CRAWL_SITE_URL"; exec cat >/dev/null'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("nginx did not start (tools/crawl-site.sh)")
        expect = os.path.join(work, "expect.json")
        p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "crawl-row.py"), "expect",
                            os.path.join(work, "site"), url, expect],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError("computing the expected crawl failed: %s" % p.stderr[-300:])
        print("bench: W: site %s pages / %s images at %s; %s" % (pages, images, url,
                                                                p.stdout.strip()),
              file=__import__("sys").stderr)
    except BaseException as e:
        cleanup()
        if isinstance(e, (OSError, subprocess.CalledProcessError)):
            raise RuntimeError(str(e))
        raise
    env.update({"CONC_CRAWL_URL": url, "CONC_CRAWL_SITE": os.path.join(work, "site"),
                "CONC_CRAWL_WORK": work, "CONC_CRAWL_EXPECT": expect,
                "CONC_CRAWL_BIN": crawl_bin})
    return cleanup


def notes(row, extra_median, fmt_num):
    """The notes column of a W row (driver.notes_for hands it over)."""
    parts = []
    for key, fmt in (("requests", "%s requests"), ("cpu_ms_per_mb", "CPU %s ms/MB"),
                     ("rss_mb", "peak RSS %s MB (all processes)"),
                     ("syscalls_per_req", "%s syscalls/request")):
        v = extra_median(row, key)
        if v is not None:
            parts.append(fmt % fmt_num(v))
    need = extra_median(row, "need")
    req = extra_median(row, "requests")
    if need is not None and req is not None and req != need:
        parts.append("%+d requests vs the necessary %s" % (req - need, fmt_num(need)))
    pt = extra_median(row, "pages_twice")
    if pt:
        parts.append("%s pages fetched and saved twice (under /r/ and /p/)" % fmt_num(pt))
    impl = row.argv[1]
    if impl in NOTES:
        parts.append(NOTES[impl])
    if row.rounds is not None:
        parts.append("%d round(s) only (slow)" % len(row.results))
    return "; ".join(parts)


def targets(get, line, rows):
    from statistics import median

    def ext(r, key):
        xs = [float(x[key]) for x in r.results if key in x]
        return median(xs) if xs else None

    prefix = "conc-crawl -e %s" % DEFAULT_ENGINE
    cv, cr = get("W", CLS, prefix)
    if cv is None:
        return
    w2, w2r = get("W", CLS, "wget2")
    if w2:
        line("(issue 8) crawler ≥ 1.5× wget2's pages+images/s", cv >= 1.5 * w2,
             "%.2f× (conc-crawl %s items/s, wget2 %s)" % (cv / w2, _fmt(cv), _fmt(w2)))
    for pre, name in (("Python requests", "the tutorial's Python crawler"), ("Scrapy", "Scrapy")):
        v, _ = get("W", CLS, pre)
        if v:
            line("(issue 8) crawler ≥ 20× %s" % name, cv >= 20 * v,
                 "%.1f× (%s items/s)" % (cv / v, _fmt(v)))
    cpu = ext(cr, "cpu_ms_per_mb")
    if cpu is not None:
        w2cpu = ext(w2r, "cpu_ms_per_mb") if w2r else None
        line("(issue 8) crawler client CPU ≤ 2.1 ms per MB", cpu <= 2.1,
             "%.2f ms/MB%s" % (cpu, "; wget2 %.2f ms/MB here, conc-crawl %.2f× wget2's "
                               "(the issue's 2.1 vs 3.2 is 0.66×)" % (w2cpu, cpu / w2cpu)
                               if w2cpu else ""))
    rss = ext(cr, "rss_mb")
    if rss is not None:
        line("(issue 8) crawler peak memory ≤ 16 MB (all processes)", rss <= 16,
             "%.1f MB" % rss)
    for r in rows:
        if r.w == "W" and r.conc and r.results:
            req, need = ext(r, "requests"), ext(r, "need")
            sc = ext(r, "syscalls_per_req")
            line("(issue 8) exactly the necessary requests (%s)" % r.argv[2], req == need,
                 "%d requests, %d needed; CPU %.2f ms/MB, %s syscalls/request, peak RSS %.1f MB"
                 % (req, need, ext(r, "cpu_ms_per_mb"), "%.1f" % sc if sc else "—",
                    ext(r, "rss_mb")))


def _fmt(v):
    return "{:,.0f}".format(v)
