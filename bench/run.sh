#!/usr/bin/env bash
# Staccato benchmarks (loopback only, bounded durations).
#
#   bench/run.sh [health]   GET /health keep-alive throughput: Staccato vs nginx (one run, same wrk params)
#   bench/run.sh idle       10,000 idle keep-alive connections: Staccato RSS (target < 64 MiB)
#   bench/run.sh ranges     1,000 connections fetching random 64 KiB ranges of a 5 MiB song: Staccato vs nginx
#   bench/run.sh tls        HTTPS (TLS 1.2, ECDSA P-256, ECDHE-ECDSA-AES128-GCM-SHA256): /health keep-alive,
#                           a new connection per request (wrk resumes the TLS session), 5 MiB downloads:
#                           Staccato vs nginx
#   bench/run.sh slow       10,000 listeners streaming the song at 40 KiB/s each: Staccato RSS (target < 128 MiB)
#                           and CPU (target < 1 core)
#   bench/run.sh all        all of them, in this order
#
# Environment:
#   STACCATO_BIN      use this binary instead of building build-bench/ (Release) from this repo
#   WRK_THREADS=1 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s   (every wrk run; WRK_CONNS: health only)
#   BENCH_ROUNDS=1    health, ranges, tls: rounds (Staccato, then nginx); medians are reported when > 1
#   IDLE_CONNS=10000 IDLE_RSS_LIMIT_MIB=64
#   RANGES_CONNS=1000 RANGES_BYTES=65536            ranges: wrk -c, bytes per range
#   TLS_CONNS=64 TLS_CLOSE_CONNS=16 TLS_DOWNLOAD_CONNS=16   tls: wrk -c of the three runs
#   TLS_FULL_CLIENTS=4 TLS_FULL_SECONDS=10     tls: openssl s_time -new clients for full handshakes
#   SLOW_CONNS=10000 SLOW_RATE_KIB=40 SLOW_DURATION=30 SLOW_RCVBUF=16384
#   SLOW_RSS_LIMIT_MIB=128 SLOW_CPU_LIMIT=1.0        slow: targets
#   MEDIA_MIB=5       size of the generated WAV song (ranges, tls, slow)
#   BENCH_PIN_SERVICES=1  pin PostgreSQL and Redis to the server's CPU (0: leave them to the scheduler)
#   BENCH_WAIT_QUIET=0  before each run, wait up to this many seconds for the CPUs to be >= 90% idle
#   BENCH_KEEP_TMP=1  keep the temp dir (server logs, nginx config, wrk output)
#
# Needs: wrk, nginx (nginx-light), curl, python3, taskset (deps/install.sh all); ranges, tls and slow also
# PostgreSQL and Redis (started privately through deps/services.sh), ffprobe (uploads), openssl (tls), cc (slow).
# Only 127.0.0.1 is used. The system nginx configuration is never read: nginx gets a private
# config and prefix directory inside a temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

# The comment block at the top of this file is the help text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

MODE=${1:-health}
case $MODE in
  health|idle|ranges|tls|slow|all) ;;
  -h|--help|help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-2s}
IDLE_CONNS=${IDLE_CONNS:-10000}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
case $BENCH_WAIT_QUIET in ''|*[!0-9]*) echo "bench: BENCH_WAIT_QUIET must be a number of seconds" >&2; exit 2 ;; esac
case $BENCH_ROUNDS in ''|*[!0-9]*|0) echo "bench: BENCH_ROUNDS must be a positive integer" >&2; exit 2 ;; esac
IDLE_RSS_LIMIT_MIB=${IDLE_RSS_LIMIT_MIB:-64}
RANGES_CONNS=${RANGES_CONNS:-1000}
RANGES_BYTES=${RANGES_BYTES:-65536}
TLS_CONNS=${TLS_CONNS:-64}
TLS_CLOSE_CONNS=${TLS_CLOSE_CONNS:-16}
TLS_FULL_CLIENTS=${TLS_FULL_CLIENTS:-4}
TLS_FULL_SECONDS=${TLS_FULL_SECONDS:-10}
TLS_DOWNLOAD_CONNS=${TLS_DOWNLOAD_CONNS:-16}
SLOW_CONNS=${SLOW_CONNS:-10000}
SLOW_RATE_KIB=${SLOW_RATE_KIB:-40}
SLOW_DURATION=${SLOW_DURATION:-30}
SLOW_RCVBUF=${SLOW_RCVBUF:-16384}
SLOW_RSS_LIMIT_MIB=${SLOW_RSS_LIMIT_MIB:-128}
SLOW_CPU_LIMIT=${SLOW_CPU_LIMIT:-1.0}
MEDIA_MIB=${MEDIA_MIB:-5}
BENCH_PIN_SERVICES=${BENCH_PIN_SERVICES:-1}
case $BENCH_PIN_SERVICES in 0|1) ;; *) echo "bench: BENCH_PIN_SERVICES must be 0 or 1" >&2; exit 2 ;; esac
for v in RANGES_CONNS RANGES_BYTES TLS_CONNS TLS_CLOSE_CONNS TLS_FULL_CLIENTS TLS_FULL_SECONDS TLS_DOWNLOAD_CONNS SLOW_CONNS SLOW_RATE_KIB SLOW_DURATION \
         SLOW_RCVBUF SLOW_RSS_LIMIT_MIB MEDIA_MIB; do
  case ${!v} in ''|*[!0-9]*|0) echo "bench: $v must be a positive integer" >&2; exit 2 ;; esac
done
case $SLOW_CPU_LIMIT in ''|*[!0-9.]*) echo "bench: SLOW_CPU_LIMIT must be a number of cores" >&2; exit 2 ;; esac

# Exactly what Staccato's GET /health answers (see the spec); nginx serves the same bytes.
HEALTH_BODY='{"status":"success","data":{"status":"ok"}}'
HEALTH_CT='application/json; charset=utf-8'

say() { printf '%s\n' "$*"; }
warn() { printf 'bench: warning: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "missing '$1' (run deps/install.sh all)"; }
need curl; need python3
case $MODE in health|ranges|tls|all) need wrk; need nginx ;; esac
case $MODE in ranges|tls|slow|all) need ffprobe ;; esac
case $MODE in tls|all) need openssl ;; esac
case $MODE in slow|all) need cc ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/staccato-bench.XXXXXX")
PIDS=()

