"""Checkpoint files: Sample Factory's names and dict layout, written atomically, read defensively.

``checkpoint_p{policy}/checkpoint_{train_step:09d}_{env_steps}.pth`` (the newest ``keep_checkpoints`` are
kept) and ``best_{train_step:09d}_{env_steps}_{metric}_{value:.3f}.pth`` (only the newest best is kept).
A file is written to a temporary name in the same folder and renamed, so a crash never leaves a partial
checkpoint under a real name; a corrupt or truncated file is reported and the previous one is used.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from typing import Any, Dict, List, Optional

import torch

log = logging.getLogger(__name__)

_STEP_PATTERN = re.compile(r"(?:checkpoint|best)_(\d+)_(\d+)")


def checkpoint_dir(experiment_dir: str, policy_id: int = 0) -> str:
    """``<experiment>/checkpoint_p<policy_id>``."""
    return os.path.join(experiment_dir, f"checkpoint_p{policy_id}")


def _sorted_by_step(paths: List[str]) -> List[str]:
    def key(path: str):
        match = _STEP_PATTERN.search(os.path.basename(path))
        return (int(match.group(1)), int(match.group(2))) if match else (-1, -1)

    return sorted(paths, key=key)


def milestones_dir(checkpoints_directory: str) -> str:
    """Where ``--save_milestones_sec`` checkpoints go (kept forever): ``checkpoint_p<i>/milestones``."""
    return os.path.join(checkpoints_directory, "milestones")


def checkpoints(directory: str, kind: str = "latest") -> List[str]:
    """Checkpoint files in ``directory``, oldest first (``kind``: latest -> regular, best -> best_*)."""
    pattern = "best_*.pth" if kind == "best" else "checkpoint_*.pth"
    return _sorted_by_step(glob.glob(os.path.join(directory, pattern)))


def save_checkpoint(
    state: Dict[str, Any], directory: str, keep: Optional[int], name_prefix: str = "checkpoint", suffix: str = ""
) -> str:
    """Write ``state`` atomically and keep the newest ``keep`` files of the same kind (None: all); returns the path."""
    os.makedirs(directory, exist_ok=True)
    name = f"{name_prefix}_{state['train_step']:09d}_{state['env_steps']}{suffix}.pth"
    path = os.path.join(directory, name)
    temp_path = os.path.join(directory, f".{name}.tmp")
    torch.save(state, temp_path)
    with open(temp_path, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp_path, path)
    existing = [] if keep is None else checkpoints(directory, "best" if name_prefix == "best" else "latest")
    for old in existing[: max(0, len(existing) - (keep or 0))]:
        try:
            os.remove(old)
        except OSError:
            pass
    return path


def load_latest_checkpoint(directory: str, kind: str = "latest", map_location: str = "cpu") -> Optional[Dict[str, Any]]:
    """The newest readable checkpoint (a corrupt newest one is reported and skipped), or None."""
    for path in reversed(checkpoints(directory, kind)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
            if not isinstance(state, dict) or "model" not in state:
                raise ValueError("not a pysf / Sample Factory checkpoint dict")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped with a message
            log.error("Checkpoint %s is corrupt or incomplete (%s); trying the previous one", path, exc)
            continue
        log.info("Loading checkpoint %s", path)
        state["_path"] = path
        return state
    return None
