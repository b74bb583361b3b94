/* report.h - the JSON summary printed at the end of a crawl. */
#ifndef CRAWL_REPORT_H
#define CRAWL_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "crawl.h"

/* Write the summary of c to f: engine, start URL, counters, failures by
 * kind, the processes that did work, timings and every per-URL error
 * (sorted by URL, then page/image, so that engines compare equal).
 * Sorts c->errors.  Returns 0 or -1 (write error). */
int crawl_report_json(FILE *f, crawl *c, const char *engine, double seconds,
                      double cpu_seconds, bool interrupted);

#endif
