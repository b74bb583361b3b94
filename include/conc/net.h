/* conc/net.h - I/O on the coroutine loop: fd readiness, callback watches
 * and timers, TCP sockets, bridges to executors and other threads,
 * signals and regular files.
 *
 * The loop (conc/coro.h) gets an epoll poller the first time anything
 * here needs it: the loop's idle sleep becomes epoll_wait until the next
 * deadline, and an eventfd in the epoll set wakes it from other threads.
 * Every blocking call here parks the calling coroutine, never the thread:
 * other coroutines of the loop keep running meanwhile.
 *
 * Coroutine style (asyncio streams):
 *
 *   static int echo(void *arg, void **result) {
 *     int fd = (int)(intptr_t)arg;
 *     char buf[4096];
 *     size_t n;
 *     while (conc_sock_read(fd, buf, sizeof buf, 30.0, &n) == 0 && n > 0)
 *       if (conc_sock_write_all(fd, buf, n, 30.0, NULL) != 0)
 *         break;
 *     conc_sock_close(fd);
 *     return 0;
 *   }
 *   ... conc_tcp_listen("127.0.0.1", 8080, 128, &lfd);
 *   ... while (conc_tcp_accept(lfd, -1, &fd) == 0)
 *         conc_coro_spawn(NULL, echo, (void *)(intptr_t)fd, NULL, NULL);
 *
 * Callback style, for libraries with their own I/O state machine (libcurl's
 * multi-socket interface): watch fds and run one-shot timers on the loop;
 * the callbacks run on the loop's thread, between coroutine runs:
 *
 *   static void on_fd(conc_loop *l, int fd, unsigned ev, void *arg) {
 *     int still, flags = (ev & CONC_POLL_IN ? CURL_CSELECT_IN : 0) |
 *                        (ev & CONC_POLL_OUT ? CURL_CSELECT_OUT : 0) |
 *                        (ev & CONC_POLL_ERR ? CURL_CSELECT_ERR : 0);
 *     curl_multi_socket_action(multi, fd, flags, &still);
 *     check_done(multi);   // curl_multi_info_read, wake waiting coroutines
 *   }
 *   static int sock_cb(CURL *e, curl_socket_t s, int what, void *u, void *p) {
 *     if (what == CURL_POLL_REMOVE)
 *       return conc_loop_unwatch(loop, s) == 0 ? 0 : -1;
 *     unsigned ev = (what & CURL_POLL_IN ? CONC_POLL_IN : 0) |
 *                   (what & CURL_POLL_OUT ? CONC_POLL_OUT : 0);
 *     return conc_loop_watch(loop, s, ev, on_fd, NULL) == 0 ? 0 : -1;
 *   }
 *   static void on_timer(conc_loop_timer *t, void *arg) {
 *     int still;
 *     curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &still);
 *     check_done(multi);
 *   }
 *   static int timer_cb(CURLM *m, long ms, void *u) {   //
 * CURLMOPT_TIMERFUNCTION return ms < 0 ? conc_loop_timer_stop(timer) :
 * conc_loop_timer_start(timer, ms / 1000.0);
 *   }
 *   ... conc_loop_timer_create(loop, on_timer, NULL, &timer);
 *   ... curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
 *   ... curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
 *   A coroutine adds easy handles and waits (conc_coro_event_wait, say)
 *   until check_done reports its transfer finished.
 *
 * Readiness is level-triggered, as poll(2): a watch's callback runs again
 * on the next loop pass while the fd stays ready.  Spurious readiness is
 * possible (an fd closed and reopened under the same number within one
 * pass), so fds must be non-blocking.
 *
 * Fds: conc does not own the fds given to it, except that conc_sock_close
 * closes.  Close a watched or waited-on fd only through conc_sock_close
 * (or after conc_loop_unwatch with no coroutine waiting on it): the
 * loop's table is keyed by fd number, and epoll keeps a registration
 * alive while a dup of the fd exists.  (Sockets that conc creates itself
 * are safe either way: creating one resets its number's record.)
 *
 * Threads: "coroutine only" calls return CONC_EPERM outside a coroutine;
 * "loop thread only" calls return CONC_EPERM from another thread.
 * Errors: 0 or a negative code; operating-system failures are -errno (the
 * common ones have names in conc/error.h: CONC_ECONNREFUSED,
 * CONC_ECONNRESET, CONC_EPIPE, CONC_EADDRINUSE, CONC_EBADF).
 * Time: relative timeouts in seconds (negative waits forever, 0 polls);
 * each blocking call has an _until twin that takes an absolute deadline on
 * conc_now() instead (for a budget shared by several calls).
 */