stop_pid() { # stop_pid PID [SIGNAL]: signal one process we started and wait (max 10 s) for it
  local pid=$1 sig=${2:-TERM} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -"$sig" "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "pid $pid did not exit within 10 s of SIG$sig; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

SVC_DIR=  # private PostgreSQL + Redis (deps/services.sh) of ranges, tls and slow; outside $TMP (see start_services)
cleanup() {
  local p link extra=()
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  if [ -n "$SVC_DIR" ] && [ -d "$SVC_DIR" ]; then
    "$ROOT/deps/services.sh" stop "$SVC_DIR" >/dev/null 2>&1 || warn "deps/services.sh stop $SVC_DIR failed"
    # services.sh may keep PostgreSQL's files or socket behind symlinks in /var/tmp or /tmp.
    for link in "$SVC_DIR/pg/run" "$SVC_DIR/pg"; do [ -L "$link" ] && extra+=("$(readlink -f "$link")"); done
    rm -rf "${extra[@]}" "$SVC_DIR"
  fi
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then say "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- CPU pinning: server on one core, wrk/python client on another ----------------------------
read -r -a CPUS <<<"$(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))')"
SRV_PIN=(); CLI_PIN=(); PIN_NOTE="no pinning (fewer than 2 usable cores or no taskset)"
if [ "${#CPUS[@]}" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  SRV_PIN=(taskset -c "${CPUS[0]}"); CLI_PIN=(taskset -c "${CPUS[1]}")
  PIN_NOTE="server pinned to CPU ${CPUS[0]}, client pinned to CPU ${CPUS[1]}"
fi

cpu_idle_pct() { # percentage of CPU time idle over the next second, all cores (/proc/stat)
  local a b
  a=$(head -n1 /proc/stat); sleep 1; b=$(head -n1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%d", (t > 0) ? 100 * idle / t : 0 }'
}

check_quiet() { # warn when other processes are using the CPUs (results would be unreliable)
  local idle waited=0; idle=$(cpu_idle_pct)
  # BENCH_WAIT_QUIET=N: wait up to N seconds for the machine to become >= 90% idle first.
  while [ "$idle" -lt 90 ] && [ "$waited" -lt "$BENCH_WAIT_QUIET" ]; do
    sleep 4; waited=$((waited + 5)); idle=$(cpu_idle_pct)
  done
  [ "$waited" -gt 0 ] && say "  waited ${waited}s for the machine to become quiet"
  say "  machine idle before this run: $idle% of all CPUs"
  [ "$idle" -ge 90 ] || warn "the machine is busy (only $idle% idle): other processes compete with the benchmark, figures are unreliable"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # wait_http URL PID LOG: until URL answers 200 (max 10 s) while PID lives
  local url=$1 pid=$2 log=$3 i
  for i in $(seq 100); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      warn "server exited during startup; last lines of $log:"; tail -n 20 "$log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  warn "$url did not answer 200 within 10 s; last lines of $log:"; tail -n 20 "$log" >&2 || true
  return 1
}

# --- Staccato binary ---------------------------------------------------------------------------
if [ -n "${STACCATO_BIN:-}" ]; then
  BIN=$STACCATO_BIN
else
  say "bench: building Release into build-bench/ (log: $TMP/build.log)"
  if ! (cd "$ROOT" && cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release &&
        cmake --build build-bench -j2) >"$TMP/build.log" 2>&1; then
    tail -n 40 "$TMP/build.log" >&2
    die "build failed"
  fi
  BIN=$ROOT/build-bench/staccato
fi
[ -x "$BIN" ] || die "no executable at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

STACCATO_PID=; STACCATO_PORT=
start_staccato() { # start_staccato TAG [VAR=VALUE ...]: one process on 127.0.0.1:free port
  local tag=$1; shift
  local port; port=$(free_port)
  local log=$TMP/staccato.$tag.log
  # Run from the temp dir so that no .env file of the caller's cwd is picked up. Every benchmark client connects
  # from loopback, up to 10,000 connections at once: no cap per address.
  (cd "$TMP" && exec env STACCATO_ACCESS_LOG=off HOST=127.0.0.1 PORT="$port" STACCATO_WORKERS=1 \
      STACCATO_MAX_CONNECTIONS_PER_ADDRESS=0 \
      "$@" "${SRV_PIN[@]}" "$BIN" serve) >"$TMP/staccato.$tag.out" 2>"$log" &
  STACCATO_PID=$!; STACCATO_PORT=$port; PIDS+=("$STACCATO_PID")
  wait_http "http://127.0.0.1:$port/health" "$STACCATO_PID" "$log" || die "Staccato did not start"
}

NGINX_PID=; NGINX_PORT=; NGINX_TLS_PORT=
# start_nginx [WWW_DIR [CERT KEY]]: one worker on 127.0.0.1:free port answering /health as Staccato does.
# WWW_DIR: also serve the files in it under /media/ with sendfile; CERT KEY: also listen with TLS on a second free
# port (NGINX_TLS_PORT), TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 only, serving the same locations.
start_nginx() {
  local www=${1:-} cert=${2:-} key=${3:-}
  local port; port=$(free_port)
  local dir=$TMP/nginx locations media_http="" tls_server=""
  mkdir -p "$dir/logs"
  locations="
        location = /health {
            default_type \"$HEALTH_CT\";
            return 200 '$HEALTH_BODY';
        }"
  if [ -n "$www" ]; then
    locations+="
        location /media/ {
            alias $www/;
        }"
    media_http="
    sendfile on;
    types { audio/wav wav; }
    default_type application/octet-stream;"
  fi
  locations+="
        location / {
            return 404;
        }"
  NGINX_TLS_PORT=
  if [ -n "$cert" ]; then
    NGINX_TLS_PORT=$(free_port)
    tls_server="
    server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;$locations
    }"
  fi
  cat >"$dir/nginx.conf" <<EOF
# Private config for the benchmark (never the system one).
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 4096;
    multi_accept on;
}
http {
    access_log off;
    server_tokens off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;$media_http
    server {
        listen 127.0.0.1:$port${www:+ backlog=4096};$locations
    }$tls_server
}
EOF
  "${SRV_PIN[@]}" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
    >"$dir/logs/stdout.log" 2>&1 &
  NGINX_PID=$!; NGINX_PORT=$port; PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$port/health" "$NGINX_PID" "$dir/logs/error.log" || die "nginx did not start"
}

nginx_worker() { # the pid of nginx's (only) worker process, else the master's
  local w
  w=$(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null | awk '{ print $1 }')
  echo "${w:-$NGINX_PID}"
}

forget_pid() { local p keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }

check_health_response() { # check_health_response NAME URL: body and Content-Type as expected
  local name=$1 url=$2 hdr body ct
  hdr=$TMP/$name.headers
  body=$(curl -sS --max-time 5 -D "$hdr" "$url")
  ct=$(grep -i '^content-type:' "$hdr" | head -n1 | sed 's/^[^:]*:[[:space:]]*//' | tr -d '\r')
  [ "$body" = "$HEALTH_BODY" ] || warn "$name /health body differs: $body"
  [ "$ct" = "$HEALTH_CT" ] || warn "$name /health Content-Type differs: $ct"
  say "  $name: $(head -n1 "$hdr" | tr -d '\r'), Content-Type: $ct, $(printf %s "$body" | wc -c) body bytes"
}

sched() { # sched PID...: "on-cpu-ns runqueue-wait-ns timeslices", summed over the threads' /proc schedstat
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
    awk '{ a += $1; b += $2; c += $3 } END { printf "%.0f %.0f %.0f\n", a, b, c }'
}

# run_wrk NAME URL TAG SERVER_PID [WRK_OPTION... [-- SCRIPT_ARG...]]: warm-up then measured run; leaves
# "RESULT server=NAME round=R ... srv_cpu_pct= srv_wait_pct= wrk_cpu_pct= wrk_wait_pct=" in $TMP/result.TAG.
# *_wait_pct: time the process was runnable but waiting for a CPU, in % of the run (from schedstat):
# more than a few % means something else competed for the cores during the run.
# WRK_OPTIONs follow -t$WRK_THREADS -c$WRK_CONNS (a later -c wins); "-s FILE" replaces bench/report.lua (also for
# the warm-up) and must print the same RESULT line; SCRIPT_ARGs go to the script's init(). With SIDE_PIDS="PID ..."
# (processes the server relies on: PostgreSQL, Redis), their CPU time is reported too (side_cpu_pct).
run_wrk() {
  local name=$1 url=$2 tag=$3 spid=$4 out=$TMP/wrk.$3.txt s0 s1 w w1="0 0 0" t0 t1 wpid extra d0="" d1=""
  shift 4
  local opts=(-t"$WRK_THREADS" -c"$WRK_CONNS") script=$BENCH/report.lua wscript=() sargs=()
  while [ $# -gt 0 ]; do
    case $1 in
      --) shift; sargs=("$@"); break ;;
      -s) script=$2; wscript=(-s "$2"); shift 2 ;;
      *) opts+=("$1"); shift ;;
    esac
  done
  "${CLI_PIN[@]}" wrk "${opts[@]}" -d"$WRK_WARMUP" "${wscript[@]}" "$url" "${sargs[@]}" >"$TMP/wrk.$tag.warmup.txt" 2>&1 ||
    { cat "$TMP/wrk.$tag.warmup.txt" >&2; die "wrk warm-up against $name failed"; }
  # shellcheck disable=SC2086 # SIDE_PIDS is a list
  if [ -n "${SIDE_PIDS:-}" ]; then d0=$(sched $SIDE_PIDS); fi
  s0=$(sched "$spid"); t0=$(date +%s%N)
  "${CLI_PIN[@]}" wrk "${opts[@]}" -d"$WRK_DURATION" -s "$script" "$url" "${sargs[@]}" >"$out" 2>&1 &
  wpid=$!
  while kill -0 "$wpid" 2>/dev/null; do
    w=$(sched "$wpid"); [ "$w" = "0 0 0" ] || w1=$w
    sleep 0.2
  done
  wait "$wpid" || { cat "$out" >&2; die "wrk against $name failed"; }
  s1=$(sched "$spid"); t1=$(date +%s%N)
  # shellcheck disable=SC2086
  if [ -n "${SIDE_PIDS:-}" ]; then d1=$(sched $SIDE_PIDS); fi
  extra=$(awk -v s0="$s0" -v s1="$s1" -v w="$w1" -v dt="$((t1 - t0))" -v d0="$d0" -v d1="$d1" \
      -v req="$(sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p' "$out")" 'BEGIN {
    split(s0, a); split(s1, b); split(w, c); cpu = (b[1] - a[1]) / 1e9
    printf "srv_cpu_pct=%.1f srv_wait_pct=%.1f wrk_cpu_pct=%.1f wrk_wait_pct=%.1f srv_req_per_cpu_s=%.0f",
      100 * (b[1] - a[1]) / dt, 100 * (b[2] - a[2]) / dt, 100 * c[1] / dt, 100 * c[2] / dt,
      (cpu > 0) ? req / cpu : 0
    if (d0 != "") { split(d0, x); split(d1, y); printf " side_cpu_pct=%.1f", 100 * (y[1] - x[1]) / dt } }')
  say "--- wrk output ($name, round ${tag##*.}) ---"
  grep -v '^RESULT ' "$out" | sed 's/^/  /'
  grep '^RESULT ' "$out" | sed "s/^RESULT /RESULT server=$name round=${tag##*.} /; s/\$/ $extra/" >"$TMP/result.$tag"
  [ -s "$TMP/result.$tag" ] || die "no RESULT line from wrk's done() hook for $name"
  say "  CPU: $extra"
  if [ -n "${SIDE_PIDS:-}" ] && [ "$BENCH_PIN_SERVICES" = 1 ]; then
    # PostgreSQL and Redis share the server's core: the server's wait says nothing about other load, wrk's does.
    awk -v b="$(field "$TMP/result.$tag" wrk_wait_pct)" 'BEGIN { exit !(b > 5) }' &&
      warn "$name round ${tag##*.}: wrk waited for a CPU > 5% of the run: other load on the machine, figures unreliable"
  else
    awk -v a="$(field "$TMP/result.$tag" srv_wait_pct)" -v b="$(field "$TMP/result.$tag" wrk_wait_pct)" 'BEGIN { exit !(a > 5 || b > 5) }' &&
      warn "$name round ${tag##*.}: server or wrk waited for a CPU > 5% of the run: other load on the machine, figures unreliable"
  fi
  return 0
}

