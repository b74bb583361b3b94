/* test-error.c - error codes, names, messages; version. */
#include "harness.h"

#include <string.h>

START_TEST(error_codes_distinct_and_named) {
  static const int codes[] = {
#define X(name, val, msg) CONC_##name,
      CONC_ERRNO_MAP(X)
#undef X
  };
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_lt(codes[i], 0);
    ck_assert_str_ne(conc_strerror(codes[i]), "unknown error");
    ck_assert_str_ne(conc_err_name(codes[i]), "UNKNOWN");
    for (size_t j = i + 1; j < n; j++)
      ck_assert_int_ne(codes[i], codes[j]);
  }
}
END_TEST

START_TEST(error_errno_equivalence) {
  ck_assert_int_eq(CONC_EINVAL, -EINVAL);
  ck_assert_int_eq(CONC_ENOMEM, -ENOMEM);
  ck_assert_int_eq(CONC_EAGAIN, -EAGAIN);
  ck_assert_int_eq(CONC_ETIMEDOUT, -ETIMEDOUT);
  ck_assert_int_eq(CONC_ECANCELED, -ECANCELED);
  ck_assert_int_eq(CONC_EPERM, -EPERM);
  ck_assert_int_lt(CONC_ETASK, -4000);
  ck_assert_int_lt(CONC_EBROKEN, -4000);
  ck_assert_int_lt(CONC_ESHUTDOWN, -4000);
  ck_assert_int_lt(CONC_EWORKER, -4000);
  ck_assert_int_lt(CONC_EKILLED, -4000);
  ck_assert_int_lt(CONC_EDEADLINE, -4000);
  ck_assert_int_lt(CONC_ECLOSED, -4000);
}
END_TEST

START_TEST(error_strerror_names) {
  ck_assert_str_eq(conc_strerror(0), "success");
  ck_assert_str_eq(conc_err_name(0), "OK");
  ck_assert_str_eq(conc_strerror(CONC_ETIMEDOUT), "timed out");
  ck_assert_str_eq(conc_err_name(CONC_ETIMEDOUT), "ETIMEDOUT");
  ck_assert_str_eq(conc_err_name(CONC_EDEADLK), "EDEADLK");
  ck_assert_str_eq(conc_err_name(CONC_EOWNERDEAD), "EOWNERDEAD");
  ck_assert_str_eq(conc_err_name(CONC_ENOTSUP), "ENOTSUP");
  ck_assert_str_eq(conc_err_name(CONC_ERANGE), "ERANGE");
  ck_assert_str_eq(conc_err_name(CONC_EINTR), "EINTR");
  ck_assert_str_eq(conc_err_name(CONC_EEXIST), "EEXIST");
  ck_assert_str_eq(conc_err_name(CONC_ENOENT), "ENOENT");
  ck_assert_str_eq(conc_err_name(CONC_EBUSY), "EBUSY");
  ck_assert_str_eq(conc_err_name(CONC_EOVERFLOW), "EOVERFLOW");
  ck_assert_str_eq(conc_strerror(12345), "unknown error");
  ck_assert_str_eq(conc_strerror(-99999), "unknown error");
  ck_assert_str_eq(conc_strerror(-EMFILE), "Too many open files");
  ck_assert_str_eq(conc_err_name(-99999), "UNKNOWN");
}
END_TEST

START_TEST(version_matches_header) {
  ck_assert_uint_eq(conc_version(), CONC_VERSION_HEX);
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", CONC_VERSION_MAJOR,
           CONC_VERSION_MINOR, CONC_VERSION_PATCH);
  ck_assert_str_eq(conc_version_string(), buf);
}
END_TEST

CONC_TEST_MAIN("error", error_codes_distinct_and_named,
               error_errno_equivalence, error_strerror_names,
               version_matches_header)
