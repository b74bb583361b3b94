/* conc/queue.h - a bounded queue of byte messages between processes.
 *
 * Python's multiprocessing.Queue for bytes: create it, fork children (they
 * inherit it), then any process may put and get.  The queue lives in an
 * anonymous shared-memory block (conc/shm.h): a ring of capacity_bytes
 * guarded by process-shared conc_lock / conc_cond (conc/sync.h).
 *
 *   q = Queue(maxsize)           conc_queue_create(&q, &opts)
 *   q.put(b, timeout=t)          conc_queue_put(q, b, n, t)
 *   q.put_nowait(b)              conc_queue_try_put(q, b, n)
 *   q.get(timeout=t)             conc_queue_get(q, &m, &n, t); ...
 *                                conc_queue_msg_free(m)
 *   q.get_nowait()               conc_queue_try_get(q, &m, &n)
 *   q.qsize()                    conc_queue_count(q)
 *   q.close()                    conc_queue_close(q)   (see below)
 *
 * Messages of any size: a message whose record fits in the ring is copied
 * in one step; a larger one travels in chunks through the ring while its
 * reader drains it (one large message streams at a time; messages never
 * interleave).  Payloads are never passed byte by byte through a pipe.
 *
 * Order: FIFO across all putters, as serialised by the queue.
 *
 * Close: conc_queue_close marks the queue closed for every process.  Later
 * puts return CONC_ECLOSED; gets return the messages still queued, then
 * CONC_ECLOSED.  (Unlike Python's close, which only affects the caller.)
 *
 * Dead peers: a process that dies (even by SIGKILL) while holding the
 * queue's lock or in the middle of a put or get never corrupts the queue
 * or blocks the others for good: the next process to take the lock detects
 * the dead owner (conc_lock's CONC_EOWNERDEAD) and repairs the queue
 * internally; a message whose put did not complete is dropped, a message
 * whose get did not complete is lost with its reader.  Callers see no
 * error code for this: the waits of the others last at most a liveness
 * re-check slice (about 100 ms; sleepers wake that often) longer.  Processes must share a pid
 * namespace (see conc/sync.h).
 *
 * Timeouts: seconds, negative waits forever, 0 polls.  A get that has begun
 * receiving a chunked message waits for the rest of it past its timeout
 * while its writer lives (the writer is copying at memory speed); a put
 * that times out in the middle of a chunked message withdraws it (readers
 * drop the part they saw) and returns CONC_ETIMEDOUT.
 *
 * Ownership: conc_queue_create returns a handle owned by the calling
 * process; a forked child owns its copy.  Every process that holds a
 * handle calls conc_queue_destroy on it (the shared memory goes away with
 * the last one; nothing is left in /dev/shm).  Got messages are owned by
 * the caller: free them with conc_queue_msg_free.
 *
 * Thread safety: any thread of any process sharing the queue may call any
 * function, except that conc_queue_destroy must be the last call on a
 * handle in its process.
 */
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include <stddef.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_queue conc_queue;

typedef struct conc_queue_options {
  size_t size;           /* sizeof(conc_queue_options); set by _init */
  size_t capacity_bytes; /* ring size (rounded up to 8, at least 64);
                            default 1 MiB.  Each message takes its length
                            rounded up to 8 plus 24 bytes of header. */
  size_t max_messages;   /* at most this many messages queued; 0 (the
                            default): bounded by bytes only */
} conc_queue_options;

/* Fill o with defaults. */
CONC_EXTERN void conc_queue_options_init(conc_queue_options *o);

/* Create a queue; *q receives the handle.  opts may be NULL.  Returns 0,
 * CONC_EINVAL (NULL q, bad options), CONC_ENOMEM, or an error of
 * conc_shm_create_anon.  Any thread; never blocks. */
CONC_EXTERN int conc_queue_create(conc_queue **q,
                                  const conc_queue_options *opts);

/* Release this process's handle (and the shared memory if it is the last
 * one).  Does not close the queue for others.  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_queue_destroy(conc_queue *q);

/* Append a copy of msg[0..len) (len may be 0; msg may be NULL then),
 * waiting at most timeout seconds for room.  Returns 0, CONC_ETIMEDOUT
 * (nothing queued), CONC_ECLOSED, CONC_EINVAL (NULL q, NULL msg with
 * len > 0).  Blocks. */
CONC_EXTERN int conc_queue_put(conc_queue *q, const void *msg, size_t len,
                               double timeout);
/* As conc_queue_put with timeout 0, but CONC_EAGAIN instead of
 * CONC_ETIMEDOUT when there is no room (or another put holds the queue).
 * A message larger than the ring is streamed and may still wait for its
 * reader.  Never blocks otherwise. */
CONC_EXTERN int conc_queue_try_put(conc_queue *q, const void *msg,
                                   size_t len);

/* Remove the oldest message, waiting at most timeout seconds for one.  On
 * 0, *msg holds a copy (allocated with conc's allocator, never NULL, free
 * with conc_queue_msg_free) and *len its length.  Returns 0,
 * CONC_ETIMEDOUT, CONC_ECLOSED (closed and empty), CONC_ENOMEM (the
 * message stays queued), CONC_EINVAL.  Blocks. */
CONC_EXTERN int conc_queue_get(conc_queue *q, void **msg, size_t *len,
                               double timeout);
/* As conc_queue_get with timeout 0, but CONC_EAGAIN when empty (or
 * another get holds the queue). */
CONC_EXTERN int conc_queue_try_get(conc_queue *q, void **msg, size_t *len);

/* Free a message returned by a get.  NULL is ignored. */
CONC_EXTERN void conc_queue_msg_free(void *msg);

/* Mark the queue closed for every process and wake all waiters.  Closing
 * twice is harmless.  Returns 0 or CONC_EINVAL. */
CONC_EXTERN int conc_queue_close(conc_queue *q);

/* Messages queued (a snapshot; a message still being streamed counts).
 * Returns the count (>= 0) or CONC_EINVAL. */
CONC_EXTERN long conc_queue_count(conc_queue *q);

#ifdef __cplusplus
}
#endif
#endif
