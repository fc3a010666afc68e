#!/usr/bin/env bash
# Runs every test: the source checks (tests/checksrc.sh), unit and integration tests on a normal build, a lint of
# the OpenAPI document (redocly), a short fuzzing pass over each libFuzzer target, and the whole ctest suite again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
# Installs what it needs (deps/install.sh) and starts its own throw-away services on free ports.
#   tests/run.sh            everything
#   FUZZ_SECONDS=0 tests/run.sh   skip the fuzzing pass
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

deps/install.sh test

step() { printf '\n=== %s\n' "$*"; }
# Configures and builds quietly; shows the whole log when it fails.
build() {
  local dir=$1; shift
  if ! { cmake -S . -B "$dir" "$@" && cmake --build "$dir" -j"$JOBS"; } >"$dir.log" 2>&1; then
    cat "$dir.log"; echo "build in $dir failed" >&2; exit 1
  fi
}

step "source checks"
tests/checksrc.sh

if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz targets (${FUZZ_SECONDS}s each)"
  build build-fuzz -DFUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo
  for fuzzer in build-fuzz/tests/fuzz_*; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer")
    corpus=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$name/." "$corpus/" 2>/dev/null || true
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    echo "fuzzing $name"
    log="build-fuzz/$name.log"
    if ! "$fuzzer" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -print_final_stats=1 "${dict[@]}" \
      -artifact_prefix="build-fuzz/$name-" "$corpus" >"$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzzer $name failed (inputs saved as build-fuzz/$name-*)"
      exit 1
    fi
    grep -E 'stat::number_of_executed_units' "$log" || true
    rm -rf "$corpus"
  done
fi

# Throw-away PostgreSQL and Redis on free ports for the whole run, removed afterwards.
SERVICES_DIR=$(mktemp -d /tmp/staccato-test.XXXXXX)
cleanup() { deps/services.sh stop "$SERVICES_DIR" >/dev/null 2>&1 || true; rm -rf "$SERVICES_DIR"; }
trap cleanup EXIT
step "services"
SERVICES_EPHEMERAL=1 deps/services.sh start "$SERVICES_DIR"
set -a
eval "$(deps/services.sh env "$SERVICES_DIR")"
set +a
export SC_SERVICES_DIR="$SERVICES_DIR"

# The optimiser sees more (truncation, maybe-uninitialised): the Release build, which benchmarks and the container
# use, must be as clean as the others.
step "build (Release, warnings only)"
build build-release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF

step "build (Debug)"
build build -DCMAKE_BUILD_TYPE=Debug
build/staccato migrate

# The OpenAPI document the binary serves at /openapi.json, linted with the rules of redocly.yaml; an error fails
# the run. No telemetry or update check (the machine may have no way out).
step "OpenAPI document (redocly lint)"
build/staccato openapi >build/openapi.json
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  tests/web/node_modules/.bin/redocly lint --config redocly.yaml build/openapi.json

step "test (Debug)"
ctest --test-dir build --output-on-failure -j"$JOBS"

step "build and test under AddressSanitizer + UndefinedBehaviorSanitizer"
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=address,undefined
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"
