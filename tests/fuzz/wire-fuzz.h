/* wire-fuzz.h - one fuzzing step for the wire format: the bytes are taken
 * as a peer's ring (any head, any content) and as single frames; every
 * decoder must reject garbage with CONC_EPROTO and never read outside the
 * buffer (ASan checks the latter).  Shared by the libFuzzer target
 * (fuzz-wire.c) and the deterministic run in test-wire.c. */
#ifndef CONC_WIRE_FUZZ_H
#define CONC_WIRE_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pchan.h"
#include "wire.h"

static void wire_fuzz_frame(const conc__frame *f) {
  conc__task_msg t;
  conc__result_msg r;
  conc__hello_msg h;
  volatile unsigned sink = 0;
  if (conc__task_decode(f, &t) == 0 && t.in)
    for (uint64_t i = 0; i < t.len; i++)
      sink += t.in[i];
  if (conc__result_decode(f, &r) == 0) {
    for (uint32_t i = 0; i < r.msg_len; i++)
      sink += (unsigned char)r.msg[i];
    if (r.out)
      for (uint64_t i = 0; i < r.len; i++)
        sink += r.out[i];
  }
  (void)conc__hello_decode(f, &h);
  (void)sink;
}

static int wire_fuzz_one(const uint8_t *data, size_t size) {
  /* 1. the bytes as one frame, in a buffer of exactly their size */
  unsigned char *copy = malloc(size ? size : 1);
  if (!copy)
    return 0;
  if (size)
    memcpy(copy, data, size);
  conc__frame f;
  if (conc__frame_decode(copy, size, &f) == 0)
    wire_fuzz_frame(&f);
  free(copy);
  /* 2. the bytes as a ring of 1 KiB: first 4 bytes set head and tail */
  enum { CAP = 1024 };
  if (size < 4)
    return 0;
  static _Alignas(64) struct conc__ring ring;
  unsigned char *buf = calloc(1, CAP);
  if (!buf)
    return 0;
  size_t n = size - 4 < CAP ? size - 4 : CAP;
  memcpy(buf, data + 4, n);
  uint64_t tail = ((uint64_t)data[0] | (uint64_t)data[1] << 8) * 16;
  uint64_t head = tail + ((uint64_t)data[2] | (uint64_t)data[3] << 8);
  atomic_store(&ring.tail, tail);
  atomic_store(&ring.head, head);
  for (int k = 0; k < 64; k++) {
    size_t adv = 0;
    int rc = conc__ring_peek(&ring, buf, CAP, 0, &f, &adv);
    if (rc <= 0)
      break;
    wire_fuzz_frame(&f);
    conc__ring_release(&ring, adv);
  }
  free(buf);
  return 0;
}

#endif
