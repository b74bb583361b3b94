/* shm.c - shared-memory blocks (memfd or POSIX shm), mapped whole.
 *
 * DESIGN
 *
 * A conc_shm holds the descriptor, the mapping and its size; no global
 * state, no locks, no threads, no allocation.  Anonymous blocks are memfds
 * (MFD_CLOEXEC), so nothing appears in /dev/shm and the memory dies with
 * its last mapping/descriptor.  Named blocks are shm_open objects created
 * O_EXCL; a failed create unlinks what it made, so errors never leave a
 * segment behind.  A zero-filled conc_shm means "closed": the private
 * struct stores fd + 1 so that zero is not a valid descriptor.
 */
#include "internal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conc/shm.h"

struct shm_priv {
  void *addr;
  size_t size;
  int fd1; /* descriptor + 1; 0 when closed */
};
_Static_assert(sizeof(struct shm_priv) <= sizeof(conc_shm), "conc_shm size");
_Static_assert(_Alignof(struct shm_priv) <= _Alignof(conc_shm),
               "conc_shm align");

static inline struct shm_priv *priv(conc_shm *s) {
  return (struct shm_priv *)(void *)s;
}
static inline const struct shm_priv *cpriv(const conc_shm *s) {
  return (const struct shm_priv *)(const void *)s;
}

/* "/name" from name; false if name is not acceptable. */
static bool make_name(const char *name, char *out, size_t cap) {
  if (!name)
    return false;
  if (name[0] == '/')
    name++;
  size_t n = strlen(name);
  if (n == 0 || n > CONC_SHM_NAME_MAX || strchr(name, '/') ||
      strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return false;
  return snprintf(out, cap, "/%s", name) < (int)cap;
}

static int map_fd(conc_shm *s, int fd, size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    return errno == ENOMEM ? CONC_ENOMEM : -errno;
  struct shm_priv *sp = priv(s);
  memset(s, 0, sizeof *s);
  sp->addr = p;
  sp->size = size;
  sp->fd1 = fd + 1;
  return 0;
}

static int size_ok(size_t size) {
  return size > 0 && size <= (size_t)INT64_MAX / 2;
}

int conc_shm_create_anon(conc_shm *s, size_t size) {
  if (!s || !size_ok(size))
    return CONC_EINVAL;
  int fd = memfd_create("conc-shm", MFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r;
  if (ftruncate(fd, (off_t)size) != 0) {
    r = errno == EFBIG ? CONC_ENOMEM : -errno;
    goto fail;
  }
  r = map_fd(s, fd, size);
  if (r != 0)
    goto fail;
  return 0;
fail:
  close(fd);
  return r;
}

int conc_shm_create(conc_shm *s, const char *name, size_t size) {
  char nm[CONC_SHM_NAME_MAX + 2];
  if (!s || !size_ok(size) || !make_name(name, nm, sizeof nm))
    return CONC_EINVAL;
  int fd = shm_open(nm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  int r;
  if (ftruncate(fd, (off_t)size) != 0) {
    r = errno == EFBIG || errno == ENOSPC ? CONC_ENOMEM : -errno;
    goto fail;
  }
  r = map_fd(s, fd, size);
  if (r != 0)
    goto fail;
  return 0;
fail:
  close(fd);
  shm_unlink(nm);
  return r;
}

int conc_shm_open(conc_shm *s, const char *name) {
  char nm[CONC_SHM_NAME_MAX + 2];
  if (!s || !make_name(name, nm, sizeof nm))
    return CONC_EINVAL;
  int fd = shm_open(nm, O_RDWR | O_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct stat st;
  int r;
  if (fstat(fd, &st) != 0) {
    r = -errno;
    goto fail;
  }
  if (st.st_size <= 0) {
    r = CONC_EINVAL; /* being created by another process, or not ours */
    goto fail;
  }
  r = map_fd(s, fd, (size_t)st.st_size);
  if (r != 0)
    goto fail;
  return 0;
fail:
  close(fd);
  return r;
}

int conc_shm_unlink(const char *name) {
  char nm[CONC_SHM_NAME_MAX + 2];
  if (!make_name(name, nm, sizeof nm))
    return CONC_EINVAL;
  return shm_unlink(nm) == 0 ? 0 : -errno;
}

int conc_shm_close(conc_shm *s) {
  if (!s || priv(s)->fd1 == 0)
    return CONC_EINVAL;
  struct shm_priv *sp = priv(s);
  CONC_MUST(munmap(sp->addr, sp->size) == 0);
  close(sp->fd1 - 1);
  memset(s, 0, sizeof *s);
  return 0;
}

void *conc_shm_addr(const conc_shm *s) {
  return s && cpriv(s)->fd1 ? cpriv(s)->addr : NULL;
}

size_t conc_shm_size(const conc_shm *s) {
  return s && cpriv(s)->fd1 ? cpriv(s)->size : 0;
}

int conc_shm_fd(const conc_shm *s) {
  return s && cpriv(s)->fd1 ? cpriv(s)->fd1 - 1 : -1;
}
