/* conc/progress.h - progress display for map, as_completed, wait and any
 * set of futures (as tqdm's thread_map / as_completed wrappers).
 *
 *   conc_progress *pg;
 *   conc_progress_start(&pg, n, NULL);       // draws on stderr
 *   conc_map_options mo; conc_map_options_init(&mo);
 *   mo.progress = pg;                        // map counts its results
 *   ... or conc_progress_watch(pg, fs, n);   // any futures, sampled
 *   ... or conc_progress_add(pg, 1, 0);      // your own counting
 *   conc_progress_stop(pg);                  // final line, free
 *
 * On a terminal the display is one redrawn line: a bar, done/total,
 * percentage, rate, elapsed time, ETA and errors.  When the output is not a
 * terminal it prints a plain line now and then (default every 10 s) and a
 * final one.  A display thread samples counters a few times a second; no
 * task is hooked: counting costs one relaxed atomic add, and watched
 * futures are only looked at when the display is drawn.
 */
#ifndef CONC_PROGRESS_H
#define CONC_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/base.h"
#include "conc/future.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_progress conc_progress;

/* Flags. */
#define CONC_PROGRESS_OFF 1u    /* count, but never draw (stats only) */
#define CONC_PROGRESS_TTY 2u    /* draw the redrawn bar even if fd is not a
                                   terminal */
#define CONC_PROGRESS_PLAIN 4u  /* plain lines even on a terminal */
#define CONC_PROGRESS_MANUAL 8u /* no display thread: conc_progress_draw
                                   draws (tests, single-threaded loops) */

typedef struct conc_progress_options {
  size_t size;        /* sizeof(conc_progress_options); set by _init */
  const char *label;  /* copied; shown first; NULL: none */
  int fd;             /* default 2 (stderr) */
  double interval;    /* seconds between draws: default 0.1 on a terminal,
                         10 otherwise */
  unsigned flags;     /* CONC_PROGRESS_* */
  unsigned width;     /* terminal columns; 0: $COLUMNS, else 80 */
  double (*clock)(void); /* time source (tests); NULL: conc_now */
} conc_progress_options;

CONC_EXTERN void conc_progress_options_init(conc_progress_options *o);

/* Start a display of total items (0: unknown; no bar, no ETA).  Returns 0
 * with *out set, CONC_EINVAL, CONC_ENOMEM or CONC_EAGAIN (no thread).  Any
 * thread. */
CONC_EXTERN int conc_progress_start(conc_progress **out, size_t total,
                                    const conc_progress_options *opts);

/* Count done items and, among them, errors.  Any thread; never blocks;
 * one relaxed atomic add each. */
CONC_EXTERN void conc_progress_add(conc_progress *p, size_t done,
                                   size_t errors);

/* Also count fs[0..n-1] as they become done (an outcome other than 0 is an
 * error).  The futures are retained until conc_progress_stop; they are
 * examined only when the display is drawn.  Returns 0, CONC_EINVAL or
 * CONC_ENOMEM. */
CONC_EXTERN int conc_progress_watch(conc_progress *p, conc_future *const *fs,
                                    size_t n);

/* Draw now (with CONC_PROGRESS_MANUAL, the only way it draws).  Returns 0
 * or CONC_EINVAL. */
CONC_EXTERN int conc_progress_draw(conc_progress *p);

/* The counters: done, errors, total (each may be NULL).  Watched futures
 * are included as of the last draw. */
CONC_EXTERN void conc_progress_counts(conc_progress *p, size_t *done,
                                      size_t *errors, size_t *total);

/* Draw the final state, end the line, stop the display thread, release
 * the watched futures and free p.  NULL is ignored.  Blocks briefly. */
CONC_EXTERN void conc_progress_stop(conc_progress *p);

#ifdef __cplusplus
}
#endif
#endif
