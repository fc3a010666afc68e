#!/usr/bin/env bash
# Runs Staccato locally: the one command in the README.
#
#   deps/dev.sh run      install the packages, build (Release, into build-release/), start PostgreSQL and Redis under
#                        .state/, apply the migrations, then serve (PORT, default 5000)
#   deps/dev.sh stop     stop PostgreSQL and Redis (their data stays in .state/)
#   deps/dev.sh env      print the environment the server runs with (sourceable: set -a; . <(deps/dev.sh env))
#   deps/dev.sh status   whether PostgreSQL and Redis run
#
# The services get ports 5433 (PostgreSQL) and 6380 (Redis) the first time, or free ones when those are taken, and
# keep them afterwards (deps/services.sh remembers them in .state/ports). Any variable already set in the
# environment (PORT, STACCATO_*) is passed through to the server unchanged.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
STATE=$ROOT/.state
SERVICES=$ROOT/deps/services.sh
DEFAULT_PG_PORT=5433
DEFAULT_REDIS_PORT=6380

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
note() { echo "dev.sh: $*" >&2; }

PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3

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

start_services() {
  if [ -f "$STATE/ports" ]; then
    # Remembered ports (services.sh replaces one that something else has taken meanwhile).
    "$SERVICES" start "$STATE"
    return
  fi
  local pg=$DEFAULT_PG_PORT redis=$DEFAULT_REDIS_PORT
  port_free "$pg" || { note "port $pg is taken, PostgreSQL gets a free one"; pg=; }
  port_free "$redis" || { note "port $redis is taken, Redis gets a free one"; redis=; }
  if [ -n "$pg" ] && [ -n "$redis" ]; then
    "$SERVICES" start "$STATE" "$pg" "$redis"
  else
    # services.sh takes both ports or neither: remember the free default first, then let it pick the other.
    mkdir -p "$STATE"
    printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$pg" "$redis" >"$STATE/ports"
    "$SERVICES" start "$STATE"
  fi
}

# Token keys are made once and kept in the state directory, so sessions survive a restart of the server.
token_keys() {
  if [ ! -f "$STATE/keys" ]; then
    mkdir -p "$STATE"
    (umask 077; printf 'ACCESS_TOKEN_KEY=%s\nREFRESH_TOKEN_KEY=%s\n' \
      "$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" "$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" \
      >"$STATE/keys")
  fi
  cat "$STATE/keys"
}

print_env() {
  "$SERVICES" env "$STATE"
  [ -n "${ACCESS_TOKEN_KEY:-}" ] || token_keys
  echo "PORT=${PORT:-5000}"
  echo "STACCATO_MEDIA_DIR=${STACCATO_MEDIA_DIR:-$STATE/media}"
}

case ${1:-} in
  run)
    "$ROOT/deps/install.sh" all
    cd "$ROOT"
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
    cmake --build build-release -j"$(nproc)"
    start_services
    # Read line by line rather than eval'd, so that a checkout path with spaces survives.
    while IFS='=' read -r key value; do export "$key=$value"; done < <(print_env)
    mkdir -p "$STACCATO_MEDIA_DIR"
    build-release/staccato migrate
    note "serving on port $PORT (DATABASE_URL=$DATABASE_URL, REDIS_URL=$REDIS_URL); deps/dev.sh stop stops the services"
    exec build-release/staccato serve
    ;;
  stop)
    if [ -d "$STATE" ]; then "$SERVICES" stop "$STATE"; fi
    ;;
  env)
    [ -f "$STATE/ports" ] || { note "no services yet (deps/dev.sh run starts them)"; exit 1; }
    print_env
    ;;
  status)
    [ -d "$STATE" ] || { echo "no services yet (deps/dev.sh run starts them)"; exit 3; }
    exec "$SERVICES" status "$STATE"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
