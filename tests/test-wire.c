/* test-wire.c - the wire format and the shared-memory rings (internal
 * wire.h / pchan.h): round trips, every rejection, ring wrap-around, and
 * a deterministic fuzzing run over mutated frames (libFuzzer runs the same
 * step in tests/fuzz/fuzz-wire.c). */
#include "harness.h"

#include "fuzz/wire-fuzz.h"

static size_t task_frame(unsigned char *buf, unsigned type, uint64_t id,
                         uint32_t index, const void *in, size_t len) {
  conc__frame_header(buf, type, 0, (uint32_t)(8 + len), id);
  conc__put32(buf + 16, index);
  conc__put32(buf + 20, 0);
  memcpy(buf + 24, in, len);
  return 24 + len;
}

START_TEST(wire_task_round_trip) {
  unsigned char buf[128];
  size_t n = task_frame(buf, CONC__FT_TASK, 0x1122334455667788ull, 7, "hello", 5);
  ck_assert_uint_eq(buf[0], CONC__WIRE_MAGIC);
  ck_assert_uint_eq(buf[8], 0x88); /* little-endian on every host */
  conc__frame f;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), 0);
  ck_assert_uint_eq(f.type, CONC__FT_TASK);
  ck_assert(f.id == 0x1122334455667788ull);
  conc__task_msg t;
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert_uint_eq(t.index, 7);
  ck_assert_uint_eq(t.len, 5);
  ck_assert_int_eq(memcmp(t.in, "hello", 5), 0);
  /* truncated, bad magic, bad version, bad type, bad flags */
  ck_assert_int_eq(conc__frame_decode(buf, n - 1, &f), CONC_EPROTO);
  ck_assert_int_eq(conc__frame_decode(buf, 15, &f), CONC_EPROTO);
  buf[0] ^= 1;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), CONC_EPROTO);
  buf[0] ^= 1;
  buf[1] = 99;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), CONC_EPROTO);
  buf[1] = CONC__WIRE_VERSION;
  buf[2] = 77;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), CONC_EPROTO);
  buf[2] = CONC__FT_TASK;
  buf[3] = 0x80;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), CONC_EPROTO);
  buf[3] = 0;
  /* a result frame is not a task; reserved word must be 0 */
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), 0);
  f.type = CONC__FT_RESULT;
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
  buf[20] = 1;
  ck_assert_int_eq(conc__frame_decode(buf, n, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
  /* the bulk form carries only a length */
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_FD, 16, 1);
  conc__put32(buf + 16, 3);
  conc__put32(buf + 20, 0);
  conc__put64(buf + 24, 1u << 30);
  ck_assert_int_eq(conc__frame_decode(buf, 32, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert_ptr_null(t.in);
  ck_assert(t.len == 1u << 30);
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_FD, 12, 1);
  ck_assert_int_eq(conc__frame_decode(buf, 28, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
}
END_TEST

START_TEST(wire_task_deadline) {
  /* FF_DEADLINE: u64 ns left after the reserved word, then the input */
  unsigned char buf[64];
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_DEADLINE, 16 + 3, 4);
  conc__put32(buf + 16, 2);
  conc__put32(buf + 20, 0);
  conc__put64(buf + 24, 1500000000u);
  memcpy(buf + 32, "abc", 3);
  conc__frame f;
  conc__task_msg t;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 19, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert(t.has_deadline);
  ck_assert(t.deadline_ns == 1500000000u);
  ck_assert_uint_eq(t.len, 3);
  ck_assert_int_eq(memcmp(t.in, "abc", 3), 0);
  /* with FF_FD the length follows the deadline */
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_DEADLINE | CONC__FF_FD, 24,
                     4);
  conc__put64(buf + 32, 1u << 20);
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 24, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert(t.has_deadline && t.in == NULL && t.len == 1u << 20);
  /* too short for the deadline */
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_DEADLINE, 12, 4);
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 12, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
  /* without the flag nothing changes */
  conc__frame_header(buf, CONC__FT_TASK, 0, 8 + 3, 4);
  memcpy(buf + 24, "xyz", 3);
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 11, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert(!t.has_deadline && t.len == 3);
  /* an unknown flag is refused, and both deadline forms at once */
  buf[3] = 16;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 11, &f), CONC_EPROTO);
  buf[3] = CONC__FF_DEADLINE | CONC__FF_DEADLINE_ABS;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 11, &f), CONC_EPROTO);
  /* the absolute form (the process pool's) */
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_DEADLINE_ABS, 16 + 3, 5);
  conc__put32(buf + 16, 2);
  conc__put32(buf + 20, 0);
  conc__put64(buf + 24, 123456789);
  memcpy(buf + 32, "abc", 3);
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 19, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert(t.abs_deadline && !t.has_deadline);
  ck_assert(t.deadline_ns == 123456789 && t.len == 3);
  ck_assert_int_eq(memcmp(t.in, "abc", 3), 0);
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_DEADLINE_ABS, 12, 5);
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 12, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
}
END_TEST

