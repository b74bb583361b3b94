/* pchan.h - a process pool worker's channel: two single-producer
 * single-consumer byte rings of frames (wire.h) in one shared mapping.
 *
 *   [ struct conc__pchan (4 KiB) | requests: cap bytes | results: cap bytes
 *     | output arena: 2 cap bytes ]
 *
 * The output arena holds big task outputs in place: the parent offers a
 * task a stretch of it (a TASK frame with FF_ARENA), the worker lends it
 * to the task as its output buffer, and the parent hands the bytes to the
 * caller where they are (process_pool.c), taking the stretch back when the
 * caller frees the result.  The parent allocates it in 64 units.
 *
 * The parent produces requests and consumes results; the worker the
 * reverse.  head and tail count bytes since the start, so head - tail is
 * the fill and the offset of byte k is k & (cap - 1).  A frame never
 * wraps: a producer that reaches the end writes a PAD frame and starts
 * again at 0.  A request's bytes stay in the ring while its task runs (the
 * task reads its input in place); the worker releases them afterwards.
 *
 * Sleeping, both ways a Dekker pair (seq_cst store, then seq_cst load):
 *   worker  stores req.sleep = 1, re-checks the ring, futex-waits on
 *           req.sleep; the parent, after publishing, sees sleep == 1 and
 *           wakes it.
 *   parent  (the collector thread) stores rsp.sleep = 1 in every
 *           channel, re-checks every ring, then sleeps in poll(); a worker
 *           that publishes a result and sees rsp.sleep == 1 writes the
 *           pool's eventfd - unless `helped` says a waiting thread
 *           collects results itself (below).
 *   room    a worker whose result does not fit sets rsp.room and waits on
 *           it; the parent wakes it after consuming.
 * The futexes are shared (not FUTEX_PRIVATE): the words live in a memfd
 * mapped by two processes.  A peer's fields are never trusted: every frame
 * is decoded with bounds checks (CONC_EPROTO kills the worker).
 */
#ifndef CONC_PCHAN_H
#define CONC_PCHAN_H

#include "wire.h"

struct conc__ring {
  CONC_ALIGNED_CL _Atomic uint64_t head; /* producer's */
  CONC_ALIGNED_CL _Atomic uint64_t tail; /* consumer's */
  CONC_ALIGNED_CL _Atomic uint32_t sleep; /* consumer asleep (futex) */
  _Atomic uint32_t room;                  /* producer waits for room */
};

typedef struct conc__pchan {
  struct conc__ring req, rsp;
  CONC_ALIGNED_CL _Atomic uint64_t started; /* id of the running task */
  _Atomic uint64_t started_ns;             /* CLOCK_MONOTONIC at start */
  _Atomic uint64_t stop_id;                /* stop requested for this id */
  _Atomic uint32_t stop_seq;               /* futex: bumped with stop_id */
  _Atomic uint32_t parent_sleep;           /* collector asleep */
  uint64_t cap;                            /* bytes per ring */
  /* Kill handshake (a Dekker pair): the parent stores doomed = id, then
   * re-reads started and kills only if it still is id; a worker stores
   * started = next, then reads doomed, and if a kill is under way for
   * another task it backs off (started = 0) and waits on doomed_seq,
   * which the parent bumps when it decides not to kill after all. */
  _Atomic uint64_t doomed;
  _Atomic uint32_t doomed_seq;
  uint32_t spin_ns; /* how long an idle worker spins before it sleeps */
  /* A thread of the parent waiting for a result collects results itself
   * (process_pool.c, pp_helping): a worker that publishes one then leaves
   * the collector asleep.  Dekker pair: the worker stores head, then
   * loads helped; the parent stores helped = 0, then loads head and wakes
   * the collector for what it finds. */
  _Atomic uint32_t helped;
} conc__pchan;

#define CONC__PCHAN_HDR 4096u
_Static_assert(sizeof(conc__pchan) <= CONC__PCHAN_HDR, "pchan header");

static inline unsigned char *conc__pchan_req(conc__pchan *c) {
  return (unsigned char *)c + CONC__PCHAN_HDR;
}
static inline unsigned char *conc__pchan_rsp(conc__pchan *c) {
  return (unsigned char *)c + CONC__PCHAN_HDR + c->cap;
}

#define CONC__ARENA_UNITS 64u
static inline unsigned char *conc__pchan_arena(conc__pchan *c) {
  return (unsigned char *)c + CONC__PCHAN_HDR + 2 * c->cap;
}
/* Bytes of the whole mapping for rings of cap bytes. */
static inline size_t conc__pchan_len(uint64_t cap) {
  return CONC__PCHAN_HDR + 4 * (size_t)cap;
}

/* Largest frame (header + payload) sent inline; bigger bulk goes by memfd. */
static inline size_t conc__pchan_inline_max(uint64_t cap) { return cap / 2; }

/* Producer: room for a frame of n bytes (n a multiple of 16, <= cap / 2).
 * Returns a pointer to write it at, or NULL when the ring is too full; a
 * PAD frame may be written first (counted in *adv).  Publish with
 * conc__ring_publish(r, *adv + n). */
unsigned char *conc__ring_reserve(struct conc__ring *r, unsigned char *data,
                                  uint64_t cap, size_t n, size_t *adv);
/* Make n more bytes visible.  Returns true if the consumer was asleep (the
 * caller wakes it). */
bool conc__ring_publish(struct conc__ring *r, size_t n);

/* Consumer: the next frame, skipping PAD frames.  Returns 1 with *f and
 * *adv (bytes to release when done), 0 if the ring is empty, CONC_EPROTO
 * for bytes that are not a valid frame.  Several frames may be peeked
 * before any is released: pass the bytes already taken in `taken`. */
int conc__ring_peek(struct conc__ring *r, const unsigned char *data,
                    uint64_t cap, uint64_t taken, conc__frame *f,
                    size_t *adv);
/* Release n bytes.  Returns true if the producer waits for room. */
bool conc__ring_release(struct conc__ring *r, size_t n);

/* memfd holding n bytes copied from p; -errno on failure. */
int conc__memfd_from(const void *p, size_t n);

/* Send / receive one descriptor with a byte of data on a Unix socket
 * (flags: MSG_DONTWAIT or 0).  recv: CONC_ECLOSED at end of file,
 * CONC_EAGAIN, CONC_EPROTO (no descriptor arrived), -errno. */
int conc__send_fd(int sock, int fd, int flags);
int conc__recv_fd(int sock, int *fd, int flags);

/* Make the calling process end (SIGKILL) when the last write end of the
 * pipe whose read end is fd closes: its parent died.  Returns 0, or -1 if
 * the parent is already gone or the set-up failed. */
int conc__watch_parent(int fd);

/* process.c: write ends the children of conc_process_start must close. */
int conc__daemon_fd_add(int fd);
void conc__daemon_fd_remove(int fd);

#endif
