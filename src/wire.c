/* wire.c - encoding and checked decoding of frames (see wire.h). */
#include "wire.h"

void conc__frame_header(unsigned char *p, unsigned type, unsigned flags,
                        uint32_t len, uint64_t id) {
  p[0] = CONC__WIRE_MAGIC;
  p[1] = CONC__WIRE_VERSION;
  p[2] = (unsigned char)type;
  p[3] = (unsigned char)flags;
  conc__put32(p + 4, len);
  conc__put64(p + 8, id);
}

int conc__frame_decode(const unsigned char *buf, size_t avail,
                       conc__frame *f) {
  if (avail < CONC__WIRE_HDR || buf[0] != CONC__WIRE_MAGIC ||
      buf[1] != CONC__WIRE_VERSION)
    return CONC_EPROTO;
  f->type = buf[2];
  f->flags = buf[3];
  if (f->type < CONC__FT_PAD || f->type > CONC__FT_STOP ||
      (f->flags & ~(CONC__FF_FD | CONC__FF_DEADLINE | CONC__FF_DEADLINE_ABS |
                    CONC__FF_ARENA)) ||
      ((f->flags & CONC__FF_DEADLINE) && (f->flags & CONC__FF_DEADLINE_ABS)))
    return CONC_EPROTO;
  f->len = conc__get32(buf + 4);
  f->id = conc__get64(buf + 8);
  if (f->len > avail - CONC__WIRE_HDR)
    return CONC_EPROTO;
  f->payload = buf + CONC__WIRE_HDR;
  return 0;
}

int conc__task_decode(const conc__frame *f, conc__task_msg *t) {
  if ((f->type != CONC__FT_TASK && f->type != CONC__FT_INIT) || f->len < 8)
    return CONC_EPROTO;
  t->index = conc__get32(f->payload);
  if (conc__get32(f->payload + 4) != 0)
    return CONC_EPROTO;
  size_t off = 8;
  t->has_deadline = (f->flags & CONC__FF_DEADLINE) != 0;
  t->abs_deadline = (f->flags & CONC__FF_DEADLINE_ABS) != 0;
  t->deadline_ns = 0;
  if (t->abs_deadline) {
    if (f->len < 16)
      return CONC_EPROTO;
    t->deadline_ns = conc__get64(f->payload + 8);
    off = 16;
  }
  if (t->has_deadline) {
    if (f->len < 16)
      return CONC_EPROTO;
    t->deadline_ns = conc__get64(f->payload + 8);
    off = 16;
  }
  t->arena = (f->flags & CONC__FF_ARENA) != 0;
  t->arena_off = t->arena_size = 0;
  if (t->arena) {
    if (f->len < off + 16)
      return CONC_EPROTO;
    t->arena_off = conc__get64(f->payload + off);
    t->arena_size = conc__get64(f->payload + off + 8);
    off += 16;
  }
  if (f->flags & CONC__FF_FD) {
    if (f->len != off + 8)
      return CONC_EPROTO;
    t->in = NULL;
    t->len = conc__get64(f->payload + off);
  } else {
    t->in = f->payload + off;
    t->len = f->len - off;
  }
  return 0;
}

void conc__result_encode_head(unsigned char *p, int32_t outcome, int32_t code,
                              uint64_t run_ns, const char *msg,
                              uint32_t msg_len) {
  conc__put32(p, (uint32_t)outcome);
  conc__put32(p + 4, (uint32_t)code);
  conc__put32(p + 8, msg_len);
  conc__put32(p + 12, 0);
  conc__put64(p + 16, run_ns);
  if (msg_len)
    memcpy(p + 24, msg, msg_len);
  size_t pad = conc__result_head(msg_len) - 24 - msg_len;
  memset(p + 24 + msg_len, 0, pad);
}

int conc__result_decode(const conc__frame *f, conc__result_msg *r) {
  if (f->type != CONC__FT_RESULT || f->len < 24)
    return CONC_EPROTO;
  const unsigned char *p = f->payload;
  r->outcome = (int32_t)conc__get32(p);
  r->code = (int32_t)conc__get32(p + 4);
  r->msg_len = conc__get32(p + 8);
  if (conc__get32(p + 12) != 0)
    return CONC_EPROTO;
  if (r->outcome != 0 && r->outcome != CONC_ETASK &&
      r->outcome != CONC_ECANCELED && r->outcome != CONC_EWORKER &&
      r->outcome != CONC_EKILLED && r->outcome != CONC_EDEADLINE)
    return CONC_EPROTO;
  r->run_ns = conc__get64(p + 16);
  if (r->msg_len > f->len - 24)
    return CONC_EPROTO;
  size_t head = conc__result_head(r->msg_len);
  if (head > f->len)
    return CONC_EPROTO;
  r->msg = r->msg_len ? (const char *)p + 24 : NULL;
  if ((f->flags & CONC__FF_ARENA) &&
      ((f->flags & CONC__FF_FD) || r->outcome != 0))
    return CONC_EPROTO;
  if (f->flags & (CONC__FF_FD | CONC__FF_ARENA)) {
    if (f->len != head + 8)
      return CONC_EPROTO;
    r->out = NULL;
    r->len = conc__get64(p + head);
  } else {
    r->out = p + head;
    r->len = f->len - head;
  }
  return 0;
}

void conc__hello_encode(unsigned char *p, const conc__hello_msg *h) {
  conc__put64(p, h->hash);
  conc__put32(p + 8, h->count);
  conc__put32(p + 12, h->pid);
  conc__put32(p + 16, CONC__WIRE_BOM);
}

int conc__hello_decode(const conc__frame *f, conc__hello_msg *h) {
  if (f->type != CONC__FT_HELLO || f->len != CONC__HELLO_LEN ||
      conc__get32(f->payload + 16) != CONC__WIRE_BOM)
    return CONC_EPROTO;
  h->hash = conc__get64(f->payload);
  h->count = conc__get32(f->payload + 8);
  h->pid = conc__get32(f->payload + 12);
  return 0;
}