field() { # field FILE KEY
  tr ' ' '\n' <"$1" | sed -n "s/^$2=//p" | head -n1
}

median() { # median < numbers, one per line
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) printf "%.1f\n", v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

results() { # results NAME all|quiet: that server's RESULT lines (quiet: srv and wrk wait <= 5 %)
  local f
  for f in "$TMP"/result."$1".*; do
    [ -e "$f" ] || continue
    if [ "$2" = quiet ]; then
      awk -v a="$(field "$f" srv_wait_pct)" -v b="$(field "$f" wrk_wait_pct)" 'BEGIN { exit !(a <= 5 && b <= 5) }' || continue
    fi
    cat "$f"
  done
}

vals() { # vals KEY < RESULT lines: the values of KEY, one per line
  tr ' ' '\n' | sed -n "s/^$1=//p"
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b; else print "nan" }'; }
ms() { awk -v v="$1" 'BEGIN { if (v == "nan") print "nan"; else printf "%.3f", v / 1000 }'; }

row() { # row LABEL RESULT_FILE
  local f=$2
  awk -v n="$1" -v rps="$(field "$f" rps)" -v p50="$(field "$f" lat_p50_us)" -v p99="$(field "$f" lat_p99_us)" \
      -v p999="$(field "$f" lat_p999_us)" -v mx="$(field "$f" lat_max_us)" \
      -v e="$(field "$f" err_status) $(field "$f" err_connect)/$(field "$f" err_read)/$(field "$f" err_write)/$(field "$f" err_timeout)" \
      -v sw="$(field "$f" srv_wait_pct)" -v ww="$(field "$f" wrk_wait_pct)" -v eff="$(field "$f" srv_req_per_cpu_s)" \
      'BEGIN { printf "%-12s %10.1f %8.3f %8.3f %8.3f %8.3f  %-10s %5.1f/%-5.1f %10.0f\n", n, rps, p50/1000, p99/1000, p999/1000, mx/1000, e, sw, ww, eff }'
}

health_round() { # health_round R: Staccato then nginx, each freshly started
  local r=$1 rc=0 tag=staccato.$1
  check_quiet
  start_staccato "$tag"
  check_health_response staccato "http://127.0.0.1:$STACCATO_PORT/health"
  run_wrk staccato "http://127.0.0.1:$STACCATO_PORT/health" "$tag" "$STACCATO_PID"
  staccato_alive "$tag" 0 || rc=1
  stop_pid "$STACCATO_PID"; forget_pid "$STACCATO_PID"

  check_quiet
  start_nginx
  check_health_response nginx "http://127.0.0.1:$NGINX_PORT/health"
  local worker
  worker=$(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null | awk '{ print $1 }')
  run_wrk nginx "http://127.0.0.1:$NGINX_PORT/health" "nginx.$r" "${worker:-$NGINX_PID}"
  stop_pid "$NGINX_PID" QUIT; forget_pid "$NGINX_PID"
  return $rc
}