#ifndef CONC_NET_H
#define CONC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "conc/coro.h"
#include "conc/executor.h"
#include "conc/future.h"
#include "conc/task.h"
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness events (the same bits as EPOLLIN, EPOLLOUT, EPOLLERR and
 * EPOLLHUP).  ERR and HUP are always reported, whether asked for or not. */
#define CONC_POLL_IN 0x001u
#define CONC_POLL_OUT 0x004u
#define CONC_POLL_ERR 0x008u
#define CONC_POLL_HUP 0x010u

/* ---- readiness from a coroutine ----------------------------------- */

/* Park the calling coroutine until fd is ready for events (CONC_POLL_IN
 * and/or CONC_POLL_OUT) or timeout seconds pass.  Returns the ready events
 * (> 0: a mask of CONC_POLL_*, possibly with ERR or HUP), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_ECLOSED (conc_sock_close closed fd meanwhile),
 * CONC_EINVAL (fd < 0, no IN/OUT in events, NaN timeout), CONC_EBUSY
 * (another coroutine already waits on fd for one of these events),
 * CONC_ENOTSUP (fd cannot be polled: a regular file; see conc_file_read),
 * CONC_EBADF, CONC_ENOMEM, CONC_EPERM outside a coroutine.  Coroutine only;
 * parks. */
CONC_EXTERN int conc_coro_wait_fd(int fd, unsigned events, double timeout);
/* As conc_coro_wait_fd, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_coro_wait_fd_until(int fd, unsigned events,
                                        double deadline);

/* ---- callback watches and timers (libcurl multi-socket) ------------ */

/* A watch callback: fd is ready for events (a subset of what the watch
 * asked for, plus CONC_POLL_ERR / CONC_POLL_HUP).  Runs on the loop's
 * thread outside any coroutine: it must not wait (coroutine-only calls
 * return CONC_EPERM there), but may spawn coroutines, set coroutine
 * events, send on buffered channels with try_, and change or remove any
 * watch or timer (its own included). */
typedef void (*conc_watch_fn)(conc_loop *loop, int fd, unsigned events,
                              void *arg);

/* Watch fd for events (CONC_POLL_IN and/or CONC_POLL_OUT), calling
 * cb(loop, fd, ready, arg) while it is ready.  Watching an fd that is
 * already watched replaces its events, callback and argument (one watch
 * per fd; coroutines may wait on a watched fd as well).  Returns 0,
 * CONC_EINVAL (NULL loop or cb, fd < 0, no IN/OUT in events),
 * CONC_ENOTSUP (regular file), CONC_EBADF, CONC_ENOMEM, CONC_EPERM from
 * another thread.  Loop thread only; never blocks.  A watch does not keep
 * conc_loop_run running: the loop returns when no coroutine is left. */
CONC_EXTERN int conc_loop_watch(conc_loop *loop, int fd, unsigned events,
                                conc_watch_fn cb, void *arg);

/* Remove fd's watch: its callback does not run again, even for events
 * already collected in this loop pass.  Returns 0, CONC_ENOENT (fd not
 * watched), CONC_EINVAL, CONC_EPERM from another thread.  Loop thread
 * only; never blocks. */
CONC_EXTERN int conc_loop_unwatch(conc_loop *loop, int fd);

typedef struct conc_loop_timer conc_loop_timer;
/* A timer callback; runs on the loop's thread outside any coroutine, with
 * the same rules as a watch callback. */
