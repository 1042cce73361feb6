#!/usr/bin/env bash
# Build and run the standalone C++ tests (tests/cpp), optionally under a sanitizer.
#   bash scripts/cpp_tests.sh            # in the extension's own build dir (build/cpp-tests links to it)
#   bash scripts/cpp_tests.sh address    # build/asan, AddressSanitizer + LeakSanitizer
#   bash scripts/cpp_tests.sh thread     # build/tsan, ThreadSanitizer
# Uses the venv's python and torch (run scripts/setup_env.sh first). The plain tests link the native libraries that
# scripts/setup_env.sh compiled for the extension (Release), so only the test files themselves are compiled.
# Only our code is instrumented under a sanitizer: libtorch comes prebuilt, so tests/cpp/sanitizers/*.supp
# filter reports that lie entirely inside it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYSF_VENV:-$ROOT/.venv}
SANITIZER=${1:-}

log() { echo "[pysf cpp-tests${SANITIZER:+ ($SANITIZER)}] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "no venv at $VENV: run scripts/setup_env.sh first" >&2
  exit 1
fi
source "$ROOT/scripts/build_env.sh"

start=$(date +%s)
case "$SANITIZER" in
  "")
    # pyproject.toml's build-dir, "build/{wheel_tag}"; on Linux scikit-build-core's tag is the interpreter's
    # first tag that is not a manylinux/musllinux one.
    tag=$("$VENV/bin/python" -c 'from packaging.tags import sys_tags
t = next(t for t in sys_tags() if "manylinux" not in t.platform and "musllinux" not in t.platform)
print(f"{t.interpreter}-{t.abi}-{t.platform}")')
    BUILD_DIR=$ROOT/build/$tag
    if ! grep -qs "^PYSF_BUILD_CPP_TESTS:BOOL=ON" "$BUILD_DIR/CMakeCache.txt"; then
      echo "the extension's build dir $BUILD_DIR does not define the C++ tests: run scripts/setup_env.sh first" >&2
      exit 1
    fi
    # A stable name for running one suite by hand: build/cpp-tests/pysf_cpp_tests test_policy
    if [ -d "$ROOT/build/cpp-tests" ] && [ ! -L "$ROOT/build/cpp-tests" ]; then
      rm -rf "$ROOT/build/cpp-tests"  # the separate build dir of earlier versions
    fi
    ln -sfn "$tag" "$ROOT/build/cpp-tests"
    ;;
  address|thread)
    if [ "$SANITIZER" = address ]; then BUILD_DIR=$ROOT/build/asan; else BUILD_DIR=$ROOT/build/tsan; fi
    args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$VENV/bin/python" -DPYSF_BUILD_PYTHON=OFF
          -DPYSF_BUILD_CPP_TESTS=ON -DPYSF_SANITIZER="$SANITIZER")
    # Configured once per set of arguments: later, ninja re-runs CMake itself when CMakeLists.txt changes.
    stamp="$BUILD_DIR/.pysf-configure-args"
    if [ ! -f "$BUILD_DIR/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "${args[*]}" ]; then
      log "configuring $BUILD_DIR"
      cmake -S "$ROOT" -B "$BUILD_DIR" "${args[@]}" >/dev/null
      echo "${args[*]}" > "$stamp"
    fi
    ;;
  *) echo "usage: $0 [address|thread]" >&2; exit 2 ;;
esac

log "building the tests in $BUILD_DIR (also scripts the fixtures with $VENV/bin/python)"
cmake --build "$BUILD_DIR" --target pysf_cpp_tests
log "build ready in $(( $(date +%s) - start )) s; running the tests"
ctest --test-dir "$BUILD_DIR" --output-on-failure --parallel "$(nproc)"
