#!/usr/bin/env bash
# crawl-site.sh - serve a local site with nginx and run a command against it.
#
#   tools/crawl-site.sh [-g SITEGEN [-a 'GEN ARGS']] [-w WORKERS] DIR -- CMD...
#
# -g: first generate the site into DIR with SITEGEN (conc-crawl-sitegen),
#     passing GEN ARGS after DIR; with "faults" among them, the gzip bomb
#     of /fault/bomb.png is written too (gzip).
# Starts nginx (Debian's /usr/sbin/nginx, as the current user, with its
# config, logs, pid and temp files in a private directory) on a free
# loopback port - it tries random ports until one binds - and runs CMD
# with CRAWL_SITE_URL=http://127.0.0.1:PORT/ in its environment.  nginx is
# stopped on exit whatever happens (EXIT/INT/TERM/HUP traps); the exit
# status is CMD's.
#
# The nginx config adds the site's special addresses: /r/X and /ri/X
# redirect to /p/X and /img/X; /fault/503.* answers 503, /fault/reset.png
# drops the connection (444), /fault/loop/a and /b redirect to each
# other, /fault/slow.png is sent at 8 KiB/s, /fault/bomb.png is a gzip
# stream sent with Content-Encoding: gzip.  /nginx-status is nginx's
# stub_status (the request counter that make bench reads).
set -euo pipefail

gen='' genargs='' workers=1
while getopts 'g:a:w:' opt; do
  case $opt in
  g) gen=$OPTARG ;;
  a) genargs=$OPTARG ;;
  w) workers=$OPTARG ;;
  *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
dir=${1:?usage: tools/crawl-site.sh [-g SITEGEN [-a ARGS]] DIR -- CMD...}
shift
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "crawl-site: no command" >&2; exit 2; }
nginx=${NGINX:-/usr/sbin/nginx}
[ -x "$nginx" ] || { echo "crawl-site: $nginx not found (apt-get install nginx)" >&2; exit 1; }

if [ -n "$gen" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$gen" "$dir" $genargs
  if [[ " $genargs " == *" faults "* ]]; then
    head -c $((20 << 20)) /dev/zero | gzip -9 >"$dir/fault/bomb.png"
  fi
fi
dir=$(cd "$dir" && pwd)

run=$(mktemp -d "${TMPDIR:-/tmp}/conc-nginx.XXXXXX")
pid=''
cleanup() {
  local rc=$?
  if [ -s "$run/nginx.pid" ]; then
    pid=$(cat "$run/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$run"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

user_line=''
[ "$(id -u)" -eq 0 ] && user_line='user root root;'

for attempt in $(seq 30); do
  port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
  cat >"$run/nginx.conf" <<CONF
$user_line
worker_processes $workers;
pid $run/nginx.pid;
error_log $run/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $run/body;
  proxy_temp_path $run/proxy;
  fastcgi_temp_path $run/fastcgi;
  uwsgi_temp_path $run/uwsgi;
  scgi_temp_path $run/scgi;
  types { text/html html; image/png png; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60;
  absolute_redirect off;
  server {
    listen 127.0.0.1:$port reuseport;
    root $dir;
    location /r/ { rewrite ^/r/(.*)\$ /p/\$1 redirect; }
    location /ri/ { rewrite ^/ri/(.*)\$ /img/\$1 redirect; }
    location ~ ^/fault/503 { return 503; }
    location = /fault/reset.png { return 444; }
    location = /fault/loop/a { return 302 /fault/loop/b; }
    location = /fault/loop/b { return 302 /fault/loop/a; }
    location = /fault/slow.png { limit_rate 8k; }
    location = /fault/bomb.png { add_header Content-Encoding gzip; }
    location = /nginx-status { stub_status; }
  }
}
CONF
  if "$nginx" -e "$run/error.log" -p "$run" -c "$run/nginx.conf" 2>"$run/start.log"; then
    break
  fi
  if ! grep -q 'in use' "$run/start.log" || [ "$attempt" -eq 30 ]; then
    cat "$run/start.log" >&2
    exit 1
  fi
done
# nginx daemonises after binding: the port is ready when the pid file is.
for _ in $(seq 100); do
  [ -s "$run/nginx.pid" ] && break
  sleep 0.02
done
export CRAWL_SITE_URL="http://127.0.0.1:$port/"
set +e
"$@"
exit $?
