#!/usr/bin/python3
"""bench/anchor-py-coro.py - workload C anchor: Python asyncio (or uvloop's
event loop), one thread.  Run it with Debian's /usr/bin/python3.

  anchor-py-coro.py asyncio|uvloop yield N   2 tasks await asyncio.sleep(0) N times each
  anchor-py-coro.py asyncio|uvloop hop N     a token passed N times over 2 asyncio.Queue(1)
  anchor-py-coro.py asyncio|uvloop spawn N   create_task + run, batches of 1024 (gather)
  anchor-py-coro.py asyncio|uvloop mem N     N tasks parked in Queue.get with a
                                             256-byte local: (RSS + page tables)
                                             growth per task, bytes

Values in ns per operation (bytes for mem); checks as bench-coro.c; a
failed check prints CHECK FAILED and exits 2.
"""
import asyncio
import sys
import time


def fail(msg):
    sys.stderr.write("CHECK FAILED: %s\n" % msg)
    sys.exit(2)


def mem_now():
    rss = pte = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmPTE:"):
                pte = int(line.split()[1])
    return (rss + pte) * 1024


async def yield_(n):
    cnt = [0, 0]

    async def y(k):
        for _ in range(n):
            await asyncio.sleep(0)
            cnt[k] += 1
    t0 = time.perf_counter()
    await asyncio.gather(y(0), y(1))
    d = time.perf_counter() - t0
    if cnt != [n, n]:
        fail("yield counts %r" % cnt)
    return d * 1e9 / (2 * n)


async def hop(n):
    n &= ~1
    a, b = asyncio.Queue(1), asyncio.Queue(1)

    async def pong():
        for _ in range(n // 2):
            v = await a.get()
            await b.put(v + 2)

    async def ping():
        v = 0
        for _ in range(n // 2):
            await a.put(v)
            v = await b.get()
        return v
    t0 = time.perf_counter()
    v, _ = await asyncio.gather(ping(), pong())
    d = time.perf_counter() - t0
    if v != n:
        fail("hop: token %d after %d hops" % (v, n))
    return d * 1e9 / n


async def spawn(n):
    st = [0, 0]

    async def child(x):
        st[0] += x
        st[1] += 1
    t0 = time.perf_counter()
    i = 0
    while i < n:
        end = min(i + 1024, n)
        await asyncio.gather(*[asyncio.create_task(child(x)) for x in range(i, end)])
        i = end
    d = time.perf_counter() - t0
    if st != [n * (n - 1) // 2, n]:
        fail("spawn: %r" % st)
    return d * 1e9 / n


async def mem(n):
    q = asyncio.Queue()
    st = {"parked": 0, "woken": 0, "sum": 0, "bad": 0}

    async def child(me):
        locals_ = bytearray((me + i) & 255 for i in range(256))
        st["parked"] += 1
        v = await q.get()
        if locals_ != bytearray((me + i) & 255 for i in range(256)):
            st["bad"] += 1
        st["sum"] += v
        st["woken"] += 1
    m0 = mem_now()
    tasks = [asyncio.create_task(child(i)) for i in range(n)]
    while st["parked"] < n:
        await asyncio.sleep(0)
    g = mem_now() - m0
    for i in range(n):
        q.put_nowait(i + 1)
    await asyncio.gather(*tasks)
    if st["bad"] or st["woken"] != n or st["sum"] != n * (n + 1) // 2:
        fail("mem: %r" % st)
    return g / n


def main():
    if len(sys.argv) < 4:
        fail("usage: anchor-py-coro.py asyncio|uvloop yield|hop|spawn|mem N")
    kind, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "uvloop":
        import uvloop
        uvloop.install()
    elif kind != "asyncio":
        fail("unknown loop %s" % kind)
    fn = {"yield": yield_, "hop": hop, "spawn": spawn, "mem": mem}.get(mode)
    if fn is None:
        fail("unknown mode %s" % mode)
    v = asyncio.run(fn(n))
    unit = "B" if mode == "mem" else "ns"
    print("RESULT value=%.3f unit=%s" % (v, unit))


if __name__ == "__main__":
    main()