bench_health() {
  local rc=0 r name f ratio
  say "== GET /health, keep-alive: wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION (after a $WRK_WARMUP warm-up), $PIN_NOTE, $BENCH_ROUNDS round(s) =="
  say "   staccato: $BIN"
  say "   nginx:    $(nginx -v 2>&1 | sed 's/^nginx version: //'), 1 worker, access_log off"
  for r in $(seq "$BENCH_ROUNDS"); do
    health_round "$r" || rc=1
  done

  say ""
  cat "$TMP"/result.staccato.* "$TMP"/result.nginx.*
  for r in $(seq "$BENCH_ROUNDS"); do
    ratio=$(awk -v a="$(field "$TMP/result.staccato.$r" rps)" -v b="$(field "$TMP/result.nginx.$r" rps)" \
      'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }')
    say "RESULT round=$r ratio_rps=$ratio"
  done
  say ""
  say "(errors: non-2xx responses, then socket errors connect/read/write/timeout; wait%: time the server/wrk"
  say " waited for a CPU, in % of the run: more than a few % means other load competed with the benchmark;"
  say " req/CPU-s: requests served per second of CPU time of the server process, which other load hardly changes)"
  printf '%-12s %10s %8s %8s %8s %8s  %-10s %-11s %10s\n' server 'req/s' 'p50 ms' 'p99 ms' 'p99.9 ms' 'max ms' errors 'wait% s/wrk' 'req/CPU-s'
  for name in staccato nginx; do
    for r in $(seq "$BENCH_ROUNDS"); do
      if [ "$BENCH_ROUNDS" -gt 1 ]; then row "$name#$r" "$TMP/result.$name.$r"; else row "$name" "$TMP/result.$name.$r"; fi
    done
  done
  # Medians over all rounds, and over the quiet rounds only (server and wrk waited for a CPU <= 5 %
  # of the run: nothing else competed), which are the figures to trust on a shared machine.
  local s_rps n_rps s_p99 n_p99 s_eff n_eff ratio eff_ratio qs qn q_s_rps q_n_rps q_s_p99 q_n_p99 q_ratio
  s_rps=$(results staccato all | vals rps | median);          n_rps=$(results nginx all | vals rps | median)
  s_p99=$(results staccato all | vals lat_p99_us | median);   n_p99=$(results nginx all | vals lat_p99_us | median)
  s_eff=$(results staccato all | vals srv_req_per_cpu_s | median)
  n_eff=$(results nginx all | vals srv_req_per_cpu_s | median)
  ratio=$(div "$s_rps" "$n_rps"); eff_ratio=$(div "$s_eff" "$n_eff")
  qs=$(results staccato quiet | wc -l); qn=$(results nginx quiet | wc -l)
  q_s_rps=$(results staccato quiet | vals rps | median);        q_n_rps=$(results nginx quiet | vals rps | median)
  q_s_p99=$(results staccato quiet | vals lat_p99_us | median); q_n_p99=$(results nginx quiet | vals lat_p99_us | median)
  q_ratio=$(div "$q_s_rps" "$q_n_rps")
  if [ "$BENCH_ROUNDS" -gt 1 ]; then
    say "median of all $BENCH_ROUNDS rounds: staccato $s_rps req/s (p99 $(ms "$s_p99") ms), nginx $n_rps req/s (p99 $(ms "$n_p99") ms)"
  fi
  say "ratio staccato/nginx (req/s): $ratio"
  say "ratio staccato/nginx (requests per server CPU-second): $eff_ratio ($s_eff vs $n_eff)"
  if [ "$qs" -gt 0 ] && [ "$qn" -gt 0 ]; then
    say "quiet rounds only (wait <= 5%; staccato $qs, nginx $qn): staccato $q_s_rps req/s (p99 $(ms "$q_s_p99") ms), nginx $q_n_rps req/s (p99 $(ms "$q_n_p99") ms), ratio $q_ratio"
  else
    warn "no quiet round for staccato ($qs) or nginx ($qn): every round competed with other load; req/s figures unreliable"
  fi
  say "RESULT rounds=$BENCH_ROUNDS staccato_rps=$s_rps nginx_rps=$n_rps staccato_p99_us=$s_p99 nginx_p99_us=$n_p99 ratio_rps=$ratio staccato_req_per_cpu_s=$s_eff nginx_req_per_cpu_s=$n_eff ratio_req_per_cpu_s=$eff_ratio"
  say "RESULT quiet_rounds_staccato=$qs quiet_rounds_nginx=$qn staccato_rps=$q_s_rps nginx_rps=$q_n_rps staccato_p99_us=$q_s_p99 nginx_p99_us=$q_n_p99 ratio_rps=$q_ratio"
  for name in staccato nginx; do
    for f in "$TMP"/result.$name.*; do
      if [ "$(field "$f" err_status)" != 0 ] || [ "$(field "$f" err_connect)" != 0 ] || [ "$(field "$f" err_read)" != 0 ] ||
         [ "$(field "$f" err_write)" != 0 ] || [ "$(field "$f" err_timeout)" != 0 ]; then
        warn "$name: wrk reported errors in $(basename "$f") (see the table above)"
        [ "$name" = staccato ] && rc=1
      fi
    done
  done
  return $rc
}

# raise_nofile N [best-effort]: this shell's RLIMIT_NOFILE to at least N (the server and clients inherit it). When
# the hard limit cannot be raised: fail, or with best-effort warn and raise the soft limit as far as it goes.
raise_nofile() {
  local want=$1 hard
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ] && ! ulimit -Hn "$want" 2>/dev/null; then
    [ "${2:-}" = best-effort ] || die "RLIMIT_NOFILE hard limit $hard < $want and cannot be raised (no CAP_SYS_RESOURCE?)"
    warn "RLIMIT_NOFILE hard limit $hard < $want and cannot be raised (no CAP_SYS_RESOURCE?): continuing with $hard"
    want=$hard
  fi
  if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$want" ]; then ulimit -Sn "$want"; fi
}

staccato_alive() { # staccato_alive TAG MARK: Staccato still runs and answers /health; its log's warn/error lines
                   # after line MARK (the start-up ones are expected) are shown
  local tag=$1 mark=${2:-0} ok=0
  if ! kill -0 "$STACCATO_PID" 2>/dev/null; then
    warn "Staccato died during the benchmark; last lines of its log:"; tail -n 20 "$TMP/staccato.$tag.log" >&2
    ok=1
  elif ! curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$STACCATO_PORT/health"; then
    warn "Staccato no longer answers /health after the benchmark"; ok=1
  else
    say "  staccato after the run: $(grep -E '^Vm(RSS|HWM)' "/proc/$STACCATO_PID/status" | tr -s ' \t' ' ' | paste -sd, -)"
  fi
  if tail -n +"$((mark + 1))" "$TMP/staccato.$tag.log" | grep -Eiq ' (warn|error) '; then
    warn "Staccato logged warnings/errors during the run (first 10):"
    tail -n +"$((mark + 1))" "$TMP/staccato.$tag.log" | grep -Ei ' (warn|error) ' | head -n 10 >&2
  fi
  return $ok
}

log_lines() { wc -l <"$TMP/staccato.$1.log"; }

# --- media benchmarks (ranges, tls, slow): PostgreSQL + Redis, one uploaded song --------------------------------
DB_ENV=(); SONG_ID=; SONG_FILE=; SONG_SIZE=

