#!/usr/bin/env bash
# Private PostgreSQL and Redis instances for development and tests, kept under one state directory so that several
# can run side by side (a dev server beside a test run) without touching the system's own services.
#
#   deps/services.sh start STATE_DIR [PG_PORT REDIS_PORT]   create on first use, start both (no-op when running)
#   deps/services.sh stop STATE_DIR                          stop both (data is kept)
#   deps/services.sh env STATE_DIR                           print DATABASE_URL=... and REDIS_URL=..., one per line
#   deps/services.sh status STATE_DIR                        report both (exit 0 when both run, else 3)
#   deps/services.sh start-pg|stop-pg|restart-pg STATE_DIR   the database alone (tests kill it under load)
#   deps/services.sh start-redis|stop-redis|restart-redis STATE_DIR
#   deps/services.sh psql STATE_DIR [PSQL_ARGS...]           psql connected as the application role
#
# Environment:
#   SERVICES_EPHEMERAL=1     throw-away data (tests): initdb --no-sync, fsync/full_page_writes/synchronous_commit off
#   SERVICES_PG_STOP_MODE    smart|fast|immediate for stop-pg/restart-pg (default fast, immediate = simulated crash)
#
# Layout of STATE_DIR: ports (PG_PORT=, REDIS_PORT=), pg/ (data/, run/ socket directory, postgres.log; a symlink
# to /var/tmp when the unprivileged user cannot reach STATE_DIR), redis/ (redis.pid, redis.log).
#
# PostgreSQL refuses to run as root: as root, the server runs as the system user "staccato" (created when missing)
# which owns STATE_DIR/pg. It listens on 127.0.0.1 only with trust authentication, which is fine for a private
# development instance and nothing else. Database "staccato" is owned by the role "staccato" (LOGIN CREATEDB, not
# a superuser); the bootstrap superuser is "postgres".
set -euo pipefail

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && PG_BIN=$d; done
fi
APP_ROLE=staccato
APP_DB=staccato
SUPERUSER=postgres
# sun_path is 108 bytes including the NUL, and PostgreSQL appends "/.s.PGSQL.NNNNN".
SOCKET_DIR_MAX=90

die() { echo "services.sh: $*" >&2; exit 1; }
note() { echo "services.sh: $*" >&2; }

# The comment block at the top of this file is the help text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# ---- helpers ---------------------------------------------------------------------------------------------------

# The user that runs PostgreSQL: ourselves, or an unprivileged one when we are root.
pg_user() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if ! id staccato >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin staccato \
      >/dev/null 2>&1 || true
  fi
  if id staccato >/dev/null 2>&1; then echo staccato
  elif id postgres >/dev/null 2>&1; then echo postgres
  else die "running as root and neither user 'staccato' nor 'postgres' exists (useradd failed)"; fi
}

# Runs a command as the PostgreSQL user, from / so that an unreadable working directory does not matter. The lock
# descriptor is closed so that a server started from here does not inherit (and hold) the lock forever.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && exec runuser -u "$PGUSER_NAME" -- "$@") 9>&-
  else
    (cd / && exec "$@") 9>&-
  fi
}

# The system interpreter when there is one: a version manager's shim (pyenv) costs a noticeable start-up delay.
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3

# Prints N free TCP ports on 127.0.0.1 (all held open together, so they differ).
free_ports() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Whether PORT can be bound on 127.0.0.1 now (SO_REUSEADDR, as the servers themselves use: a TIME_WAIT leftover does
# not count as taken, a listener does).
port_free() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

valid_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

load_ports() {
  PG_PORT='' REDIS_PORT=''
  if [ -f "$STATE/ports" ]; then
    PG_PORT=$(sed -n 's/^PG_PORT=\([0-9]*\)$/\1/p' "$STATE/ports")
    REDIS_PORT=$(sed -n 's/^REDIS_PORT=\([0-9]*\)$/\1/p' "$STATE/ports")
  fi
}

save_ports() {
  printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$PG_PORT" "$REDIS_PORT" >"$STATE/ports.tmp"
  mv -f "$STATE/ports.tmp" "$STATE/ports"
}

# Serialises commands on one state directory (parallel test runs may share one).
lock_state() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock 9
}

# Whether PID is a live process (a zombie left for an init that reaps lazily does not count).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 0
  [ "$st" != Z ]
}

pg_running() {
  [ -f "$PGDATA/postmaster.pid" ] || return 1
  local pid
  pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"
}

