/* test-shm.c - anonymous and named shared-memory blocks.
 *
 * Children are forked from the single-threaded test process and report
 * through exit codes; ordering uses waitpid.  Every case checks that no
 * descriptor and no /dev/shm entry is left behind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static void child_ok(pid_t pid) {
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x",
                st);
}

static bool dev_shm_has(const char *name) {
  char path[300];
  snprintf(path, sizeof path, "/dev/shm/%s", name);
  return access(path, F_OK) == 0;
}

START_TEST(shm_anon_fork) {
  int fds = conc_test_fd_count();
  conc_shm s = {0};
  ck_assert_ptr_null(conc_shm_addr(&s));
  ck_assert_uint_eq(conc_shm_size(&s), 0);
  ck_assert_int_eq(conc_shm_fd(&s), -1);
  ck_assert_int_eq(conc_shm_create_anon(&s, 10000), 0);
  ck_assert_uint_eq(conc_shm_size(&s), 10000);
  ck_assert_int_ge(conc_shm_fd(&s), 0);
  unsigned char *p = conc_shm_addr(&s);
  ck_assert_ptr_nonnull(p);
  for (int i = 0; i < 10000; i++)
    ck_assert_int_eq(p[i], 0); /* zero-filled */
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    unsigned char *c = conc_shm_addr(&s);
    for (int i = 0; i < 10000; i++)
      c[i] = (unsigned char)(i * 7);
    CHILD_CHECK(conc_shm_close(&s) == 0);
    _exit(0);
  }
  child_ok(pid);
  for (int i = 0; i < 10000; i++)
    ck_assert_int_eq(p[i], (unsigned char)(i * 7));
  ck_assert_int_eq(conc_shm_close(&s), 0);
  ck_assert_int_eq(conc_shm_close(&s), CONC_EINVAL);
  ck_assert_ptr_null(conc_shm_addr(&s));
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(shm_named_create_open_unlink) {
  int fds = conc_test_fd_count();
  char name[80], bare[64];
  snprintf(bare, sizeof bare, "conc-test-shm-%d", (int)getpid());
  snprintf(name, sizeof name, "/%s", bare);
  conc_shm a = {0}, b = {0};
  ck_assert_int_eq(conc_shm_open(&a, name), CONC_ENOENT);
  ck_assert_int_eq(conc_shm_create(&a, name, 5000), 0);
  ck_assert(dev_shm_has(bare));
  ck_assert_int_eq(conc_shm_create(&b, bare, 5000), CONC_EEXIST);
  strcpy(conc_shm_addr(&a), "hello");
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) { /* opens by name, as an unrelated process would */
    conc_shm c = {0};
    CHILD_CHECK(conc_shm_open(&c, bare) == 0);
    CHILD_CHECK(conc_shm_size(&c) == 5000);
    CHILD_CHECK(strcmp(conc_shm_addr(&c), "hello") == 0);
    strcpy((char *)conc_shm_addr(&c) + 100, "world");
    CHILD_CHECK(conc_shm_close(&c) == 0);
    _exit(0);
  }
  child_ok(pid);
  ck_assert_str_eq((char *)conc_shm_addr(&a) + 100, "world");
  ck_assert_int_eq(conc_shm_unlink(name), 0);
  ck_assert(!dev_shm_has(bare));
  ck_assert_int_eq(conc_shm_unlink(name), CONC_ENOENT);
  ck_assert_int_eq(conc_shm_open(&b, name), CONC_ENOENT);
  /* still mapped after unlink */
  ck_assert_str_eq(conc_shm_addr(&a), "hello");
  ck_assert_int_eq(conc_shm_close(&a), 0);
  ck_assert_int_eq(conc_test_fd_count(), fds);
}
END_TEST

START_TEST(shm_bad_input) {
  conc_shm s = {0};
  char longname[300];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ck_assert_int_eq(conc_shm_create_anon(NULL, 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create_anon(&s, 0), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, NULL, 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, "", 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, "/", 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, "a/b", 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, longname, 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(&s, "conc-test-zero", 0), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_create(NULL, "conc-test-null", 10), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_open(&s, "a/b"), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_open(NULL, "x"), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_unlink(".."), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_unlink(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_close(NULL), CONC_EINVAL);
  ck_assert_int_eq(conc_shm_close(&s), CONC_EINVAL);
  ck_assert_ptr_null(conc_shm_addr(NULL));
  ck_assert_uint_eq(conc_shm_size(NULL), 0);
  ck_assert_int_eq(conc_shm_fd(NULL), -1);
  ck_assert(!dev_shm_has("conc-test-zero"));
  ck_assert(!dev_shm_has("conc-test-null"));
}
END_TEST

CONC_TEST_MAIN("shm", shm_anon_fork, shm_named_create_open_unlink,
               shm_bad_input)