START_TEST(wire_stop_frame) {
  unsigned char buf[16];
  conc__frame f;
  conc__frame_header(buf, CONC__FT_STOP, 0, 0, 12345);
  ck_assert_int_eq(conc__frame_decode(buf, sizeof buf, &f), 0);
  ck_assert_uint_eq(f.type, CONC__FT_STOP);
  ck_assert(f.id == 12345);
  buf[2] = CONC__FT_STOP + 1; /* past the last type */
  ck_assert_int_eq(conc__frame_decode(buf, sizeof buf, &f), CONC_EPROTO);
}
END_TEST

START_TEST(wire_result_round_trip) {
  unsigned char buf[256];
  const char *msg = "it broke";
  uint32_t ml = (uint32_t)strlen(msg);
  size_t head = conc__result_head(ml);
  ck_assert_uint_eq(head, 24 + 8);
  conc__frame_header(buf, CONC__FT_RESULT, 0, (uint32_t)(head + 3), 9);
  conc__result_encode_head(buf + 16, CONC_ETASK, -77, 123456789012ull, msg,
                           ml);
  memcpy(buf + 16 + head, "xyz", 3);
  conc__frame f;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + head + 3, &f), 0);
  conc__result_msg r;
  ck_assert_int_eq(conc__result_decode(&f, &r), 0);
  ck_assert_int_eq(r.outcome, CONC_ETASK);
  ck_assert_int_eq(r.code, -77);
  ck_assert(r.run_ns == 123456789012ull);
  ck_assert_uint_eq(r.msg_len, ml);
  ck_assert_int_eq(memcmp(r.msg, msg, ml), 0);
  ck_assert_uint_eq(r.len, 3);
  ck_assert_int_eq(memcmp(r.out, "xyz", 3), 0);
  /* outcomes an MPI worker rank passes on from its local pool */
  conc__put32(buf + 16, (uint32_t)CONC_EWORKER);
  ck_assert_int_eq(conc__result_decode(&f, &r), 0);
  ck_assert_int_eq(r.outcome, CONC_EWORKER);
  conc__put32(buf + 16, (uint32_t)CONC_EKILLED);
  ck_assert_int_eq(conc__result_decode(&f, &r), 0);
  conc__put32(buf + 16, (uint32_t)CONC_EDEADLINE);
  ck_assert_int_eq(conc__result_decode(&f, &r), 0);
  /* an outcome no worker sends; a message longer than the frame */
  conc__put32(buf + 16, (uint32_t)CONC_ENOMEM);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
  conc__put32(buf + 16, 0);
  conc__put32(buf + 24, 1000);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
  conc__put32(buf + 24, (uint32_t)(head + 3 - 24)); /* fits, padding not */
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
  conc__put32(buf + 24, ml);
  conc__put32(buf + 28, 5);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
}
END_TEST

START_TEST(wire_hello) {
  unsigned char buf[64];
  conc__hello_msg h = {0xdeadbeefcafef00dull, 12, 4242}, g;
  conc__frame_header(buf, CONC__FT_HELLO, 0, CONC__HELLO_LEN, 0);
  conc__hello_encode(buf + 16, &h);
  ck_assert_uint_eq(buf[16 + 16], 0x04); /* the byte-order mark */
  conc__frame f;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + CONC__HELLO_LEN, &f), 0);
  ck_assert_int_eq(conc__hello_decode(&f, &g), 0);
  ck_assert(g.hash == h.hash && g.count == 12 && g.pid == 4242);
  buf[16 + 16] = 0x01; /* a peer that wrote big-endian */
  ck_assert_int_eq(conc__hello_decode(&f, &g), CONC_EPROTO);
}
END_TEST