redis_pid() {
  local pid
  [ -f "$STATE/redis/redis.pid" ] || return 1
  pid=$(cat "$STATE/redis/redis.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  echo "$pid"
}

redis_running() { redis_pid >/dev/null; }

# Resolves STATE_DIR and the paths derived from it.
set_paths() {
  [ -n "${1:-}" ] || { usage >&2; exit 2; }
  case $cmd in
    start|start-pg|start-redis) mkdir -p "$1" ;;
    stop|stop-pg|stop-redis) [ -d "$1" ] || exit 0 ;;  # nothing to stop: fine for a test's cleanup
    *) [ -d "$1" ] || die "no state directory $1 (run: $0 start $1)" ;;
  esac
  STATE=$(cd "$1" && pwd -P)
  resolve_pg_root
}

# The PostgreSQL user may be unable to walk STATE_DIR (see ensure_pg_root), so pg paths are used resolved.
resolve_pg_root() {
  PGROOT=$STATE/pg
  if [ -L "$PGROOT" ] && [ -d "$PGROOT" ]; then PGROOT=$(readlink -f "$PGROOT"); fi
  PGDATA=$PGROOT/data
}

# ---- PostgreSQL ------------------------------------------------------------------------------------------------

# Creates STATE_DIR/pg owned by the PostgreSQL user. When that user cannot reach STATE_DIR (a root-only parent such
# as /root, or a 0700 mktemp directory), the state directory is opened for traversal (o+x, not listing) if it is
# ours, and failing that the PostgreSQL files live in /var/tmp behind a symlink.
ensure_pg_root() {
  PGROOT=$STATE/pg
  if [ -L "$PGROOT" ] && [ ! -d "$PGROOT" ]; then
    note "PostgreSQL files behind $PGROOT are gone ($(readlink "$PGROOT")): creating a new cluster"
    rm -f "$PGROOT"
  fi
  if [ ! -e "$PGROOT" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      if ! as_pg test -x "$STATE" && [ -O "$STATE" ]; then chmod o+x "$STATE"; fi
      if as_pg test -x "$STATE"; then
        mkdir "$PGROOT"
      else
        local real
        real=$(mktemp -d /var/tmp/staccato-pg.XXXXXX)
        ln -s "$real" "$PGROOT"
        note "$PGUSER_NAME cannot reach $STATE: PostgreSQL files are in $real"
      fi
      chown "$PGUSER_NAME:" "$(readlink -f "$PGROOT")"
    else
      mkdir "$PGROOT"
    fi
  fi
  resolve_pg_root
  as_pg test -w "$PGROOT" || die "$PGROOT is not writable by $PGUSER_NAME"
}

pg_init() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  local tmp=$PGROOT/data.init sync=()
  [ "${SERVICES_EPHEMERAL:-0}" = 1 ] && sync=(--no-sync)
  rm -rf "$tmp"
  note "initdb $PGDATA"
  # Into a temporary directory first, so that an interrupted initdb leaves nothing that looks like a cluster.
  if ! as_pg "$PG_BIN/initdb" -D "$tmp" -U "$SUPERUSER" --encoding=UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=trust "${sync[@]}" >"$PGROOT/initdb.log" 2>&1; then
    cat "$PGROOT/initdb.log" >&2
    die "initdb failed"
  fi
  # Trust on the local socket and on 127.0.0.1 only (initdb's default also lets in ::1).
  as_pg tee "$tmp/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  trust
host    all          all   127.0.0.1/32   trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
EOF
  # The settings that change between starts (port, socket directory, durability) go in an included file that
  # every start rewrites.
  as_pg tee -a "$tmp/postgresql.conf" >/dev/null <<'EOF'

# listen_addresses, port, unix_socket_directories and durability: written by deps/services.sh at each start.
include_if_exists = 'staccato.conf'
EOF
  as_pg mv "$tmp" "$PGDATA"
}

# Where the socket goes: STATE_DIR/pg/run, unless that path is too long for a Unix socket. Then a short directory
# in /tmp is used and STATE_DIR/pg/run is a symlink to it (recreated if /tmp was cleaned).
pg_socket_dir() {
  local run=$PGROOT/run real
  if [ ! -L "$run" ]; then
    if [ "${#run}" -le "$SOCKET_DIR_MAX" ]; then
      as_pg mkdir -p "$run"
      echo "$run"; return
    fi
    real=$(readlink -f "$PGROOT")/run
    if [ "${#real}" -le "$SOCKET_DIR_MAX" ]; then
      as_pg mkdir -p "$real"
      echo "$real"; return
    fi
  fi
  real=$(readlink "$run" 2>/dev/null || true)
  if [ -z "$real" ] || [ ! -d "$real" ] || [ "$(stat -c %U "$real")" != "$PGUSER_NAME" ]; then
    rm -rf "$run"
    real=$(as_pg mktemp -d /tmp/staccato-pg.XXXXXX)
    as_pg chmod 755 "$real"
    as_pg ln -s "$real" "$run"
  fi
  echo "$real"
}