# Private PostgreSQL + Redis through deps/services.sh (throw-away data), pinned to the server's CPU so that the whole
# server side shares one core as nginx does (BENCH_PIN_SERVICES=1); migrated, with token keys. Once per run.
start_services() {
  [ -n "$SVC_DIR" ] && return 0
  # Outside $TMP: as root PostgreSQL runs as an unprivileged user, which must be able to reach its directory
  # (services.sh opens a directory of ours for traversal; a 0700 parent like $TMP would defeat that).
  SVC_DIR=$(mktemp -d /tmp/staccato-bench-svc.XXXXXX)
  local pin=()
  [ "$BENCH_PIN_SERVICES" = 1 ] && pin=("${SRV_PIN[@]}")
  say "  PostgreSQL + Redis: deps/services.sh start $SVC_DIR ($([ ${#pin[@]} -gt 0 ] && echo "pinned like the server" || echo "not pinned"); log $TMP/services.log)"
  if ! SERVICES_EPHEMERAL=1 "${pin[@]}" "$ROOT/deps/services.sh" start "$SVC_DIR" >"$TMP/services.log" 2>&1; then
    cat "$TMP/services.log" >&2; die "deps/services.sh start failed"
  fi
  mapfile -t DB_ENV < <("$ROOT/deps/services.sh" env "$SVC_DIR")
  [ "${#DB_ENV[@]}" -ge 2 ] || die "deps/services.sh env printed nothing"
  local k1 k2
  k1=$(python3 -c 'import secrets; print(secrets.token_hex(24))'); k2=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
  DB_ENV+=(ACCESS_TOKEN_KEY="$k1" REFRESH_TOKEN_KEY="$k2" STACCATO_MEDIA_DIR="$TMP/media")
  if ! (cd "$TMP" && env "${DB_ENV[@]}" "$BIN" migrate) >"$TMP/migrate.log" 2>&1; then
    cat "$TMP/migrate.log" >&2; die "staccato migrate failed"
  fi
}

side_pids() { # PostgreSQL (postmaster and its children) and Redis, for their CPU time during Staccato's runs
  local pg pm
  pg=$(readlink -f "$SVC_DIR/pg")
  pm=$(head -n1 "$pg/data/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pm" ]; then echo "$pm"; cat "/proc/$pm/task/$pm/children" 2>/dev/null || true; fi
  cat "$SVC_DIR/redis/redis.pid" 2>/dev/null || true
}

# The song: a valid 16-bit stereo 44.1 kHz WAV of MEDIA_MIB MiB of noise in $TMP/www (which nginx serves).
make_song_file() {
  [ -n "$SONG_FILE" ] && return 0
  SONG_FILE=$TMP/www/song.wav
  # nginx's worker drops root privileges (to "nobody"): let it reach $TMP/www (traverse $TMP, not list it).
  chmod 711 "$TMP"
  mkdir -p "$TMP/www"; chmod 755 "$TMP/www"
  python3 - "$SONG_FILE" "$MEDIA_MIB" <<'EOF'
import random, sys, wave
path, mib = sys.argv[1], int(sys.argv[2])
w = wave.open(path, "wb")
w.setnchannels(2); w.setsampwidth(2); w.setframerate(44100)
w.writeframes(random.Random(2026).randbytes(mib * 1024 * 1024))  # 4 bytes a frame: mib MiB of audio data
w.close()
EOF
  chmod 644 "$SONG_FILE"
  SONG_SIZE=$(stat -c %s "$SONG_FILE")
}

json_get() { # json_get EXPR < JSON: python expression on j
  python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"
}

wait_ready() { # until Staccato's /ready answers 200 (database reachable), max 10 s
  local i
  for i in $(seq 100); do
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$STACCATO_PORT/ready" 2>/dev/null && return 0
    sleep 0.1
  done
  die "Staccato's /ready did not answer 200 within 10 s (database not reachable?)"
}

# Once per run, with a Staccato started with DB_ENV: an artist account (staccato user create), a login, a public
# song, its audio uploaded with PUT /songs/{id}/audio; then the stream is checked byte for byte.
upload_song() {
  wait_ready
  [ -n "$SONG_ID" ] && return 0
  local base=http://127.0.0.1:$STACCATO_PORT out token pw=bench-password-1
  printf '%s\n' "$pw" | (cd "$TMP" && env "${DB_ENV[@]}" "$BIN" user create --username bench_artist \
      --fullname "Bench Artist" --role artist --password-stdin) >"$TMP/user.log" 2>&1 ||
    { cat "$TMP/user.log" >&2; die "staccato user create failed"; }
  out=$(curl -sS --max-time 10 -X POST "$base/authentications" -H 'Content-Type: application/json' \
    -d "{\"username\":\"bench_artist\",\"password\":\"$pw\"}")
  token=$(printf %s "$out" | json_get 'j["data"]["accessToken"]') || die "login failed: $out"
  out=$(curl -sS --max-time 10 -X POST "$base/songs" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"title":"Bench song","year":2026,"performer":"Bench","genre":"Pop"}')
  SONG_ID=$(printf %s "$out" | json_get 'j["data"]["songId"]') || die "POST /songs failed: $out"
  out=$(curl -sS --max-time 60 -X PUT -T "$SONG_FILE" -H "Authorization: Bearer $token" -H 'Content-Type: audio/wav' \
    "$base/songs/$SONG_ID/audio")
  printf %s "$out" | json_get 'j["data"]["audio"]["size"]' >/dev/null 2>&1 || die "PUT /songs/$SONG_ID/audio failed: $out"
  say "  uploaded $SONG_SIZE bytes as song $SONG_ID: $(printf %s "$out" | json_get 'j["data"]["audio"]')"
  curl -fsS --max-time 30 -o "$TMP/check.wav" "$base/songs/$SONG_ID/stream" || die "GET /songs/$SONG_ID/stream failed"
  cmp -s "$TMP/check.wav" "$SONG_FILE" || die "GET /songs/$SONG_ID/stream does not return the uploaded bytes"
}

# check_range NAME URL [CURL_OPTION...]: one random range has status 206, the right Content-Range and the bytes of
# the file there.
check_range() {
  local name=$1 url=$2 s e hdr=$TMP/range.$1.headers body=$TMP/range.$1.body st cr; shift 2
  s=$(python3 -c "import random; print(random.randrange($SONG_SIZE - $RANGES_BYTES + 1))"); e=$((s + RANGES_BYTES - 1))
  curl -sS --max-time 10 "$@" -H "Range: bytes=$s-$e" -D "$hdr" -o "$body" "$url" || die "$name: range request failed"
  st=$(head -n1 "$hdr" | tr -d '\r'); cr=$(grep -i '^content-range:' "$hdr" | sed 's/^[^:]*:[[:space:]]*//' | tr -d '\r')
  [ "$cr" = "bytes $s-$e/$SONG_SIZE" ] || die "$name: Range bytes=$s-$e answered '$st', Content-Range '$cr'"
  [ "$(stat -c %s "$body")" = "$RANGES_BYTES" ] && cmp -s -n "$RANGES_BYTES" -i "$s:0" "$SONG_FILE" "$body" ||
    die "$name: the bytes of range $s-$e differ from the file"
  say "  $name: $st, Content-Range: $cr, bytes match the file"
}

mb_s() { awk -v b="$(field "$1" bytes)" -v d="$(field "$1" duration_s)" 'BEGIN { printf "%.1f", (d > 0) ? b / d / 1e6 : 0 }'; }

