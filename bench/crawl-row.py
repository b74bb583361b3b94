#!/usr/bin/python3
"""bench/crawl-row.py - one row of workload W (the crawler, issue 8).

    crawl-row.py expect SITE_DIR URL OUT_JSON   (called by rows_crawl.setup)
    crawl-row.py IMPL [ENGINE] CONNECTIONS      (a driver row)

IMPL: conc (ENGINE threads|processes|coroutines), requests, scrapy,
aiohttp, wget, wget2, curl, wrk.  The site, its nginx and the expectation
come from the environment set by bench/rows_crawl.py's setup():
CONC_CRAWL_URL, CONC_CRAWL_SITE, CONC_CRAWL_WORK (a tmpfs directory),
CONC_CRAWL_EXPECT (the JSON written by `expect`), CONC_CRAWL_BIN.

A row runs the tool once into a fresh output directory on the tmpfs,
timed from its start to its exit, with the runner as child subreaper so
that every process of the tool is reaped here:
  value           (pages + images) / wall seconds, pages and images being
                  the site's (every row is checked to have them all)
  cpu_ms_per_mb   user + system CPU of all its processes (RUSAGE_CHILDREN)
                  per MB (10^6 bytes) of bodies the crawl needs
  rss_mb          sum over its processes of each one's peak RSS (VmHWM,
                  sampled every 20 ms): an upper bound of the peak of the
                  sum (pages shared between processes count in each)
  requests        requests nginx served during the run (stub_status)
  syscalls_per_req  from one strace -f -c pass of the same command (not
                  timed, once per bench run, cached in CONC_CRAWL_WORK);
                  conc-crawl, wget2 and curl only (the others are slow
                  under strace, and the bench should stay near 3 minutes)
Then it checks the output: every page reached, every image stored once
with the site's bytes (sha256), nothing else; conc-crawl must also have
made exactly the necessary requests.  A failed check exits 2.
"""
import ctypes
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from urllib import robotparser
from urllib.parse import urldefrag, urljoin, urlparse

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def fail(msg):
    print("crawl-row: CHECK FAILED: %s" % msg, file=sys.stderr)
    sys.exit(2)


# ---- the expectation: the necessary crawl, computed from the site's files ----

def serve(site, path):
    """What tools/crawl-site.sh's nginx answers for path: (status, target)."""
    if path.startswith("/r/"):
        return 302, "/p/" + path[3:]
    if path.startswith("/ri/"):
        return 302, "/img/" + path[4:]
    f = os.path.join(site, path.lstrip("/")) if path != "/" else os.path.join(site, "index.html")
    return (200, f) if os.path.isfile(f) else (404, None)


def srcset_urls(v):
    out = []
    for cand in v.split(","):
        cand = cand.strip()
        if cand:
            out.append(cand.split()[0])
    return out


def page_refs(body, url):
    """Links and image addresses of a page, resolved (lxml's HTML parser)."""
    import lxml.html
    doc = lxml.html.document_fromstring(body)
    base = url
    for b in doc.xpath("//base[@href]"):
        base = urljoin(url, b.get("href").strip())
        break
    links = [urljoin(base, h.strip()) for h in doc.xpath("//a/@href")]
    imgs = [urljoin(base, s.strip()) for s in doc.xpath("//img/@src")]
    for s in doc.xpath("//img/@srcset | //source/@srcset"):
        imgs += [urljoin(base, u) for u in srcset_urls(s)]
    ok = lambda u: urlparse(u).scheme in ("http", "https")
    return [urldefrag(u)[0] for u in links if ok(u)], [urldefrag(u)[0] for u in imgs if ok(u)]


