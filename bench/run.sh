#!/usr/bin/env bash
# Staccato benchmarks (loopback only, bounded durations).
#
#   bench/run.sh [health]   GET /health keep-alive throughput: Staccato vs nginx (one run, same wrk params)
#   bench/run.sh idle       10,000 idle keep-alive connections: Staccato RSS (target < 64 MiB)
#   bench/run.sh all        both
#
# Environment:
#   STACCATO_BIN      use this binary instead of building build-bench/ (Release) from this repo
#   WRK_THREADS=1 WRK_CONNS=64 WRK_DURATION=10s WRK_WARMUP=2s
#   BENCH_ROUNDS=1    health: rounds of (Staccato, then nginx); medians are reported when > 1
#   IDLE_CONNS=10000 IDLE_RSS_LIMIT_MIB=64
#   BENCH_WAIT_QUIET=0  before each run, wait up to this many seconds for the CPUs to be >= 90% idle
#   BENCH_KEEP_TMP=1  keep the temp dir (server logs, nginx config, wrk output)
#
# Needs: wrk, nginx (nginx-light), curl, python3, taskset (deps/install.sh all).
# Only 127.0.0.1 is used. The system nginx configuration is never read: nginx gets a private
# config and prefix directory inside a temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

MODE=${1:-health}
case $MODE in
  health|idle|all) ;;
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

# Exactly what Staccato's GET /health answers (see the spec); nginx serves the same bytes.
HEALTH_BODY='{"status":"success","data":{"status":"ok"}}'
HEALTH_CT='application/json; charset=utf-8'

say() { printf '%s\n' "$*"; }
warn() { printf 'bench: warning: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "missing '$1' (run deps/install.sh all)"; }
need curl; need python3
case $MODE in health|all) need wrk; need nginx ;; esac

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

cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
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
  # Run from the temp dir so that no .env file of the caller's cwd is picked up.
  (cd "$TMP" && exec env STACCATO_ACCESS_LOG=off HOST=127.0.0.1 PORT="$port" STACCATO_WORKERS=1 \
      "$@" "${SRV_PIN[@]}" "$BIN" serve) >"$TMP/staccato.$tag.out" 2>"$log" &
  STACCATO_PID=$!; STACCATO_PORT=$port; PIDS+=("$STACCATO_PID")
  wait_http "http://127.0.0.1:$port/health" "$STACCATO_PID" "$log" || die "Staccato did not start"
}

NGINX_PID=; NGINX_PORT=
start_nginx() {
  local port; port=$(free_port)
  local dir=$TMP/nginx
  mkdir -p "$dir/logs"
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
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /health {
            default_type "$HEALTH_CT";
            return 200 '$HEALTH_BODY';
        }
        location / {
            return 404;
        }
    }
}
EOF
  "${SRV_PIN[@]}" nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
    >"$dir/logs/stdout.log" 2>&1 &
  NGINX_PID=$!; NGINX_PORT=$port; PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$port/health" "$NGINX_PID" "$dir/logs/error.log" || die "nginx did not start"
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

sched() { # sched PID: "on-cpu-ns runqueue-wait-ns timeslices", summed over the threads' /proc schedstat
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ a += $1; b += $2; c += $3 } END { printf "%.0f %.0f %.0f\n", a, b, c }'
}

# run_wrk NAME URL TAG SERVER_PID: warm-up then measured run; leaves
# "RESULT server=NAME round=R ... srv_cpu_pct= srv_wait_pct= wrk_cpu_pct= wrk_wait_pct=" in $TMP/result.TAG.
# *_wait_pct: time the process was runnable but waiting for a CPU, in % of the run (from schedstat):
# more than a few % means something else competed for the cores during the run.
run_wrk() {
  local name=$1 url=$2 tag=$3 spid=$4 out=$TMP/wrk.$3.txt s0 s1 w w1="0 0 0" t0 t1 wpid extra
  "${CLI_PIN[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_WARMUP" "$url" >"$TMP/wrk.$tag.warmup.txt" 2>&1 ||
    { cat "$TMP/wrk.$tag.warmup.txt" >&2; die "wrk warm-up against $name failed"; }
  s0=$(sched "$spid"); t0=$(date +%s%N)
  "${CLI_PIN[@]}" wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" -s "$BENCH/report.lua" "$url" >"$out" 2>&1 &
  wpid=$!
  while kill -0 "$wpid" 2>/dev/null; do
    w=$(sched "$wpid"); [ "$w" = "0 0 0" ] || w1=$w
    sleep 0.2
  done
  wait "$wpid" || { cat "$out" >&2; die "wrk against $name failed"; }
  s1=$(sched "$spid"); t1=$(date +%s%N)
  extra=$(awk -v s0="$s0" -v s1="$s1" -v w="$w1" -v dt="$((t1 - t0))" \
      -v req="$(sed -n 's/^RESULT .*requests=\([0-9]*\).*/\1/p' "$out")" 'BEGIN {
    split(s0, a); split(s1, b); split(w, c); cpu = (b[1] - a[1]) / 1e9
    printf "srv_cpu_pct=%.1f srv_wait_pct=%.1f wrk_cpu_pct=%.1f wrk_wait_pct=%.1f srv_req_per_cpu_s=%.0f",
      100 * (b[1] - a[1]) / dt, 100 * (b[2] - a[2]) / dt, 100 * c[1] / dt, 100 * c[2] / dt,
      (cpu > 0) ? req / cpu : 0 }')
  say "--- wrk output ($name, round ${tag##*.}) ---"
  grep -v '^RESULT ' "$out" | sed 's/^/  /'
  grep '^RESULT ' "$out" | sed "s/^RESULT /RESULT server=$name round=${tag##*.} /; s/\$/ $extra/" >"$TMP/result.$tag"
  [ -s "$TMP/result.$tag" ] || die "no RESULT line from wrk's done() hook for $name"
  say "  CPU: $extra"
  awk -v a="$(field "$TMP/result.$tag" srv_wait_pct)" -v b="$(field "$TMP/result.$tag" wrk_wait_pct)" 'BEGIN { exit !(a > 5 || b > 5) }' &&
    warn "$name round ${tag##*.}: server or wrk waited for a CPU > 5% of the run: other load on the machine, figures unreliable"
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
  if ! kill -0 "$STACCATO_PID" 2>/dev/null; then
    warn "Staccato died during the benchmark; last lines of its log:"; tail -n 20 "$TMP/staccato.$tag.log" >&2
    rc=1
  elif ! curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$STACCATO_PORT/health"; then
    warn "Staccato no longer answers /health after the benchmark"; rc=1
  else
    say "  staccato after the run: $(grep -E '^Vm(RSS|HWM)' "/proc/$STACCATO_PID/status" | tr -s ' \t' ' ' | paste -sd, -)"
  fi
  if grep -Eiq ' (warn|error) ' "$TMP/staccato.$tag.log"; then
    warn "Staccato logged warnings/errors during the run (first 10):"
    grep -Ei ' (warn|error) ' "$TMP/staccato.$tag.log" | head -n 10 >&2
  fi
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

bench_idle() {
  local want=$((IDLE_CONNS + 1024)) hard rc=0
  say "== $IDLE_CONNS idle keep-alive connections to Staccato, $PIN_NOTE =="
  check_quiet
  # The server needs one fd per connection too: raise this shell's limit, which it inherits.
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || die "RLIMIT_NOFILE hard limit $hard < $want and cannot be raised (not root?)"
  fi
  [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$want" ] && ulimit -Sn "$want"
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
  all) bench_health || status=1; say ""; bench_idle || status=1 ;;
esac
exit $status