# media_report BENCH LABEL MIN_BYTES: table, medians and ratio of result.BENCH-{staccato,nginx}.*; non-2xx answers
# (either server) and socket errors (Staccato's), or responses shorter on average than MIN_BYTES, fail.
media_report() {
  local b=$1 label=$2 min=$3 rc=0 name r f per s_rps n_rps s_mb n_mb ratio
  say ""
  say "$label"
  printf '%-12s %10s %9s %11s %8s %8s %8s  %-12s %5s %5s %-11s\n' server 'req/s' 'MB/s' 'bytes/resp' 'p50 ms' 'p99 ms' \
    'max ms' 'errors' 'cpu%' 'db%' 'wait% s/wrk'
  for name in staccato nginx; do
    for r in $(seq "$BENCH_ROUNDS"); do
      f=$TMP/result.$b-$name.$r
      [ -s "$f" ] || continue
      per=$(awk -v b="$(field "$f" bytes)" -v n="$(field "$f" requests)" 'BEGIN { printf "%.0f", (n > 0) ? b / n : 0 }')
      awk -v n="$name$([ "$BENCH_ROUNDS" -gt 1 ] && echo "#$r")" -v rps="$(field "$f" rps)" -v mb="$(mb_s "$f")" -v per="$per" \
          -v p50="$(field "$f" lat_p50_us)" -v p99="$(field "$f" lat_p99_us)" -v mx="$(field "$f" lat_max_us)" \
          -v e="$(field "$f" err_status) $(field "$f" err_connect)/$(field "$f" err_read)/$(field "$f" err_write)/$(field "$f" err_timeout)" \
          -v cpu="$(field "$f" srv_cpu_pct)" -v db="$(field "$f" side_cpu_pct)" \
          -v sw="$(field "$f" srv_wait_pct)" -v ww="$(field "$f" wrk_wait_pct)" \
          'BEGIN { printf "%-12s %10.1f %9.1f %11d %8.3f %8.3f %8.3f  %-12s %5.1f %5s %5.1f/%-5.1f\n", n, rps, mb, per,
                   p50/1000, p99/1000, mx/1000, e, cpu, (db == "") ? "-" : db, sw, ww }'
      if [ "$(field "$f" err_status)" != 0 ]; then
        warn "$b: wrk counted $(field "$f" err_status) non-2xx/3xx responses from $name (round $r)"; rc=1
      fi
      if [ "$(field "$f" err_connect)" != 0 ] || [ "$(field "$f" err_read)" != 0 ] ||
         [ "$(field "$f" err_write)" != 0 ] || [ "$(field "$f" err_timeout)" != 0 ]; then
        warn "$b: wrk reported socket errors against $name (round $r; see the table)"
        [ "$name" = staccato ] && rc=1
      fi
      if [ "$(field "$f" requests)" = 0 ]; then
        warn "$b: no request to $name completed within the run (WRK_DURATION too short?)"; rc=1
      elif [ "$min" -gt 0 ] && [ "$per" -lt "$min" ]; then
        warn "$b: $name's responses average $per bytes, fewer than the $min expected"; rc=1
      fi
    done
  done
  s_rps=$(cat "$TMP"/result."$b"-staccato.* | vals rps | median); n_rps=$(cat "$TMP"/result."$b"-nginx.* | vals rps | median)
  s_mb=$(for f in "$TMP"/result."$b"-staccato.*; do mb_s "$f"; echo; done | median)
  n_mb=$(for f in "$TMP"/result."$b"-nginx.*; do mb_s "$f"; echo; done | median)
  ratio=$(div "$s_rps" "$n_rps")
  say "(errors: non-2xx, then socket errors connect/read/write/timeout; cpu%: the server process (nginx: its worker);"
  say " db%: PostgreSQL + Redis during Staccato's runs ($([ "$BENCH_PIN_SERVICES" = 1 ] && echo "on the server's core, so Staccato's wait% includes waiting for them" || echo "not pinned")); wait%: time the server/wrk waited for a CPU)"
  say "ratio staccato/nginx$([ "$BENCH_ROUNDS" -gt 1 ] && echo " (medians of $BENCH_ROUNDS rounds)"): $ratio ($s_rps vs $n_rps req/s, $s_mb vs $n_mb MB/s)"
  say "RESULT bench=$b rounds=$BENCH_ROUNDS staccato_rps=$s_rps nginx_rps=$n_rps staccato_mb_s=$s_mb nginx_mb_s=$n_mb ratio_rps=$ratio"
  return $rc
}

bench_ranges() {
  local rc=0 r mark surl nurl
  say "== random $RANGES_BYTES-byte ranges of a $MEDIA_MIB MiB song, keep-alive: wrk -t$WRK_THREADS -c$RANGES_CONNS -d$WRK_DURATION (after a $WRK_WARMUP warm-up), $PIN_NOTE, $BENCH_ROUNDS round(s) =="
  raise_nofile $((2 * RANGES_CONNS + 1024))  # the server: a socket and an open media file per connection
  start_services; make_song_file
  start_staccato ranges "${DB_ENV[@]}"
  upload_song
  start_nginx "$TMP/www"
  say "   staccato: $BIN, GET /songs/$SONG_ID/stream"
  say "   nginx:    $(nginx -v 2>&1 | sed 's/^nginx version: //'), 1 worker, sendfile on, GET /media/song.wav"
  surl=http://127.0.0.1:$STACCATO_PORT/songs/$SONG_ID/stream; nurl=http://127.0.0.1:$NGINX_PORT/media/song.wav
  check_range staccato "$surl"; check_range nginx "$nurl"
  mark=$(log_lines ranges)
  for r in $(seq "$BENCH_ROUNDS"); do
    check_quiet
    SIDE_PIDS=$(side_pids | paste -sd' ' -) run_wrk staccato "$surl" "ranges-staccato.$r" "$STACCATO_PID" \
      -c"$RANGES_CONNS" --timeout 10s -s "$BENCH/ranges.lua" -- "$SONG_SIZE" "$RANGES_BYTES" "$r"
    check_quiet
    run_wrk nginx "$nurl" "ranges-nginx.$r" "$(nginx_worker)" \
      -c"$RANGES_CONNS" --timeout 10s -s "$BENCH/ranges.lua" -- "$SONG_SIZE" "$RANGES_BYTES" "$r"
  done
  staccato_alive ranges "$mark" || rc=1
  stop_pid "$STACCATO_PID"; forget_pid "$STACCATO_PID"
  stop_pid "$NGINX_PID" QUIT; forget_pid "$NGINX_PID"
  media_report ranges "random $RANGES_BYTES-byte ranges, $RANGES_CONNS connections:" "$RANGES_BYTES" || rc=1
  return $rc
}

# check_tls NAME PORT URL_PATH: protocol and cipher an OpenSSL client (as wrk) negotiates, /health over HTTPS with the
# certificate verified, and the bytes of a full download.
check_tls() {
  local name=$1 port=$2 path=$3 info body
  info=$(openssl s_client -brief -connect "127.0.0.1:$port" -CAfile "$TMP/tls/cert.pem" </dev/null 2>&1 |
    grep -E '^(Protocol version|Ciphersuite|Verification|Server Temp Key):' | sed 's/: /=/' | paste -sd, -)
  case $info in
    *"Protocol version=TLSv1.2"*"Ciphersuite=ECDHE-ECDSA-AES128-GCM-SHA256"*) ;;
    *) die "$name on TLS port $port: unexpected handshake ($info)" ;;
  esac
  body=$(curl -sS --max-time 5 --cacert "$TMP/tls/cert.pem" "https://127.0.0.1:$port/health") ||
    die "$name: GET /health over HTTPS failed"
  [ "$body" = "$HEALTH_BODY" ] || die "$name: /health over HTTPS answered $body"
  curl -fsS --max-time 60 --cacert "$TMP/tls/cert.pem" -o "$TMP/tls/$name.wav" "https://127.0.0.1:$port$path" ||
    die "$name: download over HTTPS failed"
  cmp -s "$TMP/tls/$name.wav" "$SONG_FILE" || die "$name: the bytes downloaded over HTTPS differ from the file"
  say "  $name: $info; /health ok; $path: $SONG_SIZE bytes, identical to the file"
}