typedef void (*conc_timer_fn)(conc_loop_timer *t, void *arg);

/* Create a stopped one-shot timer on loop that calls cb(t, arg) when it
 * fires.  Returns 0 with *out set, CONC_EINVAL, CONC_ENOMEM, CONC_EPERM
 * from another thread.  The caller destroys it with
 * conc_loop_timer_destroy before destroying the loop (conc_loop_destroy
 * returns CONC_EBUSY while timers exist).  Loop thread only. */
CONC_EXTERN int conc_loop_timer_create(conc_loop *loop, conc_timer_fn cb,
                                       void *arg, conc_loop_timer **out);

/* (Re)arm t to fire once, timeout seconds from now (0: on the next loop
 * pass).  An armed timer is re-armed (curl's timer function semantics).
 * Returns 0, CONC_EINVAL (NULL, negative or NaN timeout), CONC_ENOMEM.
 * Loop thread only; never blocks. */
CONC_EXTERN int conc_loop_timer_start(conc_loop_timer *t, double timeout);

/* Disarm t (no effect on a stopped timer).  Returns 0 or CONC_EINVAL.
 * Loop thread only. */
CONC_EXTERN int conc_loop_timer_stop(conc_loop_timer *t);

/* Whether t is armed.  Loop thread only. */
CONC_EXTERN bool conc_loop_timer_active(const conc_loop_timer *t);

/* Stop and free t (also from its own callback).  NULL is ignored. */
CONC_EXTERN void conc_loop_timer_destroy(conc_loop_timer *t);

/* ---- other threads -------------------------------------------------- */

/* Keep loop's conc_loop_run running, waiting for work from other threads,
 * even when no coroutine is left (as run_forever): conc_loop_ref adds a
 * hold, conc_loop_unref drops one and wakes the loop; run returns once no
 * hold and no coroutine is left.  conc_loop_destroy ignores holds.
 * Returns 0, CONC_EINVAL (NULL; unref without a hold), CONC_ENOMEM or an
 * fd error creating the poller.  Any thread; never blocks. */
CONC_EXTERN int conc_loop_ref(conc_loop *loop);
CONC_EXTERN int conc_loop_unref(conc_loop *loop);

/* run_coroutine_threadsafe: start fn(arg, &result) as a coroutine on loop
 * from any thread (the loop's own included).  It starts when the loop
 * next polls: at once if the loop runs, else when conc_loop_run is next
 * called (run does not return before starting it).
 * *out receives a future for the caller to release
 * (conc_future_release); its outcome is 0 with fn's result, CONC_ETASK
 * with fn's own error code as detail (conc_future_error) when fn returned
 * an error, or CONC_ECANCELED when the future was cancelled before the
 * coroutine started or the loop was destroyed first.  Cancelling the
 * future after the coroutine started does not stop it.  Returns 0,
 * CONC_EINVAL, CONC_ENOMEM, CONC_ECLOSED (the loop is being destroyed).
 * Any thread; never blocks.  loop must stay valid during the call. */
CONC_EXTERN int conc_loop_spawn_threadsafe(conc_loop *loop, conc_coro_fn fn,
                                           void *arg, conc_future **out);

/* Await a future of any executor (or a hand-made one) without blocking
 * the loop: the future's done callback wakes the loop through its
 * eventfd.  Returns f's outcome as conc_future_result does (0 with
 * *result set, CONC_ETASK, CONC_ECANCELED, ...), CONC_ETIMEDOUT,
 * CONC_ECANCELED when the awaiting coroutine is cancelled (f is not
 * affected; check conc_future_done to tell the two apart), CONC_EINVAL,
 * CONC_ENOMEM, CONC_EPERM outside a coroutine.  The caller keeps its
 * reference to f.  A small record stays attached to f until f completes.
 * Coroutine only; parks. */
CONC_EXTERN int conc_coro_await_future(conc_future *f, double timeout,
                                       void **result);
