#!/usr/bin/python3
"""Workload W anchor: the seed tutorial's crawler, as it writes it.

    anchor-crawl-requests.py START_URL OUT_DIR WORKERS

A ThreadPoolExecutor(WORKERS) (the tutorial's `with ThreadPoolExecutor(..)
as t`), `requests.get` for every URL, BeautifulSoup for the pages
(html.parser), `t.map` over each level of pages and `t.submit` for every
new image, saved under its URL path.  robots.txt is honoured
(urllib.robotparser).  Prints one JSON line: the pages it got (final
URLs), the images saved and the failures.
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib import robotparser
from urllib.parse import urldefrag, urljoin, urlparse

import requests
from bs4 import BeautifulSoup

start, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
host = urlparse(start).netloc

robots = robotparser.RobotFileParser()
robots.parse(requests.get(urljoin(start, "/robots.txt")).text.splitlines())


def allowed(url):
    return urlparse(url).scheme in ("http", "https") and robots.can_fetch("*", url)


def get_page(url):
    resp = requests.get(url, timeout=30)
    if resp.status_code != 200:
        return resp.url, resp.status_code, [], []
    soup = BeautifulSoup(resp.text, "html.parser")
    base = resp.url
    b = soup.find("base", href=True)
    if b:
        base = urljoin(base, b["href"])
    links = [urljoin(base, a["href"]) for a in soup.find_all("a", href=True)]
    imgs = [urljoin(base, i["src"]) for i in soup.find_all("img", src=True)]
    for tag in soup.find_all(["img", "source"], srcset=True):
        for cand in tag["srcset"].split(","):
            if cand.strip():
                imgs.append(urljoin(base, cand.split()[0]))
    return resp.url, 200, links, imgs


def download(url):
    resp = requests.get(url, timeout=30)
    if resp.status_code != 200:
        return False
    path = os.path.join(out, urlparse(resp.url).path.lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(resp.content)
    return True


if __name__ == "__main__":
    pages, failed = [], 0
    seen, seen_img, futures = {start}, set(), []
    with ThreadPoolExecutor(workers) as t:
        level = [start]
        while level:
            nxt = []
            for final, status, links, imgs in t.map(get_page, level):
                if status != 200:
                    failed += 1
                    continue
                pages.append(final)
                for u in imgs:
                    u = urldefrag(u)[0]
                    if u not in seen_img and allowed(u):
                        seen_img.add(u)
                        futures.append(t.submit(download, u))
                for u in links:
                    u = urldefrag(u)[0]
                    if urlparse(u).netloc == host and u not in seen and allowed(u):
                        seen.add(u)
                        nxt.append(u)
            level = nxt
    ok = sum(1 for f in futures if f.result())
    print(json.dumps({"pages": pages, "images": ok, "failed": failed + len(futures) - ok}))
