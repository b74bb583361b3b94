/* conc/coro.h - coroutines on a per-thread event loop (asyncio-like).
 *
 * A loop (conc_loop) runs coroutines on the thread that created it.  Each
 * coroutine has its own guarded stack from the loop's stack pool and runs
 * until it waits (conc_coro_yield, conc_coro_sleep, conc_coro_await), then
 * the loop runs the next runnable one.  Runnable coroutines run in FIFO
 * order; sleepers wake in deadline order.  When nothing is runnable the
 * loop's thread sleeps until the next deadline (no busy wait).
 *
 *   static int hello(void *arg, void **result) {
 *     int err = conc_coro_sleep(0.1);   // 0, or CONC_ECANCELED
 *     *result = arg;
 *     return err;
 *   }
 *   void *res;
 *   int err = conc_coro_run(hello, "hi", &res);   // as asyncio.run
 *
 * A coroutine function returns 0 or a negative code (its error) and may
 * store a result pointer in *result; conc_coro_await and conc_coro_result
 * give both back.
 *
 * Cancellation: conc_coro_cancel marks a coroutine; the wait it is parked
 * in, or its next wait, returns CONC_ECANCELED once.  The coroutine may
 * handle it (clean up and return, or carry on).  A coroutine cancelled
 * before it started still starts: its first wait returns CONC_ECANCELED,
 * so it can free what arg owns.
 *
 * Threads: everything here is for the loop's thread ("loop thread only");
 * calls from another thread return CONC_EPERM.  Calls marked "coroutine
 * only" return CONC_EPERM when not made from a coroutine.  A coroutine
 * never moves to another thread, so thread-locals and errno stay valid.
 * Cross-thread spawn and wake-ups are not available yet.
 *
 * Time: seconds as double; timeouts are relative (negative waits forever,
 * 0 polls); the _until calls take absolute deadlines on conc_now().
 */
#ifndef CONC_CORO_H
#define CONC_CORO_H

#include <stddef.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_loop conc_loop;
typedef struct conc_coro conc_coro;

/* A coroutine's body.  Returns 0 or a negative code (CONC_E* or the
 * caller's own); may set *result (initially NULL). */
typedef int (*conc_coro_fn)(void *arg, void **result);

/* ---- loops ---------------------------------------------------------- */

typedef struct conc_loop_options {
  size_t size;       /* sizeof(...); set by _init */
  size_t stack_size; /* usable stack bytes per coroutine; 0: 128 KiB */
} conc_loop_options;

CONC_EXTERN void conc_loop_options_init(conc_loop_options *o);

/* Create a loop bound to the calling thread (opts may be NULL).  Returns 0
 * with *out set, CONC_EINVAL (bad size field, stack size over 1 GiB) or
 * CONC_ENOMEM.  The caller destroys it with conc_loop_destroy.  Never
 * blocks. */
CONC_EXTERN int conc_loop_create(const conc_loop_options *opts,
                                 conc_loop **out);

/* Run the loop until no coroutine is left.  Blocks the calling thread
 * (sleeping, not spinning, while every coroutine waits for a deadline).
 * Returns 0 when every coroutine has finished; CONC_EDEADLK when
 * coroutines remain but none can ever be woken (each waits, without
 * deadline, on another waiting coroutine): they stay suspended, and a
 * later run or destroy deals with them; CONC_EBUSY when called while a
 * loop runs on this thread (from a coroutine, say); CONC_EPERM from
 * another thread; CONC_EINVAL for NULL.  Loop thread only. */
CONC_EXTERN int conc_loop_run(conc_loop *loop);

/* Destroy the loop.  Coroutines still suspended (or never started) are
 * cancelled and run to completion first: each of their waits returns
 * CONC_ECANCELED at once from then on, and spawning returns CONC_ECLOSED,
 * so a coroutine that handles cancellation by returning frees what it
 * holds (a coroutine that loops forever on CONC_ECANCELED never lets
 * destroy return).  Then every stack and record is freed, except the
 * records of handles still held: conc_coro_release and conc_coro_result
 * remain valid on them.  Returns 0, CONC_EBUSY while the loop runs (from
 * one of its coroutines), CONC_EPERM from another thread, CONC_EINVAL for
 * NULL.  Loop thread only; blocks while the coroutines finish. */