/* As conc_coro_await_future, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_coro_await_future_until(conc_future *f, double deadline,
                                             void **result);

/* asyncio.to_thread / run_in_executor: run fn(arg) on ex (NULL: the
 * default executor, conc_executor_default) and await its result without
 * blocking the loop.  Returns fn's outcome as conc_future_result does (0
 * with *result = fn's return value), a submit error (CONC_ESHUTDOWN,
 * CONC_EBROKEN, CONC_ENOMEM), CONC_EINVAL, CONC_EPERM outside a
 * coroutine, or CONC_ECANCELED when the coroutine is cancelled: a task
 * not yet started is cancelled; a running one is waited for (arg stays
 * valid while fn uses it) and its result is still stored in *result, so
 * that the caller can free it.  Coroutine only; parks. */
CONC_EXTERN int conc_coro_run_in_executor(conc_executor *ex, conc_fn fn,
                                          void *arg, void **result);

/* The loop as an executor: conc_executor_submit(ex, fn, arg, &f) from any
 * thread (the loop's own included) runs fn(arg) as a coroutine on loop's
 * thread, when the loop next polls (as conc_loop_spawn_threadsafe), and f
 * completes with fn's return value; fn may wait like any coroutine.
 * Tasks run as the loop gets to them (max_workers is 1, but tasks that
 * wait interleave).  Task-context calls made by fn (conc_task_fail, stop
 * requests) refer to its task until its first wait only.  Submit options:
 * the deadline applies; priority is ignored (FIFO).  Submitting after
 * shutdown, or once the loop is destroyed, returns CONC_ESHUTDOWN; tasks
 * queued when the loop is destroyed are cancelled.  conc_executor_shutdown
 * with wait (and conc_executor_destroy) waits until every submitted task
 * has finished or been cancelled, which needs the loop to run (or be
 * destroyed) on its thread meanwhile; on the loop's thread it returns
 * CONC_EDEADLK while tasks remain.  Not shut down at exit (no exit hook).
 * The executor must be destroyed (conc_executor_destroy) before the loop
 * is freed only if tasks may still be submitted; it holds no reference to
 * the loop itself, only to its inbox.  Returns 0, CONC_EINVAL, CONC_ENOMEM
 * or an fd error creating the loop's poller.  Any thread; never blocks. */
CONC_EXTERN int conc_loop_executor_create(conc_loop *loop,
                                          conc_executor **out);

/* ---- TCP ------------------------------------------------------------ */

/* Listen on host:port (host: a numeric IPv4/IPv6 address, or NULL for
 * all addresses; port 0 picks a free one, see conc_sock_local_port) with
 * SO_REUSEADDR and the given backlog (<= 0: SOMAXCONN).  *fd receives a
 * non-blocking, close-on-exec socket that the caller closes with
 * conc_sock_close.  Returns 0, CONC_EINVAL (NULL fd, port out of 0..65535,
 * host not numeric), CONC_EADDRINUSE, or another -errno.  Any thread;
 * never blocks. */
CONC_EXTERN int conc_tcp_listen(const char *host, int port, int backlog,
                                int *fd);

/* Accept one connection on the listening socket lfd (TCP, or any stream
 * listener such as conc_unix_listen's), waiting at most timeout seconds.
 * *fd receives a non-blocking, close-on-exec socket, with TCP_NODELAY set
 * for TCP (the caller closes it with conc_sock_close).  Returns 0,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ECLOSED (lfd closed by
 * conc_sock_close meanwhile), CONC_EINVAL, CONC_EBADF, another -errno
 * (CONC_ENOMEM, -EMFILE), CONC_EPERM outside a coroutine.  Coroutine only;
 * parks. */
CONC_EXTERN int conc_tcp_accept(int lfd, double timeout, int *fd);
/* As conc_tcp_accept, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_tcp_accept_until(int lfd, double deadline, int *fd);

/* Connect to host:port within timeout seconds (for name resolution and
 * connection together).  A host name is resolved by getaddrinfo on the
 * default executor (the loop keeps running); numeric addresses skip that.
 * Each resolved address is tried in turn.  *fd receives a non-blocking,
 * close-on-exec socket with TCP_NODELAY.  Returns 0, CONC_ECONNREFUSED,
 * CONC_ETIMEDOUT, CONC_ECANCELED, CONC_ENOENT (name not found), CONC_EAGAIN
 * (temporary resolver failure), CONC_EINVAL (NULL host or fd, port out of
 * 1..65535), another -errno of the last address tried, CONC_EPERM outside
 * a coroutine.  Coroutine only; parks. */
