#!/usr/bin/env bash
# Create or reuse the project's venv, install the pinned dependencies and (re)build the extension.
# Idempotent and incremental: the CMake build dir persists under build/; ccache (pinned in requirements-dev.txt,
# so installed into the venv: no system package needed) caches compilations across build dirs and fresh clones.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PYSF_VENV:-$ROOT/.venv}
PYTHON_BIN=${PYSF_PYTHON:-python3}

log() { echo "[pysf setup] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  "$PYTHON_BIN" -m venv "$VENV"
fi

# Reinstall dependencies only when the pinned list changed.
stamp="$VENV/.pysf-requirements.sha256"
want=$(sha256sum "$ROOT/requirements-dev.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  log "installing pinned dependencies (requirements-dev.txt)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt" 2>&1 \
    | { grep -v "is ignored" || true; } >&2
  echo "$want" > "$stamp"
fi
source "$ROOT/scripts/build_env.sh"

# The build dir also defines the C++ tests (built only by scripts/cpp_tests.sh), so that they reuse its native libraries.
log "building the extension (incremental)"
start=$(date +%s)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps \
  --config-settings=cmake.define.PYSF_BUILD_CPP_TESTS=ON -e "$ROOT" 2>&1 \
  | { grep -v "is ignored" || true; } >&2
log "build ready in $(( $(date +%s) - start )) s"