# Single quotes doubled, as postgresql.conf wants them.
conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

pg_write_runtime_conf() {
  local sockdir=$1 durable
  if [ "${SERVICES_EPHEMERAL:-0}" = 1 ]; then
    durable="fsync = off
synchronous_commit = off
full_page_writes = off"
  else
    durable="fsync = on"
  fi
  as_pg tee "$PGDATA/staccato.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = $(conf_quote "$sockdir")
$durable
EOF
}

psql_admin() {
  PGCONNECT_TIMEOUT=5 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$SUPERUSER" -d postgres "$@"
}

# The application role and database; idempotent, so a first start that was interrupted is completed later.
pg_ensure_app_db() {
  local have
  have=$(psql_admin -At -c "SELECT count(*) FROM pg_roles WHERE rolname = '$APP_ROLE'")
  [ "$have" = 1 ] || psql_admin -c "CREATE ROLE $APP_ROLE LOGIN CREATEDB"
  have=$(psql_admin -At -c "SELECT count(*) FROM pg_database WHERE datname = '$APP_DB'")
  [ "$have" = 1 ] || psql_admin -c "CREATE DATABASE $APP_DB OWNER $APP_ROLE ENCODING 'UTF8' TEMPLATE template0"
}

# After a crash (kill -9 in tests) the old postmaster may linger as a zombie until init reaps it, and PostgreSQL
# refuses to start while the PID in its lock file still exists. Wait for the reaping rather than delete the lock
# file, which also tells the new postmaster whether orphaned backends still hold shared memory.
pg_wait_stale_pid() {
  local pid i
  pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

start_pg() {
  ensure_pg_root
  pg_init
  if pg_running; then return 0; fi
  pg_wait_stale_pid
  local sockdir
  sockdir=$(pg_socket_dir)
  pg_write_runtime_conf "$sockdir"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/postgres.log" -w -t 60 -s start >/dev/null; then
    tail -n 20 "$PGROOT/postgres.log" >&2 || true
    die "PostgreSQL did not start (log: $PGROOT/postgres.log)"
  fi
  pg_ensure_app_db
  note "PostgreSQL on 127.0.0.1:$PG_PORT (socket directory $sockdir)"
}

stop_pg() {
  [ -f "$PGDATA/PG_VERSION" ] || return 0
  pg_running || return 0
  local mode=${SERVICES_PG_STOP_MODE:-fast}
  case $mode in smart|fast|immediate) ;; *) die "SERVICES_PG_STOP_MODE must be smart, fast or immediate" ;; esac
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m "$mode" -w -t 60 -s stop
}

# ---- Redis -----------------------------------------------------------------------------------------------------

start_redis() {
  if redis_running; then return 0; fi
  mkdir -p "$STATE/redis"
  rm -f "$STATE/redis/redis.pid"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STATE/redis" --save '' --appendonly no \
    --daemonize yes --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" 9>&- >/dev/null
  local i
  for ((i = 0; i < 200; i++)); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && redis_running; then
      note "Redis on 127.0.0.1:$REDIS_PORT"
      return 0
    fi
    sleep 0.05
  done
  tail -n 20 "$STATE/redis/redis.log" >&2 || true
  die "Redis did not answer PING on port $REDIS_PORT (log: $STATE/redis/redis.log)"
}

