#!/usr/bin/env bash
# Installs the Debian 12 packages Staccato builds, runs, tests and benchmarks with.
# Idempotent: does nothing when every package is already present. Works as root or through sudo.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev node-llhttp libpq-dev libhiredis-dev libmbedtls-dev libcurl4-openssl-dev
  libjansson-dev libargon2-dev nettle-dev libgmp-dev)
# What the server needs to run (the Docker image installs only these) ...
RUNTIME_PKGS=(libuv1 libpq5 libhiredis0.14 libmbedcrypto7 libmbedtls14 libmbedx509-1 libcurl4 libjansson4
  libargon2-1 libnettle8 libhogweed6 libgmp10 ca-certificates curl ffmpeg)
# ... and the services and tools the run and test commands start beside it.
SERVICE_PKGS=(postgresql postgresql-contrib redis-server openssl ca-certificates ffmpeg)
TEST_PKGS=(python3 python3-aiosmtpd curl procps strace clang-format-14)
BENCH_PKGS=(wrk nginx-light)

case "${1:-all}" in
  build) want=("${BUILD_PKGS[@]}") ;;
  runtime) want=("${RUNTIME_PKGS[@]}") ;;
  test) want=("${BUILD_PKGS[@]}" "${SERVICE_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  all) want=("${BUILD_PKGS[@]}" "${SERVICE_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: deps/install.sh [build|runtime|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps/install.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "deps/install.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Keep the distribution's own postgresql/redis services from starting: we run private instances.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
