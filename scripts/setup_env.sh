#!/usr/bin/env bash
# Create or reuse the project's venv, install the pinned dependencies and (re)build the extension.
# Idempotent and incremental: the CMake build dir persists under build/, ccache is used when present.
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

# ccache makes a fresh clone's build (CI) reuse earlier compilations; best effort only.
if ! command -v ccache >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
   && [ -z "${PYSF_NO_CCACHE_INSTALL:-}" ]; then
  log "installing ccache (optional)"
  { timeout 180 apt-get install -y -q ccache >/dev/null 2>&1 \
    || { timeout 180 apt-get update -q >/dev/null 2>&1 && timeout 180 apt-get install -y -q ccache >/dev/null 2>&1; } \
    || log "ccache not available; building without it"; } || true
fi
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 CCACHE_SLOPPINESS=pch_defines,time_macros

log "building the extension (incremental)"
start=$(date +%s)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e "$ROOT" 2>&1 \
  | { grep -v "is ignored" || true; } >&2
log "build ready in $(( $(date +%s) - start )) s"
