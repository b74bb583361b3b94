#!/usr/bin/env bash
# crawl-compare.sh CONC_CRAWL WORKDIR [ENGINE...] - crawl $CRAWL_SITE_URL
# with each engine (default: threads processes coroutines) into
# WORKDIR/<engine>, then print a comparison table (time, pages, images,
# files, bytes, requests, failures) and check that every engine got the
# same counts and the same files.  Run it under tools/crawl-site.sh, which
# serves the site and sets CRAWL_SITE_URL.  Exits non-zero if a crawl
# fails or the engines differ.
set -uo pipefail
bin=${1:?usage: crawl-compare.sh CONC_CRAWL WORKDIR [ENGINE...]}
work=${2:?usage: crawl-compare.sh CONC_CRAWL WORKDIR [ENGINE...]}
shift 2
engines=("$@")
[ ${#engines[@]} -eq 0 ] && engines=(threads processes coroutines)
url=${CRAWL_SITE_URL:?run under tools/crawl-site.sh}

num() { grep -o "\"$2\": [0-9.]*" "$1" | head -1 | awk '{ print $2 }'; }

rc=0
rows=()
ref=''
for e in "${engines[@]}"; do
  rm -rf "${work:?}/$e"
  mkdir -p "$work/$e"
  if ! "$bin" -e "$e" -c 16 --progress "${CRAWL_PROGRESS:-auto}" \
    -o "$work/$e/out" --json "$work/$e/summary.json" "$url"; then
    echo "crawl-compare: the $e engine failed" >&2
    rc=1
    continue
  fi
  s="$work/$e/summary.json"
  rows+=("$(printf '%-10s %8.2f %6s %7s %6s %11s %9s %7s' "$e" \
    "$(num "$s" seconds)" "$(num "$s" pages)" "$(num "$s" images)" \
    "$(num "$s" files)" "$(num "$s" bytes)" "$(num "$s" requests)" \
    "$(num "$s" failed)")")
  # what must not depend on the engine: the counters and the file list
  sed -n '/"pages"/,/"failures"/p' "$s" >"$work/$e/counts"
  (cd "$work/$e/out" && ls) >"$work/$e/files"
  if [ -z "$ref" ]; then
    ref=$e
  elif ! cmp -s "$work/$ref/counts" "$work/$e/counts" ||
    ! cmp -s "$work/$ref/files" "$work/$e/files"; then
    echo "crawl-compare: $e and $ref differ:" >&2
    diff "$work/$ref/counts" "$work/$e/counts" >&2
    diff "$work/$ref/files" "$work/$e/files" | head >&2
    rc=1
  fi
done
printf '%-10s %8s %6s %7s %6s %11s %9s %7s\n' engine seconds pages images \
  files bytes requests failed
for r in "${rows[@]}"; do printf '%s\n' "$r"; done
[ $rc -eq 0 ] && [ -n "$ref" ] &&
  echo "Same pages, images, files (sha256 names), bytes, requests and failures with every engine."
exit $rc
