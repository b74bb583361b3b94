/* test-crawl-store.c - conc-crawl's store (crawl/store.c, sha256.c):
 * SHA-256 against the FIPS 180 example vectors, content-addressed names,
 * .part files, the journal and resuming from it. */
#include "harness.h"

#include <sys/stat.h>

#include "../crawl/sha256.h"
#include "../crawl/store.h"
#include "../crawl/strset.h"

START_TEST(store_sha256_vectors) {
  char hex[65];
  sha256_hex("", 0, hex);
  ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sha256_hex("abc", 3, hex);
  ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256_hex(m, strlen(m), hex);
  ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  /* one million 'a', fed in odd pieces */
  sha256_ctx c;
  sha256_init(&c);
  char a[997];
  memset(a, 'a', sizeof a);
  size_t left = 1000000;
  while (left) {
    size_t k = left < sizeof a ? left : sizeof a;
    sha256_update(&c, a, k);
    left -= k;
  }
  unsigned char d[32];
  sha256_final(&c, d);
  char h2[65];
  for (int i = 0; i < 32; i++)
    snprintf(h2 + 2 * i, 3, "%02x", d[i]);
  ck_assert_str_eq(h2, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(store_extension) {
  char e[8];
  store_ext("http://h/a/b.PNG", NULL, e);
  ck_assert_str_eq(e, ".png");
  store_ext("http://h/a/b.png?x=1.gif", NULL, e);
  ck_assert_str_eq(e, ".png");
  store_ext("http://h/a/img", "image/jpeg; charset=x", e);
  ck_assert_str_eq(e, ".jpg");
  store_ext("http://h/a.d/img", NULL, e);
  ck_assert_str_eq(e, ".bin");
  store_ext("http://h/a/b.toolong", "image/gif", e);
  ck_assert_str_eq(e, ".gif");
  store_ext("http://h/a/b.p-g", NULL, e);
  ck_assert_str_eq(e, ".bin");
}
END_TEST

static char *tmpdir(void) {
  char *d = strdup("/tmp/crawl-store.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d));
  return d;
}

static void rmrf(const char *d) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  ck_assert_int_eq(system(cmd), 0);
}

static bool exists(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return access(p, F_OK) == 0;
}

START_TEST(store_put_and_resume) {
  char *d = tmpdir(), err[256], name[STORE_NAME_MAX], name2[STORE_NAME_MAX];
  store *s;
  ck_assert_int_eq(store_open(d, &s, err, sizeof err), 0);
  ck_assert_uint_eq(store_resumed(s), 0);
  bool fresh;
  ck_assert_int_eq(store_put(s, "http://h/x.png", NULL, "abc", 3, name, &fresh,
                             err, sizeof err),
                   0);
  ck_assert(fresh);
  ck_assert_str_eq(name, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.png");
  ck_assert(exists(d, name));
  /* the same bytes under another URL: one file */
  ck_assert_int_eq(store_put(s, "http://h/y.png", NULL, "abc", 3, name2,
                             &fresh, err, sizeof err),
                   0);
  ck_assert(!fresh);
  ck_assert_str_eq(name, name2);
  ck_assert_int_eq(store_put(s, "http://h/z.png", NULL, "", 0, name2, &fresh,
                             err, sizeof err),
                   0);
  ck_assert(fresh);
  store_close(s);

  /* a leftover .part, a torn journal line, an entry whose file is gone */
  char p[512];
  snprintf(p, sizeof p, "%s/.dead.1.2.part", d);
  FILE *f = fopen(p, "w");
  fputs("half", f);
  fclose(f);
  snprintf(p, sizeof p, "%s/.conc-crawl.journal", d);
  f = fopen(p, "a");
  fputs("missing.png\t5\thttp://h/gone.png\n", f);
  fputs("torn.png\t3\thttp://h/torn", f);
  fclose(f);

  ck_assert_int_eq(store_open(d, &s, err, sizeof err), 0);
  ck_assert(!exists(d, ".dead.1.2.part"));
  ck_assert_uint_eq(store_resumed(s), 3);
  unsigned long long size;
  ck_assert_int_eq(store_lookup(s, "http://h/y.png", name2, &size), 1);
  ck_assert_str_eq(name2, name);
  ck_assert_uint_eq(size, 3);
  ck_assert_int_eq(store_lookup(s, "http://h/gone.png", name2, &size), 0);
  ck_assert_int_eq(store_lookup(s, "http://h/torn", name2, &size), 0);
  ck_assert_int_eq(store_lookup(s, "http://h/new.png", name2, &size), 0);
  store_close(s);
  rmrf(d);
  free(d);
}
END_TEST

START_TEST(store_open_errors) {
  char err[256];
  store *s;
  ck_assert_int_lt(store_open("/proc/no/such/dir", &s, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "/proc/no/such/dir"));
}
END_TEST

START_TEST(store_strset) {
  strset s = {0};
  char k[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "k%d", i);
    ck_assert_int_eq(strset_add(&s, k, NULL), 1);
  }
  ck_assert_int_eq(strset_add(&s, "k7", NULL), 0);
  ck_assert_int_eq(strset_get(&s, "k999", NULL), 1);
  ck_assert_int_eq(strset_get(&s, "k1000", NULL), 0);
  ck_assert_uint_eq(s.n, 1000);
  strset_free(&s, NULL);
}
END_TEST

CONC_TEST_MAIN("crawl-store", store_sha256_vectors, store_extension,
               store_put_and_resume, store_open_errors, store_strset)
