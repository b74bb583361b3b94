/* conc/shm.h - shared-memory blocks.
 *
 * A conc_shm is a block of memory that several processes map:
 *
 *   anonymous  conc_shm_create_anon: a memfd, mapped MAP_SHARED.  Children
 *              forked afterwards share it (the mapping and the descriptor
 *              are inherited); nothing is left in the file system, and the
 *              memory goes away when the last process closes it or exits.
 *   named      conc_shm_create / conc_shm_open: a POSIX shared-memory
 *              object (/dev/shm/<name>), so unrelated processes can open it
 *              by name.  The name stays until conc_shm_unlink: call it once
 *              every process has opened the block (or at the end), or the
 *              segment outlives the program.
 *
 * A conc_shm is caller-allocated storage; conc never frees it.  Every
 * block is mapped whole, readable and writable, when created or opened;
 * conc_shm_close unmaps it and closes its descriptor.  Memory is
 * zero-filled when created.  Put conc's sync objects (conc/sync.h) in it
 * with CONC_SYNC_SHARED.
 *
 * Across fork: the child gets a copy of the conc_shm and the same mapping;
 * each process closes its own copy.  Descriptors are close-on-exec.
 *
 * Thread safety: calls on distinct conc_shm objects are independent; one
 * conc_shm must not be closed while another thread uses it.  No call
 * blocks.
 */
#ifndef CONC_SHM_H
#define CONC_SHM_H

#include <stddef.h>
#include "conc/visibility.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque, caller-allocated.  Zero-filled storage is "closed". */
typedef struct conc_shm {
  union {
    unsigned char bytes[32];
    void *align_p_;
    long long align_ll_;
  } opaque_;
} conc_shm;

/* Longest name accepted, without the leading '/'. */
#define CONC_SHM_NAME_MAX 200

/* Create an anonymous block of size bytes (size >= 1) and map it.
 * Returns 0, CONC_EINVAL (NULL s, size 0 or too large), CONC_ENOMEM, or
 * another -errno from memfd_create/ftruncate/mmap (e.g. CONC_EPERM). */
CONC_EXTERN int conc_shm_create_anon(conc_shm *s, size_t size);

/* Create a named block of size bytes (size >= 1) and map it.  name is
 * "/name" or "name": at most CONC_SHM_NAME_MAX bytes, no other '/'.
 * Returns 0, CONC_EINVAL (NULL, bad name, size 0), CONC_EEXIST (a block of
 * that name exists; nothing changes), CONC_ENOMEM, or another -errno.  On
 * failure no segment is left behind. */
CONC_EXTERN int conc_shm_create(conc_shm *s, const char *name, size_t size);

/* Open an existing named block and map all of it.  Returns 0, CONC_EINVAL,
 * CONC_ENOENT (no such block), CONC_ENOMEM or another -errno. */
CONC_EXTERN int conc_shm_open(conc_shm *s, const char *name);

/* Remove a name (the memory stays mapped where it is open).  Returns 0,
 * CONC_EINVAL (bad name) or CONC_ENOENT. */
CONC_EXTERN int conc_shm_unlink(const char *name);

/* Unmap and close s in the calling process; s is "closed" afterwards.
 * Does not unlink a named block.  Returns 0 or CONC_EINVAL (NULL or not
 * open). */
CONC_EXTERN int conc_shm_close(conc_shm *s);

/* The mapped address, or NULL if s is not open. */
CONC_EXTERN void *conc_shm_addr(const conc_shm *s);
/* The block's size in bytes, 0 if s is not open. */
CONC_EXTERN size_t conc_shm_size(const conc_shm *s);
/* The block's descriptor (owned by s: do not close it), -1 if not open. */
CONC_EXTERN int conc_shm_fd(const conc_shm *s);

#ifdef __cplusplus
}
#endif
#endif
