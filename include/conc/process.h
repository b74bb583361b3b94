/* conc/process.h - child processes running a function (multiprocessing).
 *
 * Python's multiprocessing.Process, with the "fork" start method:
 *
 *   p = Process(target=f, args=(x,))     conc_process p;
 *   p.daemon = True; p.start()            o.daemon = true;
 *                                         conc_process_start(&p, f, x, &o)
 *   p.join(timeout)                       conc_process_join(&p, timeout)
 *   p.exitcode                            conc_process_exitcode(&p, &code)
 *   p.is_alive(), p.pid                   conc_process_is_alive, _pid
 *   p.terminate(), p.kill()               conc_process_terminate, _kill
 *
 * Start method: this version starts children by plain fork() of the calling
 * process.  The child is a copy of the caller: in a multi-threaded parent
 * only the calling thread exists in the child, so the child must not use
 * locks other threads may have held (malloc is made safe by glibc; conc's
 * own pools hold their locks across fork).  The fork-server start method of
 * DECISIONS.md ("Processes") is not built yet; it will become the default
 * and plain fork stay available on request.
 *
 * Children are tracked with pidfds: there is no SIGCHLD handler and no
 * waitpid(-1), so other code's children are never reaped by conc.  A child
 * must be joined (conc_process_join returning 0) to release its pidfd and
 * its zombie.
 *
 * Daemon children never outlive their parent, even when the parent is
 * SIGKILLed: the child holds the read end of a pipe whose write end only
 * the parent holds (conc closes the write ends of earlier daemons in each
 * child it starts); when the parent dies the pipe reports end-of-file and
 * the kernel delivers SIGKILL to the child (F_SETSIG on the read end).
 * Unlike PR_SET_PDEATHSIG this does not depend on the thread that forked.
 * A child forked by other code (not conc) inherits those write ends and
 * keeps daemons alive until it exits or execs (they are close-on-exec).
 *
 * conc_process_start flushes every stdio stream before it forks, so that
 * buffered output is not written twice.  The child runs fn(arg) with the
 * caller's signal mask and signal dispositions, then flushes stdio and ends with _exit(fn's return value
 * & 255): atexit handlers of the parent do not run in the child.  SIGPIPE
 * is not changed: conc's own writes to pipes and sockets never raise it.
 *
 * A conc_process is caller-allocated storage; conc never frees it.
 * Thread safety: any thread may call any function on a started process;
 * calls on one conc_process are serialised internally.  Of the process
 * calls only conc_process_join blocks; conc_conn_send / _recv block.
 */
#ifndef CONC_PROCESS_H
#define CONC_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque, caller-allocated.  Zero-filled storage is "not started". */
typedef struct conc_process {
  union {
    unsigned char bytes[64];
    void *align_p_;
    long long align_ll_;
  } opaque_;
} conc_process;

/* The child's function: its return value (0..255) is the exit code. */
typedef int (*conc_process_fn)(void *arg);

typedef struct conc_process_options {
  size_t size; /* sizeof(conc_process_options); set by _init */
  bool daemon; /* end the child when the parent dies, even by SIGKILL */
} conc_process_options;

/* Fill o with defaults (not a daemon). */
CONC_EXTERN void conc_process_options_init(conc_process_options *o);

/* Fork a child that runs fn(arg) and exits with its return value.  opts
 * may be NULL.  p must be zero-filled or a process already joined.
 * Returns 0, CONC_EINVAL (NULL p or fn, bad options, p started and not
 * joined), CONC_EAGAIN (process limit), CONC_ENOMEM, or CONC_ENOTSUP (the
 * kernel has no pidfds, before 5.4).  On failure no child runs.  Any
 * thread; never blocks beyond fork itself. */
CONC_EXTERN int conc_process_start(conc_process *p, conc_process_fn fn,
                                   void *arg,
                                   const conc_process_options *opts);

/* Wait at most timeout seconds (negative: forever) for the child to end,
 * then reap it and release its pidfd.  Returns 0 (ended and reaped; join
 * again also returns 0), CONC_ETIMEDOUT (still running), CONC_EINVAL (p
 * never started).  Blocks; retries across EINTR. */
CONC_EXTERN int conc_process_join(conc_process *p, double timeout);

/* The exit status once the child has ended: *code >= 0 is its exit code,
 * *code < 0 is minus the signal that ended it (Python's exitcode).  Reaps
 * the child if it has ended.  Returns 0, CONC_EAGAIN (still running),
 * CONC_EINVAL (NULL, never started).  Never blocks. */
CONC_EXTERN int conc_process_exitcode(conc_process *p, int *code);

/* True while the child runs (it is reaped as soon as it is seen ended).
 * False for a process never started.  Never blocks. */
CONC_EXTERN bool conc_process_is_alive(conc_process *p);

/* Send SIGTERM / SIGKILL.  A child that has already ended is left alone
 * (returns 0).  Returns 0 or CONC_EINVAL (never started).  Never blocks. */
CONC_EXTERN int conc_process_terminate(conc_process *p);
CONC_EXTERN int conc_process_kill(conc_process *p);

/* The child's process id (still valid after it was reaped, for logs), or
 * 0 if p was never started. */
CONC_EXTERN int conc_process_pid(const conc_process *p);

/* ---- Pipe (multiprocessing.Pipe): two connected ends ---- */

/* One end of a pipe: caller-allocated, zero-filled storage is "closed".
 * Create both ends with conc_pipe_open before forking; each process then
 * closes the end it does not use (or both, when done).  Messages are
 * framed (each receive returns one whole message, any size) and flow both
 * ways over a Unix stream socket pair.  Meant for small control messages:
 * large payloads belong in conc_queue or conc_shm.
 *
 * Writes never raise SIGPIPE (MSG_NOSIGNAL): a peer that closed its end or
 * died gives CONC_ECLOSED.  Timeouts bound the wait for a message to start
 * (room to send / first byte to receive); once a message has started it is
 * sent or received whole, unless the peer goes away (CONC_ECLOSED, the
 * part received is dropped).  One sender and one receiver at a time per
 * end (use a conc_lock to share an end between threads). */
typedef struct conc_conn {
  union {
    unsigned char bytes[8];
    int align_i_;
  } opaque_;
} conc_conn;

/* Open a pipe: *a and *b are its two ends (descriptors close-on-exec).
 * Returns 0, CONC_EINVAL (NULL), or -errno (e.g. -EMFILE). */
CONC_EXTERN int conc_pipe_open(conc_conn *a, conc_conn *b);

/* Send msg[0..len) as one message.  Returns 0, CONC_ETIMEDOUT (nothing was
 * sent), CONC_ECLOSED (the peer end is closed, or this one), CONC_EINVAL.
 * Blocks. */
CONC_EXTERN int conc_conn_send(conc_conn *c, const void *msg, size_t len,
                               double timeout);

/* Receive one message: *msg (conc's allocator, never NULL; free with
 * conc_queue_msg_free) and *len.  Returns 0, CONC_ETIMEDOUT (no message
 * started), CONC_ECLOSED (the peer closed its end and nothing is left),
 * CONC_ENOMEM (the message was read and dropped), CONC_ERANGE (a length
 * no conc peer sends: the other end is not a conc_conn), CONC_EINVAL.
 * Blocks. */
CONC_EXTERN int conc_conn_recv(conc_conn *c, void **msg, size_t *len,
                               double timeout);

/* Close this end.  Returns 0 or CONC_EINVAL (NULL or already closed). */
CONC_EXTERN int conc_conn_close(conc_conn *c);

#ifdef __cplusplus
}
#endif
#endif
