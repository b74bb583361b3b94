/* wire.h - the bytes that cross a process (or machine) boundary.
 *
 * Everything conc sends to another process is a frame: a 16-byte header
 * and a payload, all integers little-endian whatever the host, so the
 * same frames can later travel between machines (the MPI executor).
 *
 *   header  u8  magic     0xC7
 *           u8  version   CONC__WIRE_VERSION
 *           u8  type      CONC__FT_*
 *           u8  flags     CONC__FF_*
 *           u32 len       payload bytes that follow the header
 *           u64 id        task id (0 for control frames)
 *
 *   TASK    u32 task index (in the registry both sides agreed on)
 *           u32 0
 *           with FF_DEADLINE: u64 nanoseconds left, when sent, until the
 *           task's start deadline (the receiver re-anchors it on its own
 *           monotonic clock: clocks of two machines are not comparable);
 *           with FF_DEADLINE_ABS instead: u64 the deadline itself on the
 *           sender's CLOCK_MONOTONIC, in nanoseconds (the process pool:
 *           one machine, one clock; a frame may wait in a ring)
 *           with FF_ARENA: u64 offset, u64 size: where in the channel's
 *           output arena the task may write its output (process pool)
 *           input bytes (len - 8), or with FF_FD: u64 input length, the
 *           input travelling in a memfd passed beside the frame (over
 *           MPI: as the next message on the bulk tag)
 *   RESULT  i32 outcome (0, CONC_ETASK, CONC_ECANCELED; and from an MPI
 *           worker rank, CONC_EWORKER / CONC_EKILLED of its local pool,
 *           CONC_EDEADLINE)
 *           i32 the task's own code
 *           u32 message length m (0: none)
 *           u32 0
 *           u64 run time in nanoseconds (measured by the worker)
 *           m message bytes, padded to 8
 *           output bytes, or with FF_FD: u64 output length (memfd), or
 *           with FF_ARENA (outcome 0 only): u64 output length, the bytes
 *           at the offset the TASK frame offered
 *   INIT    as TASK: the initializer and its arguments
 *   EXIT    empty: the worker ends with exit status 0
 *   STOP    empty: ask the task `id` to stop (MPI worker ranks)
 *   PAD     filler to the end of a ring (len = bytes to skip)
 *   HELLO   u64 registry hash, u32 task count, u32 pid,
 *           u32 byte-order mark 0x01020304 written little-endian
 *
 * In a ring every frame starts at a multiple of 16 and occupies
 * 16 + round_up(len, 16) bytes.  Decoders check every length against the
 * bytes really available: a peer that crashed mid-write or sends garbage
 * yields CONC_EPROTO, never an out-of-bounds read (tests/fuzz-wire.c).
 */
#ifndef CONC_WIRE_H
#define CONC_WIRE_H

#include "internal.h"

#define CONC__WIRE_MAGIC 0xC7u
#define CONC__WIRE_VERSION 1u
#define CONC__WIRE_HDR 16u
#define CONC__WIRE_BOM 0x01020304u

enum {
  CONC__FT_PAD = 1,
  CONC__FT_HELLO = 2,
  CONC__FT_TASK = 3,
  CONC__FT_RESULT = 4,
  CONC__FT_INIT = 5,
  CONC__FT_EXIT = 6,
  CONC__FT_STOP = 7,
};
#define CONC__FF_FD 1u /* the bulk bytes travel in a memfd */
#define CONC__FF_DEADLINE 2u /* TASK: a start deadline follows (above) */
#define CONC__FF_DEADLINE_ABS 4u /* TASK: an absolute one (same machine) */
#define CONC__FF_ARENA 8u /* TASK: output space offered; RESULT: used */

static inline void conc__put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void conc__put64(unsigned char *p, uint64_t v) {
  conc__put32(p, (uint32_t)v);
  conc__put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t conc__get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static inline uint64_t conc__get64(const unsigned char *p) {
  return (uint64_t)conc__get32(p) | (uint64_t)conc__get32(p + 4) << 32;
}

static inline size_t conc__round16(size_t n) { return (n + 15) & ~(size_t)15; }

typedef struct conc__frame {
  unsigned type, flags;
  uint32_t len;
  uint64_t id;
  const unsigned char *payload; /* len bytes */
} conc__frame;

/* Write a header at p. */
void conc__frame_header(unsigned char *p, unsigned type, unsigned flags,
                        uint32_t len, uint64_t id);

/* Decode the frame at buf[0..avail): 0 with *f set (payload inside buf),
 * CONC_EPROTO for a bad magic, version, type or a length past avail. */
int conc__frame_decode(const unsigned char *buf, size_t avail, conc__frame *f);

/* A decoded TASK / INIT payload. */
typedef struct conc__task_msg {
  uint32_t index;
  const unsigned char *in; /* NULL with FF_FD */
  uint64_t len;
  bool has_deadline; /* FF_DEADLINE: deadline_ns is the time left */
  bool abs_deadline; /* FF_DEADLINE_ABS: deadline_ns is CLOCK_MONOTONIC */
  uint64_t deadline_ns;
  bool arena; /* FF_ARENA: output space offered at arena_off */
  uint64_t arena_off, arena_size;
} conc__task_msg;
int conc__task_decode(const conc__frame *f, conc__task_msg *t);

/* A decoded RESULT payload (message not NUL-terminated). */
typedef struct conc__result_msg {
  int32_t outcome, code;
  const char *msg;
  uint32_t msg_len;
  const unsigned char *out; /* NULL with FF_FD or FF_ARENA */
  uint64_t len;
  uint64_t run_ns;
} conc__result_msg;
int conc__result_decode(const conc__frame *f, conc__result_msg *r);
/* Payload bytes of a RESULT before its output. */
static inline size_t conc__result_head(uint32_t msg_len) {
  return 24 + (((size_t)msg_len + 7u) & ~(size_t)7u);
}
/* Encode a RESULT payload's head (outcome .. padded message) at p. */
void conc__result_encode_head(unsigned char *p, int32_t outcome, int32_t code,
                              uint64_t run_ns, const char *msg,
                              uint32_t msg_len);

/* HELLO */
typedef struct conc__hello_msg {
  uint64_t hash;
  uint32_t count, pid;
} conc__hello_msg;
#define CONC__HELLO_LEN 20u
void conc__hello_encode(unsigned char *p, const conc__hello_msg *h);
int conc__hello_decode(const conc__frame *f, conc__hello_msg *h);

#endif
