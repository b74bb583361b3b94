#!/usr/bin/python3
"""Workload W anchor: Scrapy, as its tutorial writes a spider.

    anchor-crawl-scrapy.py START_URL OUT_DIR CONNECTIONS

A Spider whose parse() follows every <a href> (response.urljoin honours
<base href>) and yields one item per page with the page's <img src> and
srcset addresses in file_urls, downloaded by Scrapy's FilesPipeline (its
documented way to download files; saving each image from a spider
callback costs about twice the CPU here).  Settings: ROBOTSTXT_OBEY,
CONCURRENT_REQUESTS and CONCURRENT_REQUESTS_PER_DOMAIN = CONNECTIONS,
MEDIA_ALLOW_REDIRECTS (the /ri/ images), allowed_domains = the start's
host, logging at ERROR.  Prints one JSON line: the pages it got and
where each image URL was stored (FILES_STORE/full/<sha1 of the URL>).
"""
import json
import sys
from urllib.parse import urlparse

import scrapy
from scrapy.crawler import CrawlerProcess

start, out, conns = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = {"pages": [], "files": {}}


class SiteSpider(scrapy.Spider):
    name = "site"
    allowed_domains = [urlparse(start).hostname]
    start_urls = [start]

    def parse(self, response):
        result["pages"].append(response.url)
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if urlparse(url).scheme in ("http", "https"):
                yield scrapy.Request(url, callback=self.parse)
        srcs = response.css("img::attr(src)").getall()
        for s in response.css("img::attr(srcset), source::attr(srcset)").getall():
            srcs += [c.split()[0] for c in s.split(",") if c.strip()]
        urls = [response.urljoin(s) for s in srcs]
        yield {"file_urls": [u for u in urls if urlparse(u).scheme in ("http", "https")]}


class Keep:
    """Records where FilesPipeline stored each image."""

    def process_item(self, item, spider):
        for f in item.get("files", []):
            result["files"][urlparse(f["url"]).path] = f["path"]
        return item


process = CrawlerProcess(settings={
    "ROBOTSTXT_OBEY": True,
    "CONCURRENT_REQUESTS": conns,
    "CONCURRENT_REQUESTS_PER_DOMAIN": conns,
    "LOG_LEVEL": "ERROR",
    "TELNETCONSOLE_ENABLED": False,
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
    "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 1, "__main__.Keep": 2},
    "FILES_STORE": out,
    "MEDIA_ALLOW_REDIRECTS": True,
})
process.crawl(SiteSpider)
process.start()
print(json.dumps(result))