def expect(site, start, out):
    """The crawl a correct crawler makes: robots.txt once, every distinct
    allowed page URL of the start's host once (a page redirect is one
    request; its target is a link like any other), every distinct image
    URL once plus its redirect hops."""
    host = urlparse(start).netloc
    rp = robotparser.RobotFileParser()
    with open(os.path.join(site, "robots.txt")) as f:
        rp.parse(f.read().splitlines())
    requests = 1
    seen, queue = {start}, [start]
    docs, page404, page_redirects, denied = set(), 0, 0, 0
    aliases = {}  # a redirect's path -> its target's path
    images = {}
    i = 0
    while i < len(queue):
        url = queue[i]
        i += 1
        path = urlparse(url).path or "/"
        if not rp.can_fetch("conc-crawl", url):
            denied += 1
            continue
        requests += 1
        st, f = serve(site, path)
        if st == 302:
            page_redirects += 1
            aliases[path] = f
            links, imgs = [urljoin(url, f)], []
        elif st == 404:
            page404 += 1
            continue
        else:
            docs.add("/index.html" if path == "/" else path)
            with open(f, "rb") as fh:
                links, imgs = page_refs(fh.read(), url)
        for u in imgs:
            images.setdefault(u, None)
        for u in links:
            if urlparse(u).netloc == host and u not in seen:
                seen.add(u)
                queue.append(u)
    img_ok, img404, hops = {}, 0, 0
    for u in images:
        if not rp.can_fetch("conc-crawl", u) or urlparse(u).netloc != host:
            continue
        path = urlparse(u).path
        requests += 1
        st, f = serve(site, path)
        while st == 302:
            requests += 1
            hops += 1
            aliases[urlparse(u).path] = f
            path = f
            st, f = serve(site, path)
        if st == 404:
            img404 += 1
        else:
            img_ok[u] = path
    files = {}
    for path in set(img_ok.values()):
        with open(os.path.join(site, path.lstrip("/")), "rb") as fh:
            b = fh.read()
        files[path] = (hashlib.sha256(b).hexdigest(), len(b))
    page_bytes = sum(os.path.getsize(os.path.join(site, d.lstrip("/"))) for d in docs)
    e = {
        "start": start,
        "requests": requests,
        "docs": sorted(docs),
        "page_urls_200": len(docs) + (1 if "/index.html" in docs else 0),
        "page_404": page404,
        "page_redirects": page_redirects,
        "robots_denied": denied,
        "image_urls": len(img_ok),
        "image_404": img404,
        "image_redirect_hops": hops,
        "image_paths": {p: list(v) for p, v in sorted(files.items())},
        "aliases": aliases,
        "unique_sha": len({v[0] for v in files.values()}),
        "bytes": page_bytes + sum(v[1] for v in files.values()),
        "items": len(docs) + len(img_ok),
    }
    with open(out, "w") as f:
        json.dump(e, f)
    # curl's list: every page and every image, final URLs, mirrored paths
    base = start.rstrip("/")
    with open(os.path.join(os.path.dirname(out), "curl-list.cfg"), "w") as f:
        for p in e["docs"] + list(e["image_paths"]):
            f.write('url = "%s%s"\noutput = "%s"\n' % (base, p, p.lstrip("/")))
    with open(os.path.join(os.path.dirname(out), "wrk-paths.lua"), "w") as f:
        f.write("local paths = {%s}\n" % ",".join('"%s"' % p for p in e["image_paths"]))
        f.write("local i = 0\nrequest = function()\n  i = i %% %d + 1\n"
                "  return wrk.format(\"GET\", paths[i])\nend\n" % len(e["image_paths"]))
        f.write("done = function(summary, latency, requests)\n"
                "  io.write(string.format(\"WRKSTATUS non2xx=%d errors=%d\\n\", "
                "summary.errors.status, summary.errors.connect + summary.errors.read + "
                "summary.errors.write + summary.errors.timeout))\nend\n")
    print("expect: %d requests, %d pages, %d image URLs, %d files, %d bytes" % (
        requests, len(docs), len(img_ok), e["unique_sha"], e["bytes"]))


# ---- measuring a run ----

def served():
    """nginx's request counter (stub_status), this request included."""
    with urllib.request.urlopen(os.environ["CONC_CRAWL_URL"] + "nginx-status", timeout=10) as r:
        text = r.read().decode()
    return int(text.splitlines()[2].split()[2])


