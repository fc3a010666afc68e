#!/usr/bin/env bash
# Installs the Debian 12 packages Staccato builds, runs, tests and benchmarks with, and the npm packages of the
# API documentation pages and of the tests.
#
#   deps/install.sh [build|runtime|docs|test|all]     (default all)
#
#   build    compiler, CMake and the -dev packages
#   runtime  the shared libraries and tools the server runs with (the Docker image's runtime stage)
#   docs     the assets of GET /docs and GET /redoc: the npm packages swagger-ui-dist and redoc, unpacked into
#            $STACCATO_DOCS_ASSETS (default deps/web/node_modules, the server's default when it runs from the
#            checkout, as deps/dev.sh does)
#   test     build, the services, the test tools (Chromium, clang-format...), docs, and tests/web/node_modules
#            (@redocly/cli, playwright-core, at the versions of tests/web/package-lock.json)
#   all      test, and the benchmark tools (what deps/dev.sh run installs; on a Node.js too old for the test
#            tools it goes on without them)
#
# Idempotent: does nothing when everything is already present. Works as root or through sudo (apt-get); the npm
# packages are installed as the calling user, into the checkout. npm comes from Debian's package npm when the
# machine has none.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)

BUILD_PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev node-llhttp libpq-dev libhiredis-dev libmbedtls-dev libcurl4-openssl-dev
  libjansson-dev libargon2-dev nettle-dev libgmp-dev)
# What the server needs to run (the Docker image installs only these) ...
RUNTIME_PKGS=(libuv1 libpq5 libhiredis0.14 libmbedcrypto7 libmbedtls14 libmbedx509-1 libcurl4 libjansson4
  libargon2-1 libnettle8 libhogweed6 libgmp10 ca-certificates curl ffmpeg)
# ... and the services and tools the run and test commands start beside it.
SERVICE_PKGS=(postgresql postgresql-contrib redis-server openssl ca-certificates ffmpeg)
# chromium (and a font to render with): the browser tests/integration/test_docs.py drives through playwright-core.
TEST_PKGS=(python3 python3-aiosmtpd curl procps strace clang-format-14 chromium fonts-liberation)
BENCH_PKGS=(wrk nginx-light)

# The npm packages whose prebuilt bundles the documentation pages load (src/api/docs.c lists the files it serves):
# name, version, and the SHA-512 of the registry's tarball, checked before it is unpacked. They are fetched with
# `npm pack`, without their dependencies, which the bundles do not need. Redoc stays on 2.x (its last line with
# bundles/redoc.standalone.js).
DOCS_NPM=(
  "swagger-ui-dist 5.36.0 2edebf29bd205e62dd89a6cb86fb28e157493fd57ba89581d33874833797515dfe08c393ccc9afa494525cdec40237f08b1c26a22f5ecc36cb1e27b10bb940f4"
  "redoc 2.5.4 33a8d6846d6aa019c7e93166cc99ecb72099f3b1e6398fd4cc39bbf261e262284476557f61c4bda203a8d4d94496724c78bb32c4715edb215ce2c3631d3ac005"
)
DOCS_DIR=${STACCATO_DOCS_ASSETS:-$ROOT/deps/web/node_modules}
# The test tools' npm project (versions pinned in its package.json and package-lock.json).
TEST_NPM_DIR=$ROOT/tests/web
# @redocly/cli 2 runs on Node.js 20.19 or newer.
NODE_MIN=20.19

docs=0
test_npm=0
mode=${1:-all}
case "$mode" in
  build) want=("${BUILD_PKGS[@]}") ;;
  runtime) want=("${RUNTIME_PKGS[@]}") ;;
  docs) want=(ca-certificates); docs=1 ;;
  test) want=("${BUILD_PKGS[@]}" "${SERVICE_PKGS[@]}" "${TEST_PKGS[@]}"); docs=1; test_npm=1 ;;
  all) want=("${BUILD_PKGS[@]}" "${SERVICE_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}"); docs=1; test_npm=1 ;;
  *) echo "usage: deps/install.sh [build|runtime|docs|test|all]" >&2; exit 2 ;;
esac

note() { echo "deps/install.sh: $*" >&2; }

missing=()
for p in ${want[@]+"${want[@]}"}; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm from Debian only when there is none (a Node.js from elsewhere, such as NodeSource's, brings its own).
if [ $docs = 1 ] || [ $test_npm = 1 ]; then
  command -v npm >/dev/null || missing+=(npm)
fi

apt_install() {
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { note "need root or sudo to install: ${missing[*]}"; exit 1; }
    SUDO=sudo
  fi
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Keep the distribution's own postgresql/redis services from starting: we run private instances.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Unpacks each package of DOCS_NPM into DOCS_DIR/<name> unless the same tarball is there already (its SHA-512 is
# kept beside it). The files get the time of unpacking, not the tarball's fixed one, since the server's ETags and
# the pages' asset versions come from the size and modification time.
install_docs() {
  local tmp entry name version sha got
  tmp=$(mktemp -d)
  for entry in "${DOCS_NPM[@]}"; do
    read -r name version sha <<<"$entry"
    if [ "$(cat "$DOCS_DIR/$name/.tarball-sha512" 2>/dev/null)" = "$sha" ]; then
      continue
    fi
    note "fetching $name@$version into $DOCS_DIR"
    (cd "$tmp" && npm pack --loglevel=error --ignore-scripts "$name@$version" >/dev/null)
    got=$(sha512sum "$tmp/$name-$version.tgz" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      note "$name-$version.tgz has SHA-512 $got, expected $sha"
      rm -rf "$tmp"
      exit 1
    fi
    mkdir -p "$DOCS_DIR"
    rm -rf "$DOCS_DIR/.$name.new"
    mkdir "$DOCS_DIR/.$name.new"
    tar -xzf "$tmp/$name-$version.tgz" -C "$DOCS_DIR/.$name.new" --strip-components=1 --no-same-owner -m
    echo "$sha" >"$DOCS_DIR/.$name.new/.tarball-sha512"
    rm -rf "$DOCS_DIR/$name"
    mv "$DOCS_DIR/.$name.new" "$DOCS_DIR/$name"
  done
  rm -rf "$tmp"
}

# npm ci of the test tools, unless node_modules was installed from the same package-lock.json.
install_test_npm() {
  local lock stamp=$TEST_NPM_DIR/node_modules/.installed-lock-sha256
  if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number), [x, y] = process.argv[1].split(".").map(Number);
                process.exit(a > x || (a === x && b >= y) ? 0 : 1)' "$NODE_MIN"; then
    note "the test tools (@redocly/cli) need Node.js $NODE_MIN or newer; this is $(node --version)"
    # all (deps/dev.sh run) goes on without them: the server does not need them, only tests/run.sh does.
    [ "$mode" = all ] && return
    exit 1
  fi
  lock=$(sha256sum "$TEST_NPM_DIR/package-lock.json" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$lock" ] && return
  note "installing the test tools into $TEST_NPM_DIR/node_modules"
  # No install scripts: none of these packages needs one, and no browser is downloaded (Debian's Chromium is used).
  (cd "$TEST_NPM_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --loglevel=error --ignore-scripts --no-audit --no-fund)
  echo "$lock" >"$stamp"
}

[ ${#missing[@]} -eq 0 ] || apt_install
[ $docs = 0 ] || install_docs
[ $test_npm = 0 ] || install_test_npm