stop_redis() {
  local pid i
  pid=$(redis_pid) || { rm -f "$STATE/redis/redis.pid"; return 0; }
  if [ -z "${REDIS_PORT:-}" ] || ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || { rm -f "$STATE/redis/redis.pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$STATE/redis/redis.pid"
}

# ---- ports -----------------------------------------------------------------------------------------------------

# Settles PG_PORT and REDIS_PORT: given on the command line, else remembered, else free ones. A remembered port
# that something else has taken meanwhile is replaced (the URLs from "env" change accordingly); a port given
# explicitly is used as is.
choose_ports() {
  local want_pg=${1:-} want_redis=${2:-} pick_pg=0 pick_redis=0 picked
  load_ports
  if [ -n "$want_pg" ]; then
    if pg_running && [ -n "$PG_PORT" ] && [ "$PG_PORT" != "$want_pg" ]; then
      die "PostgreSQL already runs on port $PG_PORT in $STATE (stop it first to change ports)"
    fi
    PG_PORT=$want_pg
  elif [ -z "$PG_PORT" ] || { ! pg_running && ! port_free "$PG_PORT"; }; then
    [ -n "$PG_PORT" ] && note "port $PG_PORT is taken, picking another one for PostgreSQL"
    pick_pg=1
  fi
  if [ -n "$want_redis" ]; then
    if redis_running && [ -n "$REDIS_PORT" ] && [ "$REDIS_PORT" != "$want_redis" ]; then
      die "Redis already runs on port $REDIS_PORT in $STATE (stop it first to change ports)"
    fi
    REDIS_PORT=$want_redis
  elif [ -z "$REDIS_PORT" ] || { ! redis_running && ! port_free "$REDIS_PORT"; }; then
    [ -n "$REDIS_PORT" ] && note "port $REDIS_PORT is taken, picking another one for Redis"
    pick_redis=1
  fi
  # Picked together (held open at once) so that the two never get the same port, nor one already in use here.
  if [ $pick_pg = 1 ] || [ $pick_redis = 1 ]; then
    for picked in $(free_ports 3); do
      if [ $pick_pg = 1 ] && [ "$picked" != "$REDIS_PORT" ]; then PG_PORT=$picked; pick_pg=0
      elif [ $pick_redis = 1 ] && [ "$picked" != "$PG_PORT" ]; then REDIS_PORT=$picked; pick_redis=0; fi
    done
  fi
  [ "$PG_PORT" != "$REDIS_PORT" ] || die "PostgreSQL and Redis cannot share port $PG_PORT"
  save_ports
}

need_ports() {
  load_ports
  if [ -z "$PG_PORT" ] || [ -z "$REDIS_PORT" ]; then die "no services in $STATE yet (run: $0 start $STATE)"; fi
}

# ---- commands --------------------------------------------------------------------------------------------------

cmd=${1:-}
case $cmd in
  -h|--help|help|"") usage; [ -n "$cmd" ]; exit ;;
esac
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
  die "PostgreSQL server binaries not found (run deps/install.sh runtime)"
fi
command -v redis-server >/dev/null || die "redis-server not found (run deps/install.sh runtime)"

case $cmd in
  start|stop|env|status|psql|start-pg|stop-pg|restart-pg|start-redis|stop-redis|restart-redis) ;;
  *) usage >&2; exit 2 ;;
esac
set_paths "${2:-}"
# Only the commands that run PostgreSQL programs need (and may create) the unprivileged user.
case $cmd in env|status|psql) PGUSER_NAME=$(id -un) ;; *) PGUSER_NAME=$(pg_user) ;; esac

case $cmd in
  start)
    [ $# -eq 2 ] || [ $# -eq 4 ] || die "usage: $0 start STATE_DIR [PG_PORT REDIS_PORT]"
    if [ $# -eq 4 ] && ! { valid_port "$3" && valid_port "$4"; }; then die "ports must be numbers from 1 to 65535"; fi
    lock_state
    choose_ports "${3:-}" "${4:-}"
    start_pg
    start_redis
    ;;
  stop)
    lock_state; load_ports
    stop_redis
    stop_pg
    ;;
  start-pg)
    lock_state; choose_ports "" ""; start_pg ;;
  stop-pg)
    lock_state; stop_pg ;;
  restart-pg)
    lock_state; need_ports; stop_pg; start_pg ;;
  start-redis)
    lock_state; choose_ports "" ""; start_redis ;;
  stop-redis)
    lock_state; load_ports; stop_redis ;;
  restart-redis)
    lock_state; need_ports; stop_redis; start_redis ;;
  env)
    need_ports
    echo "DATABASE_URL=postgresql://$APP_ROLE@127.0.0.1:$PG_PORT/$APP_DB"
    echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
    ;;
  status)
    load_ports
    rc=0
    if pg_running && "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; then
      echo "postgresql: running on 127.0.0.1:$PG_PORT (pid $(head -n1 "$PGDATA/postmaster.pid"), data $PGDATA)"
    elif pg_running; then
      echo "postgresql: starting or not accepting connections on 127.0.0.1:$PG_PORT"; rc=3
    else
      echo "postgresql: stopped${PG_PORT:+ (port $PG_PORT)}"; rc=3
    fi
    if pid=$(redis_pid) && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
      echo "redis: running on 127.0.0.1:$REDIS_PORT (pid $pid)"
    else
      echo "redis: stopped${REDIS_PORT:+ (port $REDIS_PORT)}"; rc=3
    fi
    exit $rc
    ;;
  psql)
    need_ports
    shift 2
    exec psql "postgresql://$APP_ROLE@127.0.0.1:$PG_PORT/$APP_DB" "$@"
    ;;
  *)
    usage >&2; exit 2 ;;
esac
