/* pchan.c - the shared-memory rings of a process pool worker (pchan.h),
 * and the descriptor plumbing around them. */
#include "pchan.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

unsigned char *conc__ring_reserve(struct conc__ring *r, unsigned char *data,
                                  uint64_t cap, size_t n, size_t *adv) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  uint64_t free_ = cap - (head - tail);
  size_t pos = (size_t)(head & (cap - 1));
  size_t contig = (size_t)cap - pos;
  size_t pad = contig < n ? contig : 0;
  if (pad + n > free_)
    return NULL;
  if (pad) {
    conc__frame_header(data + pos, CONC__FT_PAD, 0,
                       (uint32_t)(pad - CONC__WIRE_HDR), 0);
    pos = 0;
  }
  *adv = pad;
  return data + pos;
}

bool conc__ring_publish(struct conc__ring *r, size_t n) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  atomic_store_explicit(&r->head, head + n, memory_order_seq_cst);
  if (atomic_load_explicit(&r->sleep, memory_order_seq_cst)) {
    uint32_t one = 1;
    return atomic_compare_exchange_strong(&r->sleep, &one, 0);
  }
  return false;
}

int conc__ring_peek(struct conc__ring *r, const unsigned char *data,
                    uint64_t cap, uint64_t taken, conc__frame *f,
                    size_t *adv) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed) + taken;
  uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  size_t skipped = 0;
  for (;;) {
    if (head - tail > cap || (tail & 15))
      return CONC_EPROTO;
    if (head == tail)
      return 0;
    size_t pos = (size_t)(tail & (cap - 1));
    size_t avail = (size_t)(head - tail);
    size_t contig = (size_t)cap - pos;
    if (avail > contig)
      avail = contig;
    int rc = conc__frame_decode(data + pos, avail, f);
    if (rc)
      return rc;
    size_t sz = CONC__WIRE_HDR + conc__round16(f->len);
    if (sz > avail)
      return CONC_EPROTO;
    if (f->type == CONC__FT_PAD) {
      if (sz != contig)
        return CONC_EPROTO;
      tail += sz;
      skipped += sz;
      continue;
    }
    *adv = skipped + sz;
    return 1;
  }
}

bool conc__ring_release(struct conc__ring *r, size_t n) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  atomic_store_explicit(&r->tail, tail + n, memory_order_seq_cst);
  if (atomic_load_explicit(&r->room, memory_order_seq_cst)) {
    uint32_t one = 1;
    return atomic_compare_exchange_strong(&r->room, &one, 0);
  }
  return false;
}

int conc__memfd_from(const void *p, size_t n) {
  int fd = memfd_create("conc-bulk", MFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  const unsigned char *s = p;
  size_t done = 0;
  while (done < n) {
    ssize_t w = write(fd, s + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = w < 0 ? errno : EIO;
      close(fd);
      return -e;
    }
    done += (size_t)w;
  }
  return fd;
}

int conc__send_fd(int sock, int fd) {
  char byte = 'F';
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  for (;;) {
    ssize_t r = sendmsg(sock, &m, MSG_NOSIGNAL);
    if (r == 1)
      return 0;
    if (r < 0 && errno == EINTR)
      continue;
    return r < 0 ? -errno : CONC_EPROTO;
  }
}

int conc__recv_fd(int sock, int *fd) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = u.buf;
  m.msg_controllen = sizeof u.buf;
  ssize_t r;
  do
    r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  if (r == 0)
    return CONC_ECLOSED;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
      c->cmsg_len != CMSG_LEN(sizeof(int)) || (m.msg_flags & MSG_CTRUNC))
    return CONC_EPROTO;
  memcpy(fd, CMSG_DATA(c), sizeof *fd);
  return 0;
}

int conc__watch_parent(int fd) {
  if (fcntl(fd, F_SETOWN, getpid()) != 0 || fcntl(fd, F_SETSIG, SIGKILL) != 0 ||
      fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK) != 0)
    return -1;
  char c;
  ssize_t n = read(fd, &c, 1);
  if (n == 0 || (n < 0 && errno != EAGAIN))
    return -1; /* the parent is gone already */
  return 0;
}
