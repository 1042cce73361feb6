"""Checkpoint files: Sample Factory's names and dict layout, written atomically, read defensively.

``checkpoint_p{policy}/checkpoint_{train_step:09d}_{env_steps}.pth`` (the newest ``keep_checkpoints`` are
kept) and ``best_{train_step:09d}_{env_steps}_{metric}_{value:.3f}.pth`` (only the newest best is kept).
A file is written to a temporary name in the same folder and renamed, so a crash never leaves a partial
checkpoint under a real name; a corrupt or truncated file is moved aside (``*.pth.corrupt``) with a warning and
the previous one is used; when none is readable, loading stops rather than start over from step 0.
"""

from __future__ import annotations

import glob
import io
import logging
import math
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import torch

from pysf.utils.atomic_files import FileWriteError, write_atomically

log = logging.getLogger(__name__)

CORRUPT_SUFFIX = ".corrupt"  # appended to unreadable checkpoint files
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
    """Write ``state`` atomically and keep the newest ``keep`` files of the same kind (None: all); returns the path.

    Older files are pruned by modification time, never the one just written: a file whose name claims a higher
    step (copied in, or left by another run) cannot push out the new checkpoint.

    Raises:
        pysf.utils.atomic_files.FileWriteError: the file could not be written (e.g. the disk is full); the
            previous checkpoints are untouched and no temporary file is left.
    """
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise FileWriteError("a checkpoint into", directory, exc) from exc
    name = f"{name_prefix}_{state['train_step']:09d}_{state['env_steps']}{suffix}.pth"
    path = os.path.join(directory, name)
    # Serialized in memory first, so that a full disk surfaces as an OSError of a plain file write rather than
    # as an error deep inside torch's zip writer.
    serialized = io.BytesIO()
    torch.save(state, serialized)
    write_atomically(path, serialized.getbuffer(), "checkpoint")
    if keep is not None:
        _prune(directory, "best" if name_prefix == "best" else "latest", keep, path)
    return path


def _prune(directory: str, kind: str, keep: int, newest: str) -> None:
    """Delete the oldest (by modification time) files of ``kind`` beyond ``keep``, sparing ``newest``."""
    others = [path for path in checkpoints(directory, kind) if os.path.abspath(path) != os.path.abspath(newest)]

    def modified(path: str) -> float:
        try:
            return os.stat(path).st_mtime
        except OSError:
            return -math.inf

    others.sort(key=modified)
    for old in others[: max(0, len(others) - max(keep - 1, 0))]:
        try:
            os.remove(old)
        except OSError:
            pass


def corrupt_checkpoints(directory: str) -> List[str]:
    """Files moved aside by :func:`load_latest_checkpoint` because they could not be read."""
    return sorted(glob.glob(os.path.join(directory, f"*.pth{CORRUPT_SUFFIX}")))


def load_latest_checkpoint(directory: str, kind: str = "latest", map_location: str = "cpu") -> Optional[Dict[str, Any]]:
    """The newest readable checkpoint of ``kind``, or None when the folder holds no checkpoint of that kind.

    Unreadable files met on the way (truncated, corrupt, not a checkpoint dict) are renamed to ``*.pth.corrupt``
    with a warning, so that they are neither loaded nor counted as checkpoints again.

    Raises:
        UnreadableCheckpointsError: checkpoint files were there (or were moved aside earlier) but none could be
            read: starting from scratch would silently discard them.
    """
    for path in reversed(checkpoints(directory, kind)):
        try:
            state = torch.load(path, map_location=map_location, weights_only=False)
            if not isinstance(state, dict) or "model" not in state:
                raise ValueError("not a pysf / Sample Factory checkpoint dict")
        except Exception as exc:  # noqa: BLE001 - any unreadable file is moved aside with a message
            _move_aside(path, exc)
            continue
        log.info("Loading checkpoint %s", path)
        state["_path"] = path
        return state
    corrupt = [path for path in corrupt_checkpoints(directory) if _kind_of(path) == kind]
    if corrupt:
        other_kind = "latest" if kind == "best" else "best"
        alternatives = checkpoints(directory, other_kind)
        raise UnreadableCheckpointsError(directory, kind, corrupt, (other_kind, alternatives[-1]) if alternatives else None)
    return None


def _kind_of(path: str) -> str:
    return "best" if os.path.basename(path).startswith("best_") else "latest"


class UnreadableCheckpointsError(RuntimeError):
    """A checkpoint folder whose every checkpoint is unreadable (they were renamed to ``*.pth.corrupt``)."""

    def __init__(self, directory: str, kind: str, corrupt: List[str], alternative: Optional[Tuple[str, str]] = None):
        names = ", ".join(os.path.basename(path) for path in corrupt[-3:])
        other = ""
        if alternative is not None:
            other_kind, other_path = alternative
            other = f" The folder has a readable-looking {other_kind} checkpoint, {os.path.basename(other_path)}: use --load_checkpoint_kind={other_kind}."
        super().__init__(
            f"No readable {'best ' if kind == 'best' else ''}checkpoint in {directory}: {len(corrupt)} unreadable "
            f"file(s) were moved aside ({names}).{other} pysf does not start over from step 0 on top of them: restore "
            f"a good checkpoint into that folder, or start a new run with --restart_behavior=restart (moves the "
            f"experiment folder aside) or --restart_behavior=overwrite."
        )
        self.directory = directory
        self.corrupt = corrupt


def _move_aside(path: str, cause: BaseException) -> None:
    target = path + CORRUPT_SUFFIX
    try:
        os.replace(path, target)
        where = f"moved to {os.path.basename(target)}"
    except OSError as exc:
        where = f"could not be moved aside: {exc.strerror}"
    log.warning("Checkpoint %s is corrupt or incomplete (%s: %s); %s", path, type(cause).__name__, cause, where)
