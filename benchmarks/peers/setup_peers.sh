#!/usr/bin/env bash
# Create (or reuse) one venv per peer, outside the source tree, installed from the package registry.
# torch==2.13.0 goes in first so that no peer can pull another torch build.
#   Sample Factory:     sample-factory==2.1.1 with gymnasium==0.29.1, numpy==1.26.4, and for benchmarks/suites.py
#                       ale-py==0.9.0 (the last for gymnasium 0.29; ships the ROMs) and mujoco==3.1.6 (HalfCheetah-v4)
#   Stable-Baselines3:  stable-baselines3==2.9.2 with gymnasium 1.x
# Usage: setup_peers.sh [sf|sb3 ...]   (default: both). A failing peer is reported and skipped.
# The venvs live under $PYSF_PEERS_DIR (default ~/.cache/pysf/peers); each records a stamp when complete.
set -uo pipefail
PEERS_DIR=${PYSF_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pysf/peers}
PYTHON_BIN=${PYSF_PYTHON:-python3}
TORCH_PIN="torch==2.13.0"
log() { echo "[pysf peers] $*" >&2; }
# pip, without the noise of this machine's local index ("Location ... is ignored"); keeps pip's status.
pip_install() {
  local venv=$1; shift
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored" || true; } >&2
  return "${PIPESTATUS[0]}"
}

declare -A PACKAGES=(
  [sf]="sample-factory==2.1.1 gymnasium==0.29.1 numpy==1.26.4 ale-py==0.9.0 mujoco==3.1.6 imageio opencv-python-headless"
  [sb3]="stable-baselines3==2.9.2 gymnasium>=1.0,<2 numpy"
)

setup_one() {
  local name=$1 venv="$PEERS_DIR/$1" packages=${PACKAGES[$1]}
  local want; want=$(echo "$TORCH_PIN $packages" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$venv/.pysf-peer.sha256" 2>/dev/null)" = "$want" ]; then
    log "$name: ready ($venv)"; return 0
  fi
  log "$name: creating $venv"
  rm -rf "$venv" && "$PYTHON_BIN" -m venv "$venv" || return 1
  log "$name: installing $TORCH_PIN"
  pip_install "$venv" "$TORCH_PIN" || return 1
  log "$name: installing $packages"
  # shellcheck disable=SC2086
  pip_install "$venv" "$TORCH_PIN" $packages || return 1
  "$venv/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__" || return 1
  echo "$want" > "$venv/.pysf-peer.sha256"
  log "$name: ready ($venv)"
}

mkdir -p "$PEERS_DIR"
status=0
for peer in "${@:-sf sb3}"; do
  for name in $peer; do
    if [ -z "${PACKAGES[$name]+x}" ]; then log "unknown peer '$name' (known: ${!PACKAGES[*]})"; status=2; continue; fi
    setup_one "$name" || { log "$name: installation FAILED; the benchmark will report it as not installed"; status=1; }
  done
done
exit $status
