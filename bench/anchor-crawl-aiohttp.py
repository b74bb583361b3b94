#!/usr/bin/python3
"""Workload W anchor: an asyncio crawler, aiohttp + lxml.

    anchor-crawl-aiohttp.py START_URL OUT_DIR CONNECTIONS

One ClientSession with TCPConnector(limit=CONNECTIONS), CONNECTIONS
worker tasks taking pages and images from one asyncio.Queue, lxml.html
for the pages (<base href>, <a href>, <img src>, srcset), images saved
under their URL path.  robots.txt honoured (urllib.robotparser).  Prints
one JSON line: the pages it got (final URLs), images saved, failures.
"""
import asyncio
import json
import os
import sys
from urllib import robotparser
from urllib.parse import urldefrag, urljoin, urlparse

import aiohttp
import lxml.html

start, out, conns = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = urlparse(start).netloc
robots = robotparser.RobotFileParser()
pages, stats = [], {"images": 0, "failed": 0}
seen, seen_img = {start}, set()


def allowed(url):
    return urlparse(url).scheme in ("http", "https") and robots.can_fetch("*", url)


def refs(body, url):
    doc = lxml.html.document_fromstring(body)
    base = url
    for b in doc.xpath("//base[@href]"):
        base = urljoin(url, b.get("href").strip())
        break
    links = [urljoin(base, h.strip()) for h in doc.xpath("//a/@href")]
    imgs = [urljoin(base, s.strip()) for s in doc.xpath("//img/@src")]
    for s in doc.xpath("//img/@srcset | //source/@srcset"):
        imgs += [urljoin(base, c.split()[0]) for c in s.split(",") if c.strip()]
    return links, imgs


async def worker(session, q):
    while True:
        kind, url = await q.get()
        try:
            async with session.get(url) as resp:
                body = await resp.read()
                final = str(resp.url)
                status = resp.status
            if status != 200:
                stats["failed"] += 1
            elif kind == "page":
                pages.append(final)
                links, imgs = refs(body, final)
                for u in imgs:
                    u = urldefrag(u)[0]
                    if u not in seen_img and allowed(u):
                        seen_img.add(u)
                        q.put_nowait(("image", u))
                for u in links:
                    u = urldefrag(u)[0]
                    if urlparse(u).netloc == host and u not in seen and allowed(u):
                        seen.add(u)
                        q.put_nowait(("page", u))
            else:
                path = os.path.join(out, urlparse(final).path.lstrip("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(body)
                stats["images"] += 1
        except aiohttp.ClientError:
            stats["failed"] += 1
        finally:
            q.task_done()


async def main():
    conn = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=conn) as session:
        async with session.get(urljoin(start, "/robots.txt")) as r:
            robots.parse((await r.text()).splitlines())
        q = asyncio.Queue()
        q.put_nowait(("page", start))
        tasks = [asyncio.create_task(worker(session, q)) for _ in range(conns)]
        await q.join()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


asyncio.run(main())
print(json.dumps({"pages": pages, "images": stats["images"], "failed": stats["failed"]}))