def descendants(pid):
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    for c in f.read().split():
                        out.append(int(c))
                        stack.append(int(c))
        except OSError:
            pass
    return out


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd, cwd=None):
    """Run cmd: (exit status, wall s, CPU s, peak RSS sum MB, stdout, stderr)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    me = os.getpid()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    outf = open(os.path.join(os.environ["CONC_CRAWL_WORK"], "row.stdout.%d" % me), "w+")
    errf = open(os.path.join(os.environ["CONC_CRAWL_WORK"], "row.stderr.%d" % me), "w+")
    t0 = time.monotonic()
    # the tool dies with the runner (the driver's timeout kills the runner)
    p = subprocess.Popen(cmd, cwd=cwd, stdout=outf, stderr=errf, stdin=subprocess.DEVNULL,
                         preexec_fn=lambda: libc.prctl(1, 9, 0, 0, 0))  # PR_SET_PDEATHSIG
    peak = {}
    while True:
        try:
            rc = p.wait(timeout=0.02)
            break
        except subprocess.TimeoutExpired:
            pass
        for d in descendants(me):
            peak[d] = max(peak.get(d, 0), hwm_kb(d))
    wall = time.monotonic() - t0
    end = time.monotonic() + 5
    while time.monotonic() < end:  # orphans of the tool, reparented here
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    # not ru_maxrss: a child's counts the runner's pages it had before exec
    rss = sum(peak.values()) / 1024.0
    outf.seek(0)
    errf.seek(0)
    o, e = outf.read(), errf.read()
    for f in (outf, errf):
        f.close()
        os.unlink(f.name)
    return rc, wall, cpu, rss, o, e


def strace_calls(impl, cmd, cwd, outdir):
    """Total system calls of one run under strace -f -c (cached per impl)."""
    cache = os.path.join(os.environ["CONC_CRAWL_WORK"], "strace-%s.json" % impl)
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    log = os.path.join(os.environ["CONC_CRAWL_WORK"], "strace-%s.txt" % impl)
    n0 = served()
    rc = subprocess.run(["strace", "-f", "-c", "-o", log] + cmd, cwd=cwd,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    reqs = served() - n0 - 1
    calls = None
    with open(log) as f:
        for ln in f:
            t = ln.split()
            if t and t[-1] == "total":
                calls = int(t[3] if len(t) >= 5 else t[2])
    shutil.rmtree(outdir, ignore_errors=True)
    d = {"calls": calls, "requests": reqs, "rc": rc}
    with open(cache, "w") as f:
        json.dump(d, f)
    return d


# ---- checking the output ----

def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def check_mirror(E, outdir, pages_saved, docs=None, files=None):
    """Images (and pages when the tool saves them) under their URL paths,
    or where files ({URL path: file under outdir}) says.  A file saved
    under a redirect's path (wget) counts as its target.  Returns the
    number of pages saved twice (under a redirect's path and the
    target's), which only wget does."""
    want, alias = E["image_paths"], E["aliases"]
    found = {}
    if files is None:
        for dp, _, fs in os.walk(outdir):
            for n in fs:
                found["/" + os.path.relpath(os.path.join(dp, n), outdir)] = os.path.join(dp, n)
    else:
        found = {p: os.path.join(outdir, f) for p, f in files.items()}
        stored = sum(len(fs) for _, _, fs in os.walk(outdir))
        if stored != len(set(files.values())):
            fail("%d files stored, %d recorded" % (stored, len(set(files.values()))))
    imgs = {}
    for p, f in found.items():
        if p.endswith(".html") or p == "/robots.txt":
            continue
        c = alias.get(p, p)
        if c in imgs:
            fail("%s stored twice (%s and %s)" % (c, imgs[c], f))
        imgs[c] = f
    missing = [p for p in want if p not in imgs]
    extra = [p for p in imgs if p not in want]
    if missing:
        fail("%d of %d images missing (e.g. %s)" % (len(missing), len(want), missing[:3]))
    if extra:
        fail("%d unexpected files, duplicates or strays (e.g. %s)" % (len(extra), extra[:3]))
    for p, (sha, size) in want.items():
        if os.path.getsize(imgs[p]) != size or sha_file(imgs[p]) != sha:
            fail("%s: wrong bytes" % p)
    dups = 0
    if pages_saved:
        html = [alias.get(p, p) for p in found if p.endswith(".html")]
        dups = len(html) - len(set(html))
        if sorted(set(html)) != E["docs"]:
            fail("pages saved: %d, expected %d (e.g. missing %s, extra %s)" % (
                len(set(html)), len(E["docs"]), sorted(set(E["docs"]) - set(html))[:3],
                sorted(set(html) - set(E["docs"]))[:3]))
    if docs is not None:
        got = {"/index.html" if urlparse(u).path in ("", "/") else urlparse(u).path for u in docs}
        if got != set(E["docs"]):
            fail("pages reached: %d, expected %d (e.g. missing %s)" % (
                len(got), len(E["docs"]), sorted(set(E["docs"]) - got)[:3]))
    return dups


def check_conc(E, outdir, summary):
    with open(summary) as f:
        s = json.load(f)
    want = {v[0] for v in E["image_paths"].values()}
    names = os.listdir(outdir)
    files = {n[:-4] for n in names if n.endswith(".png")}
    others = [n for n in names if not n.endswith(".png") and n != ".conc-crawl.journal"]
    if others:
        fail("stray files in the output: %s" % others[:3])
    if files != want:
        fail("%d files, expected %d unique images (missing %d, extra %d)" % (
            len(files), len(want), len(want - files), len(files - want)))
    for n in names:
        if n.endswith(".png") and sha_file(os.path.join(outdir, n)) != n[:-4]:
            fail("%s: its bytes do not hash to its name" % n)
    exp = {"pages": E["page_urls_200"], "images": E["image_urls"], "files": E["unique_sha"],
           "failed": E["page_404"] + E["image_404"], "requests": E["requests"]}
    for k, v in exp.items():
        if s.get(k) != v:
            fail("summary %s = %s, expected %s" % (k, s.get(k), v))
    return s


# ---- the rows ----

def main():
    if sys.argv[1] == "expect":
        expect(sys.argv[2], sys.argv[3], sys.argv[4])
        return 0
    impl = sys.argv[1]
    engine = sys.argv[2] if impl == "conc" else None
    conns = int(sys.argv[-1])
    url = os.environ["CONC_CRAWL_URL"]
    work = os.environ["CONC_CRAWL_WORK"]
    with open(os.environ["CONC_CRAWL_EXPECT"]) as f:
        E = json.load(f)
    name = impl + ("-" + engine if engine else "")
    outdir = os.path.join(work, "out-" + name)
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    cwd = None
    ok_rc = (0,)
    summary = os.path.join(work, "summary-%s.json" % name)
    if impl == "conc":
        cmd = [os.environ["CONC_CRAWL_BIN"], "-e", engine, "-c", str(conns), "--progress", "off",
               "-o", outdir, "--json", summary, url]
    elif impl in ("requests", "aiohttp", "scrapy"):
        cmd = [PY, os.path.join(HERE, "anchor-crawl-%s.py" % impl), url, outdir, str(conns)]
    elif impl == "wget":  # one connection: wget has no parallel mode
        cmd = ["wget", "-r", "-l", "inf", "-nH", "-q", "-e", "robots=on", "-P", outdir, url]
        ok_rc = (0, 8)  # 8: the server answered some requests with errors (the 404s)
    elif impl == "wget2":
        cmd = ["wget2", "-r", "-l", "0", "--max-threads=%d" % conns, "-nH", "-q", "--robots=on",
               "--no-tcp-fastopen", "-P", outdir, url]
        ok_rc = (0, 8)
    elif impl == "curl":
        cmd = ["curl", "--parallel", "--parallel-max", str(conns), "-s", "-S", "--create-dirs",
               "--config", os.path.join(work, "curl-list.cfg")]
        cwd = outdir
    elif impl == "wrk":
        secs = sys.argv[2]
        cmd = ["wrk", "-t", "2", "-c", str(conns), "-d", secs + "s",
               "-s", os.path.join(work, "wrk-paths.lua"), url]
    else:
        print("crawl-row: unknown implementation %s" % impl, file=sys.stderr)
        return 1

    n0 = served()
    rc, wall, cpu, rss, out, err = measure(cmd, cwd)
    reqs = served() - n0 - 1
    if rc not in ok_rc:
        print(err[-2000:], file=sys.stderr)
        print("crawl-row: %s exited with %d" % (" ".join(cmd[:3]), rc), file=sys.stderr)
        return 1
    mb = E["bytes"] / 1e6
    extra = ""
    if impl == "wrk":
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        st = re.search(r"WRKSTATUS non2xx=(\d+) errors=(\d+)", out)
        if not m or not st:
            fail("no wrk summary: %s" % out[-500:])
        if st.group(1) != "0" or st.group(2) != "0":
            fail("wrk: %s non-2xx answers, %s socket errors" % (st.group(1), st.group(2)))
        shutil.rmtree(outdir, ignore_errors=True)
        print("RESULT value=%.1f unit=items/s requests=%d" % (float(m.group(1)), reqs))
        return 0
    if impl == "conc":
        s = check_conc(E, outdir, summary)
        if reqs != E["requests"]:
            fail("nginx served %d requests, the crawl needs exactly %d" % (reqs, E["requests"]))
        extra = " procs=%d" % len(s.get("processes", []))
    elif impl in ("requests", "aiohttp", "scrapy"):
        try:
            rep = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            fail("no summary line from the anchor: %s" % out[-300:])
        check_mirror(E, outdir, False, docs=rep["pages"], files=rep.get("files"))
    elif impl in ("wget", "wget2", "curl"):
        dups = check_mirror(E, outdir, True)
        if dups:
            extra = " pages_twice=%d" % dups
    sc = ""
    if impl in ("conc", "wget2", "curl") and shutil.which("strace"):
        d = strace_calls(name, cmd, cwd, outdir)
        if d["calls"] and d["requests"] > 0:
            sc = " syscalls_per_req=%.1f" % (d["calls"] / d["requests"])
    shutil.rmtree(outdir, ignore_errors=True)
    print("RESULT value=%.1f unit=items/s wall_s=%.3f requests=%d need=%d cpu_ms_per_mb=%.2f "
          "cpu_s=%.3f rss_mb=%.1f%s%s" % (E["items"] / wall, wall, reqs, E["requests"],
                                           1000 * cpu / mb, cpu, rss, sc, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
