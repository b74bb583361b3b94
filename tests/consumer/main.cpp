// consumer main.cpp - the C++ twin of main.c: conc.h must compile as C++11
// and link from C++ against the installed library (see tools/consumers.sh).
#include <conc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

void *square(void *arg) {
  std::intptr_t x = reinterpret_cast<std::intptr_t>(arg);
  return reinterpret_cast<void *>(x * x);
}

void check(int rc, const char *what) {
  if (rc < 0) {
    std::fprintf(stderr, "consumer (C++): %s: %s\n", what,
                 conc_strerror(rc));
    std::exit(1);
  }
}

} // namespace

int main() {
  if (conc_version() != CONC_VERSION_HEX) {
    std::fprintf(stderr, "consumer (C++): header/library mismatch (%s)\n",
                 conc_version_string());
    return 1;
  }
  conc_thread_pool_options opts;
  conc_thread_pool_options_init(&opts);
  opts.max_workers = 2;
  conc_executor *ex = nullptr;
  check(conc_thread_pool_create(&opts, &ex), "conc_thread_pool_create");
  conc_future *f = nullptr;
  check(conc_executor_submit(ex, square, reinterpret_cast<void *>(7), &f),
        "conc_executor_submit");
  void *r = nullptr;
  check(conc_future_result(f, -1, &r), "conc_future_result");
  conc_future_release(f);
  check(conc_executor_destroy(ex), "conc_executor_destroy");
  if (reinterpret_cast<std::intptr_t>(r) != 49) {
    std::fprintf(stderr, "consumer (C++): 7 * 7 gave %ld\n",
                 static_cast<long>(reinterpret_cast<std::intptr_t>(r)));
    return 1;
  }
  std::printf("consumer (C++): 7 * 7 = 49 with conc %s\n",
              conc_version_string());
  return 0;
}