START_TEST(wire_ring_wraps) {
  enum { CAP = 4096 };
  static _Alignas(64) struct conc__ring r;
  static unsigned char data[CAP];
  memset(&r, 0, sizeof r);
  unsigned char payload[700];
  uint64_t sent = 0, got = 0;
  for (int round = 0; round < 200; round++) {
    /* fill as far as it goes */
    for (;;) {
      size_t len = (size_t)(round * 37 + (int)sent * 11) % 600;
      size_t n = 16 + conc__round16(8 + len), adv;
      unsigned char *p = conc__ring_reserve(&r, data, CAP, n, &adv);
      if (!p)
        break;
      for (size_t i = 0; i < len; i++)
        payload[i] = (unsigned char)(sent + i);
      task_frame(p, CONC__FT_TASK, sent, (uint32_t)len, payload, len);
      ck_assert(!conc__ring_publish(&r, adv + n));
      sent++;
    }
    /* drain part of it */
    for (int k = 0; k < 3; k++) {
      conc__frame f;
      size_t adv;
      int rc = conc__ring_peek(&r, data, CAP, 0, &f, &adv);
      if (rc == 0)
        break;
      ck_assert_int_eq(rc, 1);
      ck_assert(f.id == got);
      conc__task_msg t;
      ck_assert_int_eq(conc__task_decode(&f, &t), 0);
      ck_assert_uint_eq(t.len, t.index);
      for (size_t i = 0; i < t.len; i++)
        ck_assert_uint_eq(t.in[i], (unsigned char)(got + i));
      ck_assert(!conc__ring_release(&r, adv));
      got++;
    }
  }
  ck_assert(got > 100);
  /* a sleeping consumer / waiting producer is reported once */
  atomic_store(&r.sleep, 1);
  size_t adv;
  conc__frame f;
  while (conc__ring_peek(&r, data, CAP, 0, &f, &adv) == 1)
    conc__ring_release(&r, adv);
  unsigned char *p = conc__ring_reserve(&r, data, CAP, 32, &adv);
  ck_assert_ptr_nonnull(p);
  task_frame(p, CONC__FT_TASK, 1, 0, "", 0);
  ck_assert(conc__ring_publish(&r, adv + 32));
  ck_assert_uint_eq(atomic_load(&r.sleep), 0);
  atomic_store(&r.room, 1);
  ck_assert_int_eq(conc__ring_peek(&r, data, CAP, 0, &f, &adv), 1);
  ck_assert(conc__ring_release(&r, adv));
  /* garbage in the ring: a head past the capacity, a bad frame */
  atomic_store(&r.head, atomic_load(&r.tail) + CAP + 16);
  ck_assert_int_eq(conc__ring_peek(&r, data, CAP, 0, &f, &adv), CONC_EPROTO);
  uint64_t t = atomic_load(&r.tail);
  atomic_store(&r.head, t + 32);
  memset(data + (t & (CAP - 1)), 0xff, 32);
  ck_assert_int_eq(conc__ring_peek(&r, data, CAP, 0, &f, &adv), CONC_EPROTO);
}
END_TEST

/* Deterministic fuzzing: valid frames with random bytes flipped, cut or
 * extended, and random buffers. */
