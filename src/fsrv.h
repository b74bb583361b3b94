/* fsrv.h - the fork server: a fresh execution of the program that stops in
 * conc_init and forks process-pool workers on request (forkserver.c), and
 * the worker's main loop (pworker.c).
 *
 * Control messages on the SOCK_SEQPACKET pair between the pool and its
 * server are 16 bytes, four little-endian u32 (kind, a, b, c):
 *   pool -> server  SPAWN   (slot)           fds: ring memfd, socket,
 *                                            eventfd, parent-watch pipe
 *   server -> pool  HELLO   a wire frame (wire.h), first message
 *                   SPAWNED (slot, pid, errno)  fd: the worker's pidfd
 *                   EXITED  (pid, wait status)
 * conc_process_start_task (process.c) uses a server of its own:
 *   process -> server TASK  (cookie)         fds: the request memfd
 *                                            (u32 name length, name,
 *                                            input), and for a daemon
 *                                            the read end of its watch
 *                                            pipe
 *   server -> process SPAWNED (cookie, pid, errno)  fd: the child's pidfd
 *                     EXITED  (pid, wait status)
 */
#ifndef CONC_FSRV_H
#define CONC_FSRV_H

#include "internal.h"

enum {
  CONC__FS_SPAWN = 1,
  CONC__FS_SPAWNED = 2,
  CONC__FS_EXITED = 3,
  CONC__FS_TASK = 4,
};

typedef struct conc__fsrv {
  int ctl;     /* our end of the control socket */
  int death_w; /* the server dies when this closes */
  int pid, pidfd;
} conc__fsrv;

typedef struct conc__fsrv_msg {
  uint32_t kind, a, b, c;
  int fd; /* -1 if none */
} conc__fsrv_msg;

/* True once conc_init ran in this process (and it is not a worker). */
bool conc__init_done(void);

/* Start a fork server and check its HELLO against our registry.  Returns
 * 0, CONC_EREGISTRY, CONC_EBROKEN (did not answer in time, or exited),
 * -errno. */
int conc__fsrv_start(conc__fsrv *s, double timeout);
/* Ask for a worker for slot; fds as above (not closed). */
int conc__fsrv_spawn(conc__fsrv *s, uint32_t slot, const int fds[4]);
/* Send one message (kind, a, b, 0) with nfds (<= 4) descriptors. */
int conc__fsrv_send(conc__fsrv *s, uint32_t kind, uint32_t a, uint32_t b,
                    const int *fds, int nfds);
/* Read one message without blocking: 1 with *m, 0 if none, CONC_ECLOSED
 * when the server is gone, CONC_EPROTO. */
int conc__fsrv_recv(conc__fsrv *s, conc__fsrv_msg *m);
/* Close the control socket (the server exits), reap it, close the rest. */
void conc__fsrv_close(conc__fsrv *s);

/* Run registered task name on in[0..len) in a process of its own (a child
 * of conc_process_start_task): returns the exit code (0; a failed task's
 * own code if 1..255, else 1, with its message logged). */
int conc__task_process_run(const char *name, const void *in, size_t len);

/* In a worker (pworker.c).  fds: ring memfd, socket, eventfd, watch pipe. */
_Noreturn void conc__worker_main(const int fds[4]);

#endif
