# conc-crawl's tests: one executable per tests/test-crawl-<module>.c, linked
# with the crawler's code (crawl_core) and the Check harness, run by ctest
# as crawl-<module>.  Included from tests/CMakeLists.txt when the crawler
# is built (libcurl and libxml2 found).
file(GLOB CRAWL_TEST_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/test-crawl-*.c)
foreach(src ${CRAWL_TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "test-" "" module ${name})
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE crawl_core conc_test_support)
  target_compile_definitions(${name} PRIVATE
    CONC_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    CRAWL_BIN="$<TARGET_FILE:conc-crawl>"
    CRAWL_SITEGEN="$<TARGET_FILE:conc-crawl-sitegen>"
    CRAWL_BIN_DIR="$<TARGET_FILE_DIR:conc-crawl>")
  add_dependencies(${name} conc-crawl conc-crawl-sitegen conc-proxy-pool)
  conc_warnings(${name})
  if(module STREQUAL "crawl-engines")
    # against a generated site served by nginx (tools/crawl-site.sh)
    add_test(NAME ${module} COMMAND ${PROJECT_SOURCE_DIR}/tools/crawl-site.sh
      -g $<TARGET_FILE:conc-crawl-sitegen> -a "40 400 faults"
      ${CMAKE_CURRENT_BINARY_DIR}/crawl-site -- $<TARGET_FILE:${name}>)
  elseif(module STREQUAL "crawl-proxy")
    # nginx serves the URL fetched through the proxies
    add_test(NAME ${module} COMMAND ${PROJECT_SOURCE_DIR}/tools/crawl-site.sh
      -g $<TARGET_FILE:conc-crawl-sitegen> -a "2 2"
      ${CMAKE_CURRENT_BINARY_DIR}/proxy-site -- $<TARGET_FILE:${name}>)
  else()
    add_test(NAME ${module} COMMAND ${name})
  endif()
  set_tests_properties(${module} PROPERTIES
    ENVIRONMENT "CK_TIMEOUT_MULTIPLIER=${CONC_TEST_TIMEOUT_MULT};CK_VERBOSITY=normal"
    TIMEOUT 1800)
endforeach()

# The extraction fuzzer (libFuzzer), in the clang ASan+UBSan build as
# fuzz-wire is; ctest runs it for a few seconds on a copy of the seed
# corpus.
if(CMAKE_C_COMPILER_ID STREQUAL "Clang" AND CONC_SANITIZE MATCHES "address")
  add_executable(fuzz-crawl-extract fuzz/fuzz-crawl-extract.c)
  target_link_libraries(fuzz-crawl-extract PRIVATE crawl_core)
  target_compile_options(fuzz-crawl-extract PRIVATE -fsanitize=fuzzer)
  target_link_options(fuzz-crawl-extract PRIVATE -fsanitize=fuzzer)
  conc_warnings(fuzz-crawl-extract)
  set(_corpus ${CMAKE_CURRENT_BINARY_DIR}/crawl-extract-corpus)
  add_test(NAME crawl-fuzz-extract COMMAND ${CMAKE_COMMAND} -E env
    sh -c "rm -rf '${_corpus}' && cp -r '${CMAKE_CURRENT_SOURCE_DIR}/fuzz/crawl-extract-corpus' '${_corpus}' && exec '$<TARGET_FILE:fuzz-crawl-extract>' -max_total_time=4 -seed=1 -max_len=8192 -timeout=10 '${_corpus}'")
  set_tests_properties(crawl-fuzz-extract PROPERTIES TIMEOUT 120)
endif()