CONC_EXTERN int conc_tcp_connect(const char *host, int port, double timeout,
                                 int *fd);
/* As conc_tcp_connect, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_tcp_connect_until(const char *host, int port,
                                       double deadline, int *fd);

/* The local port of socket fd in *port.  Returns 0, CONC_EINVAL or
 * -errno (CONC_EBADF).  Any thread. */
CONC_EXTERN int conc_sock_local_port(int fd, int *port);

/* ---- Unix-domain stream sockets -------------------------------------- */

/* Listen on the Unix socket path (a filesystem path, shorter than 108
 * bytes) with the given backlog (<= 0: SOMAXCONN).  The socket file is
 * created; remove it (unlink) when done, and before listening again on the
 * same path.  *fd receives a non-blocking, close-on-exec socket; accept
 * on it with conc_tcp_accept (which accepts on any stream listener) and
 * close it with conc_sock_close.  Returns 0, CONC_EINVAL (NULL or empty
 * path, too long, NULL fd), CONC_EADDRINUSE (the path exists), other
 * -errno (CONC_ENOENT: no such directory).  Any thread; never blocks. */
CONC_EXTERN int conc_unix_listen(const char *path, int backlog, int *fd);

/* Connect to the Unix socket at path within timeout seconds (a full
 * backlog is retried until then).  *fd receives a non-blocking,
 * close-on-exec socket.  Returns 0, CONC_ENOENT (no such socket),
 * CONC_ECONNREFUSED (nobody listens there), CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EINVAL, other -errno, CONC_EPERM outside a
 * coroutine.  Coroutine only; parks. */
CONC_EXTERN int conc_unix_connect(const char *path, double timeout, int *fd);
/* As conc_unix_connect, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_unix_connect_until(const char *path, double deadline,
                                        int *fd);

/* ---- reading and writing (sockets, pipes, any pollable fd) ---------- */

/* Read up to len bytes: the read is tried first (one syscall when data is
 * ready) and on EAGAIN the coroutine waits for fd to become readable, at
 * most timeout seconds.  *n receives the count; 0 means end of stream
 * (also for len 0).  Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ECLOSED (closed by conc_sock_close meanwhile), CONC_ECONNRESET,
 * CONC_EINVAL (NULL buf with len > 0, NULL n), CONC_EBADF, another -errno,
 * CONC_EPERM outside a coroutine.  Coroutine only; parks. */
CONC_EXTERN int conc_sock_read(int fd, void *buf, size_t len, double timeout,
                               size_t *n);
/* As conc_sock_read, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_sock_read_until(int fd, void *buf, size_t len,
                                     double deadline, size_t *n);

/* Read exactly len bytes within timeout seconds (for the whole call).
 * *n (may be NULL) receives the bytes read, also on failure.  Returns 0,
 * CONC_ECLOSED if the stream ended first (asyncio's IncompleteReadError),
 * or as conc_sock_read.  Coroutine only; parks. */
CONC_EXTERN int conc_sock_read_exactly(int fd, void *buf, size_t len,
                                       double timeout, size_t *n);
/* As conc_sock_read_exactly, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_sock_read_exactly_until(int fd, void *buf, size_t len,
                                             double deadline, size_t *n);

/* Write up to len bytes (at least one unless len is 0), waiting for room
 * at most timeout seconds.  Sockets are written with MSG_NOSIGNAL: a
 * closed peer gives CONC_EPIPE, never SIGPIPE (other fds, such as pipes,
 * are written with write(2), where SIGPIPE is the process's business).
 * *n receives the count.  Returns 0, CONC_ETIMEDOUT, CONC_ECANCELED,
 * CONC_ECLOSED, CONC_EPIPE, CONC_ECONNRESET, CONC_EINVAL, CONC_EBADF,
 * another -errno, CONC_EPERM outside a coroutine.  Coroutine only;
 * parks. */