# full_handshakes NAME PORT PID: TLS_FULL_CLIENTS openssl s_time -new clients at once (a full handshake and a
# GET /health each time); prints the handshakes per second and the server's CPU time per handshake in microseconds
# (utime + stime of PID, all its threads, over the run).
full_handshakes() {
  local name=$1 port=$2 pid=$3 i pids=() total=0 n t0 t1
  t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  for i in $(seq "$TLS_FULL_CLIENTS"); do
    "${CLI_PIN[@]}" openssl s_time -connect "127.0.0.1:$port" -new -time "$TLS_FULL_SECONDS" \
      -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -www /health >"$TMP/stime.$name.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || true; done
  t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
  for i in $(seq "$TLS_FULL_CLIENTS"); do
    n=$(sed -n 's/^\([0-9][0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$TMP/stime.$name.$i" | head -n1)
    [ -n "$n" ] || { warn "s_time against $name gave no count:"; tail -n 5 "$TMP/stime.$name.$i" >&2; n=0; }
    total=$((total + n))
  done
  awk -v n="$total" -v s="$TLS_FULL_SECONDS" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.1f %.0f\n", n / s, (n > 0 ? t * 1e6 / hz / n : 0) }'
}

bench_tls() {
  local rc=0 r mark tport spath nurl surl
  say "== HTTPS (TLS 1.2, ECDSA P-256, ECDHE-ECDSA-AES128-GCM-SHA256): /health -c$TLS_CONNS, new connection per request -c$TLS_CLOSE_CONNS, $MEDIA_MIB MiB download -c$TLS_DOWNLOAD_CONNS; wrk -t$WRK_THREADS -d$WRK_DURATION (after a $WRK_WARMUP warm-up), $PIN_NOTE, $BENCH_ROUNDS round(s) =="
  raise_nofile 4096
  start_services; make_song_file
  mkdir -p "$TMP/tls"; chmod 700 "$TMP/tls"  # nginx's master reads the key before it drops privileges
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" >"$TMP/tls/openssl.log" 2>&1 ||
    { cat "$TMP/tls/openssl.log" >&2; die "openssl req failed"; }
  tport=$(free_port)
  start_staccato tls "${DB_ENV[@]}" TLS_PORT="$tport" TLS_CERT="$TMP/tls/cert.pem" TLS_KEY="$TMP/tls/key.pem"
  upload_song
  spath=/songs/$SONG_ID/stream
  start_nginx "$TMP/www" "$TMP/tls/cert.pem" "$TMP/tls/key.pem"
  say "   staccato: $BIN, HTTPS on port $tport"
  say "   nginx:    $(nginx -v 2>&1 | sed 's/^nginx version: //'), 1 worker, sendfile on, HTTPS on port $NGINX_TLS_PORT"
  check_tls staccato "$tport" "$spath"; check_tls nginx "$NGINX_TLS_PORT" /media/song.wav
  surl=https://127.0.0.1:$tport; nurl=https://127.0.0.1:$NGINX_TLS_PORT
  mark=$(log_lines tls)
  for r in $(seq "$BENCH_ROUNDS"); do
    check_quiet
    SIDE_PIDS=$(side_pids | paste -sd' ' -) run_wrk staccato "$surl/health" "tlshealth-staccato.$r" "$STACCATO_PID" -c"$TLS_CONNS"
    check_quiet
    run_wrk nginx "$nurl/health" "tlshealth-nginx.$r" "$(nginx_worker)" -c"$TLS_CONNS"
    check_quiet
    SIDE_PIDS=$(side_pids | paste -sd' ' -) run_wrk staccato "$surl/health" "tlsclose-staccato.$r" "$STACCATO_PID" \
      -c"$TLS_CLOSE_CONNS" -H "Connection: close"
    check_quiet
    run_wrk nginx "$nurl/health" "tlsclose-nginx.$r" "$(nginx_worker)" -c"$TLS_CLOSE_CONNS" -H "Connection: close"
    check_quiet
    SIDE_PIDS=$(side_pids | paste -sd' ' -) run_wrk staccato "$surl$spath" "tlsdownload-staccato.$r" "$STACCATO_PID" \
      -c"$TLS_DOWNLOAD_CONNS" --timeout 30s
    check_quiet
    run_wrk nginx "$nurl/media/song.wav" "tlsdownload-nginx.$r" "$(nginx_worker)" -c"$TLS_DOWNLOAD_CONNS" --timeout 30s
  done
  # Full handshakes: wrk resumes sessions, so openssl s_time -new (a new session each time, TLS_FULL_CLIENTS
  # sequential clients at once on the client core) counts what a first visit costs.
  local hs_s=() hs_n=() cpu_s=() cpu_n=() st_s st_n hs_cpu
  for r in $(seq "$BENCH_ROUNDS"); do
    check_quiet; read -r st_s hs_cpu < <(full_handshakes staccato "$tport" "$STACCATO_PID")
    hs_s+=("$st_s"); cpu_s+=("$hs_cpu")
    check_quiet; read -r st_n hs_cpu < <(full_handshakes nginx "$NGINX_TLS_PORT" "$(nginx_worker)")
    hs_n+=("$st_n"); cpu_n+=("$hs_cpu")
  done
  st_s=$(printf '%s\n' "${hs_s[@]}" | median); st_n=$(printf '%s\n' "${hs_n[@]}" | median)
  local us_s us_n
  us_s=$(printf '%s\n' "${cpu_s[@]}" | median); us_n=$(printf '%s\n' "${cpu_n[@]}" | median)
  staccato_alive tls "$mark" || rc=1
  stop_pid "$STACCATO_PID"; forget_pid "$STACCATO_PID"
  stop_pid "$NGINX_PID" QUIT; forget_pid "$NGINX_PID"
  say ""
  say "HTTPS full handshakes (openssl s_time -new, $TLS_FULL_CLIENTS clients, ${TLS_FULL_SECONDS}s, median of $BENCH_ROUNDS): staccato $st_s/s (rounds ${hs_s[*]}), nginx $st_n/s (rounds ${hs_n[*]})"
  say "server CPU per full handshake: staccato $us_s us, nginx $us_n us (nginx's worker is not saturated when the clients' core is)"
  say "ratio staccato/nginx (handshakes/s): $(div "$st_s" "$st_n"), (handshakes per server CPU-second): $(div "$us_n" "$us_s")"
  say "RESULT bench=tlsfull staccato_hs=$st_s nginx_hs=$st_n staccato_cpu_us=$us_s nginx_cpu_us=$us_n"
  media_report tlshealth "HTTPS GET /health, keep-alive, $TLS_CONNS connections:" 0 || rc=1
  media_report tlsclose "HTTPS GET /health, a new connection per request (wrk resumes the TLS session), $TLS_CLOSE_CONNS connections:" 0 || rc=1
  media_report tlsdownload "HTTPS download of the whole $SONG_SIZE-byte song, $TLS_DOWNLOAD_CONNS connections:" "$SONG_SIZE" || rc=1
  return $rc
}

slow_field() { field "$TMP/result.slow" "$1"; }

bench_slow() {
  local rc=0 out=$TMP/slow.txt line rss_ok cpu_ok mark send_timeout
  say "== $SLOW_CONNS slow listeners at $SLOW_RATE_KIB KiB/s each streaming a $MEDIA_MIB MiB song from Staccato for ${SLOW_DURATION}s, $PIN_NOTE =="
  check_quiet
  # The server holds two descriptors per listener (the socket and the open media file); the client one. Where the
  # limit cannot be raised that far, the run goes on and shows what the server does when it runs out.
  raise_nofile $((2 * SLOW_CONNS + 1024)) best-effort
  say "  RLIMIT_NOFILE (server and client each): $(ulimit -Sn); the server needs about $((2 * SLOW_CONNS + 32)) for $SLOW_CONNS listeners"
  start_services; make_song_file
  cc -O2 -Wall -Wextra -Werror -o "$TMP/slow_listeners" "$BENCH/slow_listeners.c" 2>"$TMP/cc.log" ||
    { cat "$TMP/cc.log" >&2; die "compiling bench/slow_listeners.c failed"; }
  start_staccato slow "${DB_ENV[@]}" STACCATO_MAX_CONNECTIONS=$((SLOW_CONNS > 16320 ? SLOW_CONNS + 64 : 16384))
  upload_song
  send_timeout=${STACCATO_SEND_TIMEOUT_MS:-$("$BIN" --help | awk '/--send-timeout-ms/ { getline; print $NF }')}
  say "   staccato: $BIN, GET /songs/$SONG_ID/stream, STACCATO_SEND_TIMEOUT_MS=$send_timeout (time allowed without write progress)"
  mark=$(log_lines slow)
  "${CLI_PIN[@]}" "$TMP/slow_listeners" --port "$STACCATO_PORT" --path "/songs/$SONG_ID/stream" --conns "$SLOW_CONNS" \
    --rate-kib "$SLOW_RATE_KIB" --duration "$SLOW_DURATION" --rcvbuf "$SLOW_RCVBUF" --ramp-timeout 60 \
    --pid "$STACCATO_PID" 2>&1 |
    tee "$out" | sed 's/^/  /' || true
  staccato_alive slow "$mark" || rc=1
  stop_pid "$STACCATO_PID"; forget_pid "$STACCATO_PID"
  line=$(grep '^SLOW ' "$out" | tail -n1) || true
  [ -n "$line" ] || { warn "slow_listeners printed no SLOW line"; return 1; }
  printf '%s\n' "$line" >"$TMP/result.slow"
  rss_ok=$(awk -v r="$(slow_field rss_peak_kib)" -v l="$SLOW_RSS_LIMIT_MIB" 'BEGIN { print (r >= 0 && r < l * 1024) ? "PASS" : "FAIL" }')
  cpu_ok=$(awk -v c="$(slow_field cpu_frac)" -v l="$SLOW_CPU_LIMIT" 'BEGIN { print (c >= 0 && c < l) ? "PASS" : "FAIL" }')
  say ""
  say "slow listeners: $(slow_field conns) x $SLOW_RATE_KIB KiB/s for $(slow_field duration_s) s"
  say "  aggregate throughput: $(slow_field rx_mib_s) MiB/s of $(slow_field want_mib_s) MiB/s wanted ($(slow_field delivered_pct)%)"
  say "  bytes per listener (fairness): min $(slow_field per_conn_min), median $(slow_field per_conn_median), max $(slow_field per_conn_max) (wanted $(slow_field per_conn_want)); $(slow_field starved) received nothing"
  say "  connections: $(slow_field connected) connected at the end, $(slow_field failed) failed, $(slow_field closed_by_server) closed by the server, $(slow_field bad_status) non-2xx (status:count $(slow_field bad_statuses)), $(slow_field responses) responses completed"
  say "  server VmRSS: peak $(awk -v k="$(slow_field rss_peak_kib)" 'BEGIN { printf "%.1f", k / 1024 }') MiB (target < $SLOW_RSS_LIMIT_MIB MiB): $rss_ok; VmHWM $(awk -v k="$(slow_field hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
  say "  server CPU: $(slow_field cpu_frac) cores (target < $SLOW_CPU_LIMIT): $cpu_ok; the client used $(slow_field client_cpu_frac) cores"
  say "RESULT bench=slow $(sed 's/^SLOW //' "$TMP/result.slow") rss_result=$rss_ok cpu_result=$cpu_ok"
  [ "$rss_ok" = PASS ] && [ "$cpu_ok" = PASS ] || rc=1
  if [ "$(slow_field closed_by_server)" != 0 ] || [ "$(slow_field bad_status)" != 0 ] || [ "$(slow_field failed)" != 0 ]; then
    warn "slow: $(slow_field failed) connections failed, $(slow_field closed_by_server) were closed by the server, $(slow_field bad_status) got non-2xx"; rc=1
  fi
  if [ "$(slow_field connected)" != "$SLOW_CONNS" ]; then warn "slow: only $(slow_field connected) of $SLOW_CONNS listeners connected at the end"; rc=1; fi
  awk -v p="$(slow_field delivered_pct)" 'BEGIN { exit !(p < 95) }' &&
    warn "slow: the listeners received only $(slow_field delivered_pct)% of the bytes they asked for: the server did not keep up"
  return $rc
}

bench_idle() {
  local rc=0
  say "== $IDLE_CONNS idle keep-alive connections to Staccato, $PIN_NOTE =="
  check_quiet
  # The server needs one fd per connection too: raise this shell's limit, which it inherits.
  raise_nofile $((IDLE_CONNS + 1024))
  # Keep-alive timeout raised so that nothing is closed while connections are being opened/held.
  start_staccato idle STACCATO_MAX_CONNECTIONS=$((IDLE_CONNS > 16383 ? IDLE_CONNS + 16 : 16384)) \
    STACCATO_KEEPALIVE_TIMEOUT_MS=300000
  "${CLI_PIN[@]}" python3 "$BENCH/idle_conns.py" --host 127.0.0.1 --port "$STACCATO_PORT" \
    --pid "$STACCATO_PID" --conns "$IDLE_CONNS" --rss-limit-mib "$IDLE_RSS_LIMIT_MIB" || rc=$?
  if ! kill -0 "$STACCATO_PID" 2>/dev/null; then
    warn "Staccato died during the idle test; last lines of its log:"; tail -n 20 "$TMP/staccato.idle.log" >&2
    rc=1
  fi
  stop_pid "$STACCATO_PID"; forget_pid "$STACCATO_PID"
  return $rc
}

status=0
case $MODE in
  health) bench_health || status=1 ;;
  idle) bench_idle || status=1 ;;
  ranges) bench_ranges || status=1 ;;
  tls) bench_tls || status=1 ;;
  slow) bench_slow || status=1 ;;
  all)
    bench_health || status=1; say ""; bench_idle || status=1; say ""
    bench_ranges || status=1; say ""; bench_tls || status=1; say ""; bench_slow || status=1
    ;;
esac
exit $status