START_TEST(wire_fuzz_deterministic) {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  unsigned char buf[2048];
  for (int iter = 0; iter < 200000; iter++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    size_t n;
    switch (s % 4) {
    case 0:
      n = task_frame(buf + 4, CONC__FT_TASK, s, (uint32_t)s, buf + 600,
                     (size_t)(s >> 8) % 200);
      break;
    case 1: {
      uint32_t ml = (uint32_t)(s >> 20) % 40;
      size_t head = conc__result_head(ml);
      size_t ol = (size_t)(s >> 30) % 100;
      conc__frame_header(buf + 4, CONC__FT_RESULT, 0, (uint32_t)(head + ol), s);
      conc__result_encode_head(buf + 20, 0, 1, s,
                               "message bytes ......................",
                               ml > 36 ? 36 : ml);
      n = 16 + head + ol;
      break;
    }
    case 2: {
      conc__hello_msg h = {s, (uint32_t)s, 1};
      conc__frame_header(buf + 4, CONC__FT_HELLO, 0, CONC__HELLO_LEN, 0);
      conc__hello_encode(buf + 20, &h);
      n = 16 + CONC__HELLO_LEN;
      break;
    }
    default:
      n = (size_t)(s >> 5) % 1000;
      for (size_t i = 0; i < n + 4; i++)
        buf[i] = (unsigned char)(s >> (i % 56));
      break;
    }
    buf[0] = (unsigned char)(s >> 40) & 0x3f; /* ring tail */
    buf[1] = 0;
    buf[2] = (unsigned char)(n + 16);         /* ring fill */
    buf[3] = (unsigned char)((n + 16) >> 8);
    int flips = (int)((s >> 50) % 4);
    for (int k = 0; k < flips; k++)
      buf[4 + (size_t)(s >> (10 + 8 * k)) % (n + 1)] ^= (unsigned char)(1u << k);
    size_t cut = (s >> 60) == 0 ? n / 2 : n;
    wire_fuzz_one(buf, 4 + cut);
  }
}
END_TEST

START_TEST(wire_arena) {
  /* TASK with FF_ARENA: offset and size of the output space after the
   * reserved word (and the deadline), then the input */
  unsigned char buf[96];
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_ARENA | CONC__FF_DEADLINE_ABS,
                     32 + 2, 9);
  conc__put32(buf + 16, 1);
  conc__put32(buf + 20, 0);
  conc__put64(buf + 24, 777);
  conc__put64(buf + 32, 1u << 17);
  conc__put64(buf + 40, 1u << 20);
  memcpy(buf + 48, "hi", 2);
  conc__frame f;
  conc__task_msg t;
  ck_assert_int_eq(conc__frame_decode(buf, 16 + 34, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), 0);
  ck_assert(t.arena && t.arena_off == 1u << 17 && t.arena_size == 1u << 20);
  ck_assert(t.abs_deadline && t.deadline_ns == 777);
  ck_assert_uint_eq(t.len, 2);
  ck_assert_int_eq(memcmp(t.in, "hi", 2), 0);
  /* too short for the offer */
  conc__frame_header(buf, CONC__FT_TASK, CONC__FF_ARENA, 16, 9);
  ck_assert_int_eq(conc__frame_decode(buf, 32, &f), 0);
  ck_assert_int_eq(conc__task_decode(&f, &t), CONC_EPROTO);
  /* RESULT with FF_ARENA: a length only, outcome 0 only, never with FD */
  conc__frame_header(buf, CONC__FT_RESULT, CONC__FF_ARENA, 32, 9);
  conc__result_encode_head(buf + 16, 0, 0, 5, NULL, 0);
  conc__put64(buf + 40, 4096);
  conc__result_msg r;
  ck_assert_int_eq(conc__frame_decode(buf, 48, &f), 0);
  ck_assert_int_eq(conc__result_decode(&f, &r), 0);
  ck_assert(r.out == NULL && r.len == 4096);
  conc__frame_header(buf, CONC__FT_RESULT, CONC__FF_ARENA | CONC__FF_FD, 32, 9);
  ck_assert_int_eq(conc__frame_decode(buf, 48, &f), 0);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
  conc__frame_header(buf, CONC__FT_RESULT, CONC__FF_ARENA, 32, 9);
  conc__result_encode_head(buf + 16, CONC_ETASK, 3, 5, NULL, 0);
  ck_assert_int_eq(conc__frame_decode(buf, 48, &f), 0);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
  conc__frame_header(buf, CONC__FT_RESULT, CONC__FF_ARENA, 28, 9);
  conc__result_encode_head(buf + 16, 0, 0, 5, NULL, 0);
  ck_assert_int_eq(conc__frame_decode(buf, 48, &f), 0);
  ck_assert_int_eq(conc__result_decode(&f, &r), CONC_EPROTO);
}
END_TEST


CONC_TEST_MAIN("wire", wire_arena, wire_task_round_trip, wire_task_deadline,
               wire_stop_frame,
               wire_result_round_trip,
               wire_hello, wire_ring_wraps, wire_fuzz_deterministic)
