#!/usr/bin/env bash
# Runs Staccato locally: the one command in the README.
#
#   deps/dev.sh run      install the packages, build (Release, into build-release/), start PostgreSQL and Redis under
#                        .state/, apply the migrations, then serve (PORT, default 5000) and HTTPS (TLS_PORT, default
#                        5443) with a self-signed development certificate made in .state/tls/ on the first run
#   deps/dev.sh stop     stop PostgreSQL and Redis (their data stays in .state/)
#   deps/dev.sh env      print the environment the server runs with (sourceable: set -a; . <(deps/dev.sh env))
#   deps/dev.sh status   whether PostgreSQL and Redis run
#
# The services get ports 5433 (PostgreSQL) and 6380 (Redis) the first time, or free ones when those are taken, and
# keep them afterwards (deps/services.sh remembers them in .state/ports). The HTTPS port is 5443 the first time, or
# a free one when that is taken, kept in .state/tls/port. Any variable already set in the environment (PORT,
# STACCATO_*, TLS_PORT, TLS_CERT, TLS_KEY) is passed through to the server unchanged; TLS_PORT=0 turns HTTPS off.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
STATE=$ROOT/.state
SERVICES=$ROOT/deps/services.sh
DEFAULT_PG_PORT=5433
DEFAULT_REDIS_PORT=6380
DEFAULT_TLS_PORT=5443
TLS_DIR=$STATE/tls

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

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A self-signed development certificate (ECDSA P-256, CN=localhost, SAN localhost and 127.0.0.1), made once and
# kept in .state/tls/; clients accept it with curl -k (or curl --cacert .state/tls/cert.pem).
dev_certificate() {
  if [ -s "$TLS_DIR/cert.pem" ] && [ -s "$TLS_DIR/key.pem" ]; then
    return
  fi
  command -v openssl >/dev/null || { note "openssl is needed for the development certificate"; exit 1; }
  mkdir -p "$TLS_DIR"
  rm -f "$TLS_DIR/cert.pem.new" "$TLS_DIR/key.pem.new"
  (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TLS_DIR/key.pem.new" -out "$TLS_DIR/cert.pem.new" \
    2>/dev/null) || { note "openssl could not make the development certificate"; exit 1; }
  chmod 644 "$TLS_DIR/cert.pem.new"
  mv "$TLS_DIR/key.pem.new" "$TLS_DIR/key.pem"
  mv "$TLS_DIR/cert.pem.new" "$TLS_DIR/cert.pem"
  note "made a self-signed development certificate in $TLS_DIR (CN=localhost; curl -k, or --cacert $TLS_DIR/cert.pem)"
}

# The HTTPS port: the one kept from an earlier run, else 5443; a free one when that is taken (then kept).
choose_tls_port() {
  local port=$DEFAULT_TLS_PORT
  [ -s "$TLS_DIR/port" ] && port=$(cat "$TLS_DIR/port")
  if ! port_free "$port"; then
    local taken=$port
    port=$(free_port)
    note "port $taken is taken, HTTPS gets $port"
  fi
  mkdir -p "$TLS_DIR"
  echo "$port" >"$TLS_DIR/port"
}

print_env() {
  "$SERVICES" env "$STATE"
  [ -n "${ACCESS_TOKEN_KEY:-}" ] || token_keys
  echo "PORT=${PORT:-5000}"
  echo "STACCATO_MEDIA_DIR=${STACCATO_MEDIA_DIR:-$STATE/media}"
  echo "STACCATO_DOCS_ASSETS=${STACCATO_DOCS_ASSETS:-$ROOT/deps/web/node_modules}"
  # HTTPS with the development certificate, unless configured otherwise (or off: TLS_PORT=0).
  if [ -n "${TLS_PORT:-}" ]; then
    echo "TLS_PORT=$TLS_PORT"
  elif [ -s "$TLS_DIR/port" ]; then
    echo "TLS_PORT=$(cat "$TLS_DIR/port")"
  fi
  if [ "${TLS_PORT:-}" != 0 ] && [ -s "$TLS_DIR/cert.pem" ]; then
    [ -n "${TLS_CERT:-}" ] || [ -n "${TLS_KEY:-}" ] || printf 'TLS_CERT=%s\nTLS_KEY=%s\n' "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem"
  fi
}

case ${1:-} in
  run)
    "$ROOT/deps/install.sh" all
    cd "$ROOT"
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
    cmake --build build-release -j"$(nproc)"
    start_services
    if [ "${TLS_PORT:-}" != 0 ]; then
      [ -n "${TLS_CERT:-}" ] || [ -n "${TLS_KEY:-}" ] || dev_certificate
      [ -n "${TLS_PORT:-}" ] || choose_tls_port
    fi
    # Read line by line rather than eval'd, so that a checkout path with spaces survives.
    while IFS='=' read -r key value; do export "$key=$value"; done < <(print_env)
    mkdir -p "$STACCATO_MEDIA_DIR"
    build-release/staccato migrate
    https=
    [ "${TLS_PORT:-0}" = 0 ] || https=" and HTTPS port $TLS_PORT"
    note "serving on port $PORT$https (DATABASE_URL=$DATABASE_URL, REDIS_URL=$REDIS_URL); deps/dev.sh stop stops the services"
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