CONC_EXTERN int conc_sock_write(int fd, const void *buf, size_t len,
                                double timeout, size_t *n);
/* As conc_sock_write, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_sock_write_until(int fd, const void *buf, size_t len,
                                      double deadline, size_t *n);

/* Write all len bytes within timeout seconds (for the whole call); *n (may
 * be NULL) receives what was written, also on failure.  Returns as
 * conc_sock_write.  Coroutine only; parks. */
CONC_EXTERN int conc_sock_write_all(int fd, const void *buf, size_t len,
                                    double timeout, size_t *n);
/* As conc_sock_write_all, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_sock_write_all_until(int fd, const void *buf, size_t len,
                                          double deadline, size_t *n);

/* shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR.  Returns 0,
 * CONC_EINVAL, -errno (-ENOTCONN, CONC_EBADF).  Any thread; never
 * blocks. */
CONC_EXTERN int conc_sock_shutdown(int fd, int how);

/* Close fd.  On a loop thread, coroutines of that loop waiting on fd are
 * woken with CONC_ECLOSED and fd's watch is removed first.  Returns 0,
 * CONC_EINVAL (fd < 0), CONC_EBADF.  Any thread; never blocks. */
CONC_EXTERN int conc_sock_close(int fd);

/* ---- signals (loop.add_signal_handler) ------------------------------ */

/* Wait until one of the signals signals[0..n-1] (SIGINT, SIGTERM, ...) is
 * pending for the process or the calling thread, consume it and store its
 * number in *signo.  The signals are blocked in the calling thread (and
 * stay blocked); block them in every thread of the process (before
 * starting threads, say), or another thread may receive them instead.
 * Uses a signalfd, so the loop keeps running.  Returns 0, CONC_ETIMEDOUT,
 * CONC_ECANCELED, CONC_EINVAL (NULL signals or signo, n == 0, a number
 * that is not a signal, SIGKILL or SIGSTOP), -errno from signalfd,
 * CONC_EPERM outside a coroutine.  Coroutine only; parks. */
CONC_EXTERN int conc_coro_wait_signal(const int *signals, size_t n,
                                      double timeout, int *signo);
/* As conc_coro_wait_signal, with an absolute deadline on conc_now() (NaN:
 * CONC_EINVAL). */
CONC_EXTERN int conc_coro_wait_signal_until(const int *signals, size_t n,
                                            double deadline, int *signo);

/* ---- regular files (on the thread pool) ----------------------------- */

/* Regular files cannot be polled: these run pread/pwrite/open+read on the
 * default executor and await them without blocking the loop.  A cancelled
 * coroutine still waits for an operation that already started (it uses
 * the caller's buffer) and then returns CONC_ECANCELED.  Coroutine only;
 * parks. */

/* pread(fd, buf, len, offset): *n receives the bytes read (0 at end of
 * file).  Returns 0, CONC_EINVAL, CONC_ECANCELED, -errno (CONC_EBADF),
 * CONC_ENOMEM, CONC_EPERM outside a coroutine. */
CONC_EXTERN int conc_file_read(int fd, void *buf, size_t len, off_t offset,
                               size_t *n);

/* pwrite(fd, buf, len, offset): *n receives the bytes written.  Returns as
 * conc_file_read. */
CONC_EXTERN int conc_file_write(int fd, const void *buf, size_t len,
                                off_t offset, size_t *n);

/* Read the whole file at path into out (appended; the caller frees it
 * with conc_bytes_free).  Returns 0, CONC_EINVAL, CONC_ENOENT, CONC_ENOMEM,
 * CONC_ECANCELED, other -errno, CONC_EPERM outside a coroutine. */
CONC_EXTERN int conc_file_read_all(const char *path, conc_bytes *out);

#ifdef __cplusplus
}
#endif
#endif
