#!/usr/bin/env bash
# Build and run the standalone C++ tests (tests/cpp), optionally under a sanitizer.
#   bash scripts/cpp_tests.sh            # build/cpp-tests, optimised with debug info
#   bash scripts/cpp_tests.sh address    # build/asan, AddressSanitizer + LeakSanitizer
#   bash scripts/cpp_tests.sh thread     # build/tsan, ThreadSanitizer
# Uses the venv's python and torch (run scripts/setup_env.sh first). Only our code is instrumented:
# libtorch comes prebuilt, so tests/cpp/sanitizers/*.supp filter reports that lie entirely inside it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYSF_VENV:-$ROOT/.venv}
SANITIZER=${1:-}

case "$SANITIZER" in
  "") BUILD_DIR=$ROOT/build/cpp-tests ;;
  address) BUILD_DIR=$ROOT/build/asan ;;
  thread) BUILD_DIR=$ROOT/build/tsan ;;
  *) echo "usage: $0 [address|thread]" >&2; exit 2 ;;
esac

log() { echo "[pysf cpp-tests${SANITIZER:+ ($SANITIZER)}] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "no venv at $VENV: run scripts/setup_env.sh first" >&2
  exit 1
fi
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=pch_defines,time_macros

start=$(date +%s)
log "configuring $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython_EXECUTABLE="$VENV/bin/python" \
  -DPYSF_BUILD_PYTHON=OFF \
  -DPYSF_BUILD_CPP_TESTS=ON \
  -DPYSF_SANITIZER="$SANITIZER" >/dev/null
log "building (also scripts the fixtures with $VENV/bin/python)"
cmake --build "$BUILD_DIR"
log "build ready in $(( $(date +%s) - start )) s; running the tests"
ctest --test-dir "$BUILD_DIR" --output-on-failure