CONC_EXTERN int conc_loop_destroy(conc_loop *loop);

/* ---- coroutines ----------------------------------------------------- */

typedef struct conc_coro_options {
  size_t size;       /* sizeof(...); set by _init */
  size_t stack_size; /* 0: the loop's stack size */
} conc_coro_options;

CONC_EXTERN void conc_coro_options_init(conc_coro_options *o);

/* Start fn(arg, &result) as a coroutine on loop (NULL: the calling
 * coroutine's loop).  It runs when the loop gets to it (after the
 * coroutines already runnable), never inside this call.  With out, *out
 * holds a handle that can be awaited, cancelled and read, which the caller
 * releases with conc_coro_release; with out NULL the coroutine is
 * detached.  Returns 0, CONC_EINVAL (NULL fn, NULL loop outside a
 * coroutine, bad options), CONC_ENOMEM (record or stack), CONC_ECLOSED
 * (the loop is being destroyed), CONC_EPERM from a thread other than the
 * loop's.  Loop thread only (from a coroutine or not); never blocks. */
CONC_EXTERN int conc_coro_spawn(conc_loop *loop, conc_coro_fn fn, void *arg,
                                const conc_coro_options *opts,
                                conc_coro **out);

/* Take one more handle reference (released with conc_coro_release);
 * returns h.  Loop thread only (the count is not atomic). */
CONC_EXTERN conc_coro *conc_coro_retain(conc_coro *h);

/* Drop the handle.  A coroutine still running carries on, detached; the
 * record is freed when both it has finished and its handle is released.
 * Valid after the loop is destroyed.  NULL is ignored.  Never fails. */
CONC_EXTERN void conc_coro_release(conc_coro *h);

/* Wait until h finishes, at most timeout seconds (negative forever, 0
 * polls).  Returns h's own return code (0 or its error) with *result (may
 * be NULL) set to its result; CONC_ETIMEDOUT; CONC_ECANCELED if the
 * awaiting coroutine was cancelled (the awaited one is not affected;
 * note that h may also return CONC_ECANCELED itself); CONC_EDEADLK when h
 * is the calling coroutine; CONC_EINVAL for NULL or a handle of another
 * loop; CONC_EPERM outside a coroutine.  Coroutine only; parks the
 * coroutine, never the thread. */
CONC_EXTERN int conc_coro_await(conc_coro *h, double timeout, void **result);
/* As conc_coro_await with an absolute deadline on conc_now(). */
CONC_EXTERN int conc_coro_await_until(conc_coro *h, double deadline,
                                      void **result);

/* Without waiting: h's return code with *result (may be NULL) set if it
 * has finished, else CONC_EAGAIN.  CONC_EINVAL for NULL.  Loop thread (or
 * any thread once the loop is destroyed); never blocks. */
CONC_EXTERN int conc_coro_result(conc_coro *h, void **result);

/* Request cancellation of h: if it is parked in a wait, that wait returns
 * CONC_ECANCELED now; otherwise its next wait does (once).  No effect on a
 * finished coroutine.  A coroutine may cancel itself.  Returns 0,
 * CONC_EINVAL for NULL, CONC_EPERM from another thread than h's loop's.
 * Loop thread only; never blocks. */
CONC_EXTERN int conc_coro_cancel(conc_coro *h);

/* Let every other runnable coroutine run once, then continue.  Returns 0,
 * CONC_ECANCELED (cancelled before or during the yield), CONC_EPERM
 * outside a coroutine.  Coroutine only. */
CONC_EXTERN int conc_coro_yield(void);

/* Park the coroutine for seconds (0 behaves as a yield).  Returns 0 once
 * at least that long has passed, CONC_ECANCELED, CONC_EINVAL for a negative
 * or NaN duration, CONC_EPERM outside a coroutine.  Coroutine only. */
CONC_EXTERN int conc_coro_sleep(double seconds);
/* As conc_coro_sleep, until conc_now() >= deadline (a past deadline
 * yields).  CONC_EINVAL for NaN. */
