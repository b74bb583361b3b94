/* io-int.h - the loop's poller and cross-thread inbox, for the other I/O
 * modules of conc (tcp.c, bridge.c, signal.c).  See io.c's DESIGN.
 */
#ifndef CONC_IO_INT_H
#define CONC_IO_INT_H

#include "coro-int.h"
#include "conc/net.h"

/* A relative timeout as a deadline for the _until calls; NaN stays NaN
 * (conc__deadline maps it to INFINITY), so that both report CONC_EINVAL. */
static inline double conc__timeout_deadline(double timeout) {
  return isnan(timeout) ? timeout : conc__deadline(timeout);
}

/* A message for a loop's thread, posted from any thread.  run is called
 * on the loop's thread with dropped false, or, when the loop is destroyed
 * before it got to it, with dropped true (then it must only release what
 * the message holds).  The poster owns the memory until run is called. */
typedef struct conc__msg {
  struct conc__msg *next;
  void (*run)(conc_loop *l, struct conc__msg *m, bool dropped);
} conc__msg;

/* A loop's inbox: refcounted, so that posters (future callbacks on other
 * threads) may outlive the loop. */
typedef struct conc__remote conc__remote;

/* The loop's poller, created on first use (any thread).  Returns 0,
 * CONC_ENOMEM or -errno from epoll_create1 / eventfd. */
int conc__io_get(conc_loop *l, conc__io **out);

/* l's inbox with one more reference, for conc__remote_post; the caller
 * drops it with conc__remote_release. */
conc__remote *conc__io_remote(conc__io *io);
void conc__remote_release(conc__remote *r);
/* Post m to the inbox and wake the loop.  Returns 0, or CONC_ECLOSED if
 * the loop was destroyed (m was not queued; the caller keeps it).  Any
 * thread. */
int conc__remote_post(conc__remote *r, conc__msg *m);

/* Count a coroutine wait that only a message (or an fd event) can end, so
 * that the loop polls instead of reporting CONC_EDEADLK.  Loop thread. */
void conc__io_wait_begin(conc__io *io);
void conc__io_wait_end(conc__io *io);

/* Park the running coroutine c until fd is ready for events (IN/OUT) or
 * the deadline (see conc_coro_wait_fd).  Checks cancellation first. */
int conc__io_wait_fd(conc_coro *c, int fd, unsigned events, double deadline);

/* conc just created fd (socket, accept, signalfd): forget any stale
 * registration of an earlier fd of that number on the calling thread's
 * loop (closed with plain close(2), epoll dropped it; the table did not
 * know).  Any thread; does nothing off a loop. */
void conc__io_fd_new(int fd);

/* Read hint for c's loop (see io.c): whether fd's last read came back
 * short with no IN event since (then wait before reading), and setting
 * that mark after a short read.  Loop thread. */
bool conc__io_drained(conc_coro *c, int fd);
void conc__io_set_drained(conc_coro *c, int fd);

/* Await f from coroutine c until deadline.  With shield, cancellation
 * does not end the wait: it is remembered and the call returns
 * CONC_ECANCELED once f is done (f's result still in *result).  Returns
 * f's outcome or the wait's error. */
int conc__await_future(conc_coro *c, conc_future *f, double deadline,
                       bool shield, void **result);

#endif
