/* batch.c - the built-in registered task "conc.batch": several inputs of
 * one registered task in one submission (conc_executor_map_task with
 * chunksize > 1).  Its bytes, little-endian like the wire format:
 *
 *   input   u32 name length, name, pad to 8; u32 count, u32 0;
 *           count x (u64 length, bytes, pad to 8)
 *   output  per item run: i32 outcome, i32 code, u32 message length,
 *           u32 0, u64 output length, message (pad to 8), output (pad to 8)
 *
 * Items run in order and stop after the first that fails, as a chunk of a
 * function map does.  A stop request reaches every item.
 */
#include "executor-int.h"
#include "wire.h"

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

static int put(conc_bytes *b, const void *p, size_t n) {
  static const unsigned char zero[8];
  int rc = conc_bytes_append(b, p, n);
  if (rc == 0 && pad8(n) != n)
    rc = conc_bytes_append(b, zero, pad8(n) - n);
  return rc;
}

int conc__batch_encode(const char *name, const conc_buf *in, size_t n,
                       conc_bytes *b) {
  unsigned char w[8];
  size_t nl = strlen(name);
  conc__put32(w, (uint32_t)nl);
  int rc = conc_bytes_append(b, w, 4);
  if (rc == 0)
    rc = put(b, name, nl);
  conc__put32(w, (uint32_t)n);
  conc__put32(w + 4, 0);
  if (rc == 0)
    rc = conc_bytes_append(b, w, 8);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    conc__put64(w, in[i].len);
    rc = conc_bytes_append(b, w, 8);
    if (rc == 0)
      rc = put(b, in[i].data, in[i].len);
  }
  return rc;
}

int conc__batch_item(const conc_bytes *out, size_t *pos, conc__batch_res *r) {
  size_t p = *pos;
  if (p == out->len)
    return 0;
  if (out->len - p < 24)
    return CONC_EPROTO;
  const unsigned char *d = out->data + p;
  r->outcome = (int32_t)conc__get32(d);
  r->code = (int32_t)conc__get32(d + 4);
  uint32_t ml = conc__get32(d + 8);
  uint64_t ol = conc__get64(d + 16);
  size_t left = out->len - p - 24;
  if (ml > left || pad8(ml) > left || ol > left - pad8(ml) ||
      pad8((size_t)ol) > left - pad8(ml))
    return CONC_EPROTO;
  r->msg = (const char *)d + 24;
  r->msg_len = ml;
  r->out = (conc_bytes){(unsigned char *)(uintptr_t)(d + 24 + pad8(ml)),
                        (size_t)ol, 0};
  *pos = p + 24 + pad8(ml) + pad8((size_t)ol);
  return 1;
}

static int batch(const void *in, size_t len, conc_bytes *out) {
  const unsigned char *d = in;
  if (len < 4)
    return conc_task_fail(CONC_EPROTO, "conc.batch: short input");
  size_t nl = conc__get32(d);
  if (nl > 63 || 4 + pad8(nl) + 8 > len)
    return conc_task_fail(CONC_EPROTO, "conc.batch: bad name");
  char name[64];
  memcpy(name, d + 4, nl);
  name[nl] = 0;
  size_t p = 4 + pad8(nl);
  uint32_t count = conc__get32(d + p);
  p += 8;
  conc_task_fn fn;
  if (conc_task_lookup(name, &fn) != 0)
    return conc_task_fail(CONC_ENOENT, "conc.batch: no task \"%s\"", name);
  conc__task_ctx *outer = conc__task_ctx_get();
  conc_bytes tmp = {0};
  int rc = 0;
  for (uint32_t i = 0; i < count && rc == 0; i++) {
    if (len - p < 8) {
      rc = conc_task_fail(CONC_EPROTO, "conc.batch: truncated");
      break;
    }
    uint64_t il = conc__get64(d + p);
    p += 8;
    if (il > len - p) {
      rc = conc_task_fail(CONC_EPROTO, "conc.batch: truncated");
      break;
    }
    conc__task_ctx ctx = {.future = outer ? outer->future : NULL};
    if (outer) {
      ctx.stop_id = outer->stop_id;
      ctx.stop_match = outer->stop_match;
      ctx.stop_seq = outer->stop_seq;
    }
    tmp.len = 0;
    conc__task_ctx *prev = conc__task_ctx_swap(&ctx);
    int outcome = conc__task_invoke(fn, d + p, (size_t)il, &tmp, &ctx);
    conc__task_ctx_swap(prev);
    p += pad8((size_t)il);
    if (p > len)
      p = len;
    unsigned char h[24];
    size_t ml = ctx.msg ? strlen(ctx.msg) : 0;
    conc__put32(h, (uint32_t)outcome);
    conc__put32(h + 4, (uint32_t)ctx.code);
    conc__put32(h + 8, (uint32_t)ml);
    conc__put32(h + 12, 0);
    conc__put64(h + 16, outcome ? 0 : tmp.len);
    rc = conc_bytes_append(out, h, sizeof h);
    if (rc == 0)
      rc = put(out, ctx.msg, ml);
    if (rc == 0 && !outcome)
      rc = put(out, tmp.data, tmp.len);
    conc__free(ctx.msg);
    if (outcome)
      break;
  }
  conc_bytes_free(&tmp);
  return rc;
}

__attribute__((constructor)) static void batch_register(void) {
  conc_task_register_at_load("conc.batch", batch);
}
