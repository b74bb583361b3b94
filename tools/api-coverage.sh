#!/usr/bin/env bash
# api-coverage.sh - every public name must be exercised by a test.
#
# Collects every function declared with CONC_EXTERN in include/conc/*.h and
# every CONC_E* code of the CONC_ERRNO_MAP table in include/conc/error.h,
# then looks for each name, as a whole word, in tests/test-*.c.  Prints the
# names no test mentions and exits 1 if there is any; exits 0 otherwise.
# (A name in a test file is taken as exercised; reviewers keep it honest.)
#
# Usage: tools/api-coverage.sh            (from anywhere in the tree)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

shopt -s nullglob
headers=(include/conc/*.h)
tests=(tests/test-*.c)
if [ ${#headers[@]} -eq 0 ] || [ ${#tests[@]} -eq 0 ]; then
  echo "api-coverage: no headers or no tests/test-*.c found" >&2
  exit 1
fi

# Functions: CONC_EXTERN <return type> conc_name( - the declaration may span
# lines, so read each header whole; preprocessor lines are dropped first
# (visibility.h defines CONC_EXTERN itself).
functions=$(for h in "${headers[@]}"; do
  grep -v '^[[:space:]]*#' "$h" |
    perl -0777 -ne 'print "$1\n" while /\bCONC_EXTERN\b[^;(]*?\b(conc_\w+)\s*\(/g'
done | sort -u)

# Error codes: the X(NAME, value, message) rows of CONC_ERRNO_MAP.
codes=$(sed -n 's/^[[:space:]]*X(\(E[A-Z0-9_]*\),.*/CONC_\1/p' \
  include/conc/error.h | sort -u)

if [ -z "$functions" ] || [ -z "$codes" ]; then
  echo "api-coverage: could not extract the API from the headers" >&2
  exit 1
fi

# Every identifier-like word used in the tests, once.
words=$(cat "${tests[@]}" | grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' | sort -u)

missing=$(comm -23 <(printf '%s\n' "$functions" "$codes" | sort -u) \
  <(printf '%s\n' "$words"))

nf=$(printf '%s\n' "$functions" | wc -l)
nc=$(printf '%s\n' "$codes" | wc -l)
if [ -n "$missing" ]; then
  n=$(printf '%s\n' "$missing" | wc -l)
  echo "api-coverage: FAIL: $n of $((nf + nc)) public names ($nf functions," \
    "$nc error codes) appear in no tests/test-*.c:" >&2
  while read -r name; do echo "  $name"; done <<<"$missing" >&2
  exit 1
fi
echo "api-coverage: ok: all $nf functions and $nc error codes appear in tests"
