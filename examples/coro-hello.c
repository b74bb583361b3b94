/* coro-hello.c - coroutines on one thread, as asyncio.
 *
 * The Python it mirrors:
 *
 *     import asyncio
 *
 *     async def say(delay, what):
 *         await asyncio.sleep(delay)
 *         print(what)
 *         return len(what)
 *
 *     async def main():
 *         t1 = asyncio.create_task(say(0.2, "world"))
 *         t2 = asyncio.create_task(say(0.1, "hello"))
 *         slow = asyncio.create_task(asyncio.sleep(3600))
 *         print("lengths", await t1, await t2)
 *         slow.cancel()
 *         try:
 *             await slow
 *         except asyncio.CancelledError:
 *             print("slow cancelled")
 *
 *     asyncio.run(main())
 *
 * Prints "hello", "world", "lengths 5 5", "slow cancelled", after about
 * 0.2 s: both sleeps run at the same time on one thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conc.h>

typedef struct say_args {
  double delay;
  const char *what;
} say_args;

static int say(void *arg, void **result) {
  say_args *a = arg;
  int err = conc_coro_sleep(a->delay); /* 0, or CONC_ECANCELED */
  if (err)
    return err;
  printf("%s\n", a->what);
  *result = (void *)(uintptr_t)strlen(a->what);
  return 0;
}

static int slow(void *arg, void **result) {
  (void)arg;
  (void)result;
  return conc_coro_sleep(3600); /* returns CONC_ECANCELED when cancelled */
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, conc_strerror(rc));
    exit(1);
  }
}

static int main_coro(void *arg, void **result) {
  (void)arg;
  (void)result;
  say_args a1 = {0.2, "world"}, a2 = {0.1, "hello"};
  conc_coro *t1, *t2, *s;
  /* NULL loop: the loop of the calling coroutine. */
  check(conc_coro_spawn(NULL, say, &a1, NULL, &t1), "spawn");
  check(conc_coro_spawn(NULL, say, &a2, NULL, &t2), "spawn");
  check(conc_coro_spawn(NULL, slow, NULL, NULL, &s), "spawn");
  void *r1, *r2;
  check(conc_coro_await(t1, -1, &r1), "await");
  check(conc_coro_await(t2, -1, &r2), "await");
  printf("lengths %d %d\n", (int)(uintptr_t)r1, (int)(uintptr_t)r2);
  conc_coro_cancel(s);
  if (conc_coro_await(s, -1, NULL) == CONC_ECANCELED)
    printf("slow cancelled\n");
  conc_coro_release(t1);
  conc_coro_release(t2);
  conc_coro_release(s);
  return 0;
}

int main(void) {
  check(conc_coro_run(main_coro, NULL, NULL), "run");
  return 0;
}
