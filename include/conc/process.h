/* conc/process.h - child processes running a function (multiprocessing).
 *
 * Python's multiprocessing.Process:
 *
 *   p = Process(target=f, args=(x,))     conc_process p = {0};
 *   p.daemon = True; p.start()            o.daemon = true;
 *                                         conc_process_start_task(&p,
 *                                             "f", x, xlen, &o)
 *                                         or, forked: conc_process_start(
 *                                             &p, f, x, &o)
 *   p.join(timeout)                       conc_process_join(&p, timeout)
 *   p.exitcode                            conc_process_exitcode(&p, &code)
 *   p.is_alive(), p.pid                   conc_process_is_alive, _pid
 *   p.terminate(), p.kill()               conc_process_terminate, _kill
 *
 * Start methods (Python's multiprocessing "forkserver" and "fork"):
 *
 *   CONC_START_FORKSERVER  the default for registered tasks
 *     (conc_process_start_task): the child is forked from a fork server,
 *     a fresh execution of the program (/proc/self/exe) stopped in
 *     conc_init, started on first use and shared by every such child of
 *     the process.  The child is single-threaded and small whatever the
 *     caller runs or holds; it inherits nothing from the caller but the
 *     task's name and input bytes (and the standard streams, environment
 *     and working directory the program had when the server started).
 *     Needs conc_init(&argc, &argv) first thing in main (conc/base.h).
 *   CONC_START_FORK  plain fork() of the calling process: the only method
 *     for a function pointer (conc_process_start), on request for tasks.
 *     The child is a copy of the caller: in a multi-threaded parent only
 *     the calling thread exists in the child, so the child must not use
 *     locks other threads may have held (malloc is made safe by glibc;
 *     conc's own pools hold their locks across fork).
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
 * The fork server is library state: conc_library_shutdown() stops it when
 * none of its children is left unjoined (a later start begins a new one);
 * otherwise it ends with the process.  After fork() a child does not use
 * its parent's server: it starts its own when it needs one.
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

/* How a child process starts (see the top of this header). */
typedef enum conc_start_method {
  CONC_START_DEFAULT = 0,    /* tasks: the fork server; functions: fork */
  CONC_START_FORKSERVER = 1, /* a child of the fork server */
  CONC_START_FORK = 2,       /* fork() of the caller */
} conc_start_method;

typedef struct conc_process_options {
  size_t size; /* sizeof(conc_process_options); set by _init */
  bool daemon; /* end the child when the parent dies, even by SIGKILL */
  conc_start_method start_method; /* CONC_START_DEFAULT */
} conc_process_options;

/* Fill o with defaults (not a daemon, the default start method). */
CONC_EXTERN void conc_process_options_init(conc_process_options *o);

/* Fork a child that runs fn(arg) and exits with its return value.  opts
 * may be NULL.  p must be zero-filled or a process already joined.
 * Returns 0, CONC_EINVAL (NULL p or fn, bad options, p started and not
 * joined), CONC_ENOTSUP (start_method CONC_START_FORKSERVER: a function
 * pointer means nothing in another program image - use a registered task;
 * or the kernel has no pidfds, before 5.4), CONC_EAGAIN (process limit),
 * CONC_ENOMEM.  On failure no child runs.  Any thread; never blocks
 * beyond fork itself. */
CONC_EXTERN int conc_process_start(conc_process *p, conc_process_fn fn,
                                   void *arg,
                                   const conc_process_options *opts);

/* Start a child that runs the registered task `name` (CONC_TASK in
 * conc/task.h) on in[0..len) - copied now, the caller keeps its buffer -
 * and exits: code 0 if the task succeeded; if it failed, the task's own
 * code when that is 1..255, else 1, its message written to the log
 * (stderr by default).  Its output bytes are dropped: send results back
 * through a conc_queue, a pipe or shared memory.  The start method is the
 * fork server unless opts asks for CONC_START_FORK.  The child is joined,
 * killed, etc. as any other (the calls below).
 *
 *   CONC_TASK(crunch, in, len, out) { ... }
 *   ...
 *   conc_process p = {0};
 *   conc_process_start_task(&p, "crunch", buf, n, NULL);
 *   conc_process_join(&p, -1);
 *
 * Returns 0, CONC_EINVAL (NULL p or name, NULL in with len > 0, bad
 * options, p started and not joined), CONC_ENOENT (no such task), CONC_EPERM
 * (the fork server is needed and conc_init was not called),
 * CONC_EREGISTRY (the server's task registry differs: a task registered
 * at run time), CONC_EBROKEN (the server did not answer), CONC_EAGAIN
 * (process or descriptor limit), CONC_ENOMEM, -errno.  On failure no
 * child runs.  Any thread (starts are serialised); blocks while the fork
 * server starts (first use: an exec of the program, a few milliseconds)
 * and forks. */
CONC_EXTERN int conc_process_start_task(conc_process *p, const char *name,
                                        const void *in, size_t len,
                                        const conc_process_options *opts);

/* Wait at most timeout seconds (negative: forever) for the child to end,
 * then reap it and release its pidfd.  Returns 0 (ended and reaped; join
 * again also returns 0), CONC_ETIMEDOUT (still running), CONC_EINVAL (p
 * never started).  Blocks; retries across EINTR. */
CONC_EXTERN int conc_process_join(conc_process *p, double timeout);

/* The exit status once the child has ended: *code >= 0 is its exit code,
 * *code < 0 is minus the signal that ended it (Python's exitcode); 255
 * when it cannot be known (someone else reaped the child, or the fork
 * server that started it died).  Reaps the child if it has ended.  Returns 0, CONC_EAGAIN (still running),
 * CONC_EINVAL (NULL, never started).  Never blocks (for a child of the
 * fork server that has just ended, beyond the moment the server takes to
 * report its status). */
CONC_EXTERN int conc_process_exitcode(conc_process *p, int *code);

/* True while the child runs (it is reaped as soon as it is seen ended).
 * False for a process never started.  Never blocks (as exitcode). */
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