CONC_EXTERN int conc_coro_sleep_until(double deadline);

/* The calling coroutine's handle (borrowed: do not release it), or NULL
 * outside a coroutine.  Never fails. */
CONC_EXTERN conc_coro *conc_coro_self(void);

/* ---- coroutine-local values ----------------------------------------- */

/* Coroutine-local values, keyed by the address of any object of yours (a
 * static variable, say: its address is unique).  Each coroutine has its own
 * values; a spawned coroutine starts with none (nothing is inherited).
 *
 * conc_coro_local_set stores value under key for the calling coroutine.
 * The entry owns value when dtor is given: dtor(value) runs when the
 * entry is replaced by another value, removed (value NULL), or when the
 * coroutine finishes (on its own stack, after its function returned and
 * before its awaiters wake; dtor must not wait).  Returns 0, CONC_EINVAL
 * for a NULL key, CONC_ENOMEM (nothing changed then), CONC_EPERM outside a
 * coroutine.  Coroutine only; never blocks. */
CONC_EXTERN int conc_coro_local_set(const void *key, void *value,
                                    void (*dtor)(void *));

/* The calling coroutine's value under key in *value.  Returns 0,
 * CONC_ENOENT (no value under key: *value set to NULL), CONC_EINVAL for a
 * NULL key or value, CONC_EPERM outside a coroutine.  Coroutine only. */
CONC_EXTERN int conc_coro_local_get(const void *key, void **value);

/* asyncio.run: create a loop with default options on this thread, run
 * fn(arg) on it until it and every coroutine it spawned have finished,
 * destroy the loop.  Returns fn's return code with *result (may be NULL)
 * set, CONC_ENOMEM, CONC_EBUSY inside a running loop's thread, or
 * CONC_EDEADLK if coroutines were left that nothing could wake (they were
 * cancelled and run to completion by the loop's destruction).  Blocks. */
CONC_EXTERN int conc_coro_run(conc_coro_fn fn, void *arg, void **result);

/* ---- Task groups (asyncio.TaskGroup) ----
 *
 *   conc_coro_group *g;
 *   conc_coro_group_create(&g);
 *   conc_coro_group_spawn(g, fetch, url1, NULL);
 *   conc_coro_group_spawn(g, fetch, url2, NULL);
 *   rc = conc_coro_group_wait(g);   // all done; the first failure wins
 *   conc_coro_group_destroy(g);
 *
 * The first child that fails (returns an error other than CONC_ECANCELED)
 * cancels all its siblings, and conc_coro_group_wait returns its error once
 * every child has finished.  A group and its children belong to the loop of
 * the coroutine that uses it. */
typedef struct conc_coro_group conc_coro_group;

/* Returns 0, CONC_EINVAL or CONC_ENOMEM.  Loop thread. */
CONC_EXTERN int conc_coro_group_create(conc_coro_group **out);

/* Start fn(arg, &result) as a child of g on the calling coroutine's loop.
 * out (may be NULL) receives a handle to release with conc_coro_release.
 * Returns 0, CONC_EINVAL, CONC_ENOMEM, CONC_EPERM outside a coroutine,
 * CONC_ECLOSED once g has failed or its wait has returned.  Coroutine only;
 * never blocks. */
CONC_EXTERN int conc_coro_group_spawn(conc_coro_group *g, conc_coro_fn fn,
                                      void *arg, conc_coro **out);

/* Wait until every child has finished.  Returns 0, or the first failing
 * child's error.  If the waiting coroutine is cancelled meanwhile, every
 * child is cancelled, waited for, and CONC_ECANCELED returned.  After it
 * returns the group takes no new children.  Returns CONC_EPERM outside a
 * coroutine, CONC_EINVAL for NULL.  Coroutine only; parks. */
CONC_EXTERN int conc_coro_group_wait(conc_coro_group *g);

/* Free g.  Children still running (when wait was not called) are
 * cancelled and carry on, detached, to their end.  NULL is ignored. */
CONC_EXTERN void conc_coro_group_destroy(conc_coro_group *g);

#ifdef __cplusplus
}
#endif
#endif
