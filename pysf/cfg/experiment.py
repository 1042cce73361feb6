"""The experiment folder ``<train_dir>/<experiment>/``: restart behavior and the saved ``config.json``.

What the runner does with it, in order::

    cfg = prepare_experiment_dir(cfg)      # --restart_behavior; on resume, the saved config (+ explicit CLI flags)
    env_info = obtain_env_info(cfg)
    cfg = preprocess_cfg(cfg, env_info)    # raises ValueError on an invalid configuration
    save_config(cfg)                       # config.json, written only once the configuration was verified

``--restart_behavior`` when the folder already exists (as in Sample Factory):

- ``resume`` (default): keep the folder (checkpoints, summaries, logs) and reload its ``config.json``; only the
  flags passed explicitly on this command line override the saved values (see
  :func:`pysf.cfg.arguments.load_from_checkpoint`);
- ``restart``: move the old folder aside to ``<dir>_old0001`` (``_old0002``, ... if taken) and start from scratch;
- ``overwrite``: delete the old folder and start from scratch.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import json
import os
import shutil
import socket
import time
from typing import Any, Dict, List, Optional, Tuple

from pysf.cfg.arguments import cfg_dict, maybe_load_from_checkpoint, read_config_file
from pysf.utils.atomic_files import write_atomically
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config
from pysf.utils.utils import (
    CONFIG_FILENAME,
    LEGACY_CONFIG_FILENAME,
    cfg_file,
    cfg_file_old,
    ensure_dir_exists,
    experiment_dir,
    log,
)

__all__ = [
    "CONFIG_FILENAME",
    "LEGACY_CONFIG_FILENAME",
    "RESTART_BEHAVIORS",
    "experiment_dir",
    "cfg_file",
    "cfg_file_old",
    "save_config",
    "load_config",
    "old_experiment_dir",
    "prepare_experiment_dir",
    "ExperimentLock",
    "ExperimentLockedError",
    "LOCK_FILENAME",
]

RESTART_BEHAVIORS: Tuple[str, ...] = ("resume", "restart", "overwrite")
LOCK_FILENAME = ".pysf_lock"


class ExperimentLockedError(RuntimeError):
    """Another run is using the experiment folder."""


class ExperimentLock:
    """One run per experiment folder: an exclusive ``flock`` on ``<experiment_dir>/.pysf_lock``.

    The file records the holder (pid, host, start time) for the message a second run gets. The lock belongs to
    the open file, so the kernel releases it when the holder exits in any way (a crash or SIGKILL included):
    a lock file left behind by a dead run is stale by construction and is simply taken over. The file itself is
    never deleted on release (deleting it would let two later runs lock two different files).
    """

    def __init__(self, exp_dir: str):
        self.exp_dir = exp_dir
        self.path = os.path.join(exp_dir, LOCK_FILENAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (the folder must exist).

        Raises:
            ExperimentLockedError: another run (in this or another process) holds it.
            OSError: the lock file cannot be created (e.g. a read-only folder).
        """
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ExperimentLockedError(
                f"The experiment folder {self.exp_dir} is in use by another run ({_describe_holder(holder)}). Two runs "
                f"in one folder would overwrite each other's config.json and checkpoints. Wait until it ends or stop "
                f"it, or choose another --experiment (or --train_dir)."
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                os.close(fd)
                raise
            log.warning("Cannot lock %s (%s): make sure no other run uses this experiment folder", self.path, exc.strerror)
        previous = _read_holder(fd)
        if previous.get("pid") and previous != _this_holder():
            log.debug("Taking over the lock of a run that ended (%s)", _describe_holder(previous))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_this_holder()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing releases the flock

    def __enter__(self) -> "ExperimentLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _this_holder() -> Dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": _PROCESS_START}


_PROCESS_START = time.strftime("%Y-%m-%d %H:%M:%S")


def _read_holder(fd: int) -> Dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe_holder(holder: Dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    same_process = holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
    where = "this process" if same_process else f"pid {holder.get('pid')} on {holder.get('host')}"
    return f"{where}, started {holder.get('started')}"


def save_config(cfg: Config) -> str:
    """Write every entry of ``cfg`` to ``<experiment_dir>/config.json`` (creating the folder if needed).

    The write is atomic: the JSON goes to a temporary file in the same folder, which then replaces
    ``config.json`` with ``os.replace``. A failure (e.g. a value JSON cannot represent) leaves any previous
    ``config.json`` untouched and no temporary file behind.

    Returns:
        The path of ``config.json``.

    Raises:
        TypeError: an entry of ``cfg`` is not JSON-serializable (the message names the entries).
        pysf.utils.atomic_files.FileWriteError: the file could not be written (e.g. the disk is full).
    """
    params = dict(cfg_dict(cfg))
    directory = experiment_dir(cfg, mkdir=True)
    filename = os.path.join(directory, CONFIG_FILENAME)
    bad_keys = _unserializable_keys(params)
    if bad_keys:
        raise TypeError(
            f"Cannot save the configuration to {filename}: entries {bad_keys} are not JSON-serializable. "
            f"Configuration values must be None, bool, int, float, str, or lists/dicts of these."
        )
    write_atomically(filename, lambda file: json.dump(params, file, indent=2), "the configuration", text=True)
    return filename


def load_config(cfg: Config) -> AttrDict:
    """The saved ``config.json`` of the experiment ``cfg`` points to, as is (no command-line overrides; see
    :func:`pysf.cfg.arguments.load_from_checkpoint` for those).

    Raises:
        FileNotFoundError: the experiment has no ``config.json``.
        ValueError: the file is not a JSON object.
    """
    return read_config_file(cfg_file(cfg, mkdir=False))


def old_experiment_dir(exp_dir: str) -> str:
    """The first free ``<exp_dir>_oldNNNN`` name (``_old0001``, ``_old0002``, ...) to move an old folder to."""
    attempt = 1
    while os.path.lexists(f"{exp_dir}_old{attempt:04d}"):
        attempt += 1
    return f"{exp_dir}_old{attempt:04d}"


def prepare_experiment_dir(cfg: Config, lock: Optional[ExperimentLock] = None) -> AttrDict:
    """Apply ``--restart_behavior`` to the experiment folder and return the configuration to train with.

    - new experiment: the configuration is ``cfg``;
    - existing folder, ``resume``: the saved configuration with this run's explicit command-line flags on top
      (:func:`pysf.cfg.arguments.maybe_load_from_checkpoint`; a folder without ``config.json`` starts from
      ``cfg``, a legacy ``cfg.json`` is renamed to ``config.json``);
    - existing folder, ``restart``: the folder is moved to :func:`old_experiment_dir`, the configuration is ``cfg``;
    - existing folder, ``overwrite``: the folder is deleted, the configuration is ``cfg``.

    The folder exists afterwards. ``config.json`` is not written here: call :func:`save_config` once the
    configuration has been verified, so that an invalid configuration is never saved (it would be reloaded on the
    next resume).

    An existing folder is locked (:class:`ExperimentLock`) before anything in it is read, moved or deleted, so a
    folder in use by another run is left alone. ``lock``: the caller's lock for the folder, held on return (the
    run keeps it until it ends); without one, a temporary lock guards this call only.

    Returns:
        A new ``AttrDict`` in every case (``cfg`` itself is not modified).

    Raises:
        ValueError: unknown ``--restart_behavior``, an experiment name that does not denote a folder strictly
            inside ``--train_dir`` (empty, absolute, ``..``), or a path that exists but is not a folder.
        ExperimentLockedError: another run uses the folder.
        ExperimentDirError: the folder cannot be created or locked (e.g. a read-only ``--train_dir``).
    """
    behavior = getattr(cfg, "restart_behavior", "resume")
    if behavior not in RESTART_BEHAVIORS:
        raise ValueError(f"Unknown --restart_behavior={behavior!r}: use one of {', '.join(RESTART_BEHAVIORS)}.")
    _check_experiment_name(cfg.experiment)

    exp_dir = experiment_dir(cfg, mkdir=False)
    if os.path.lexists(exp_dir) and not os.path.isdir(exp_dir):
        raise ValueError(
            f"{exp_dir} exists but is not a folder. Remove it, or choose another --experiment or --train_dir."
        )
    temporary_lock = lock is None  # then it guards this call only
    lock = ExperimentLock(exp_dir) if lock is None else lock
    if lock.exp_dir != exp_dir:
        raise ValueError(f"prepare_experiment_dir: the lock is for {lock.exp_dir}, the experiment folder is {exp_dir}")

    if not os.path.isdir(exp_dir):
        result = _copy_cfg(cfg)
    else:
        _lock_folder(lock, cfg)
        if behavior == "resume":
            log.debug("Resuming existing experiment from %s", exp_dir)
            result = maybe_load_from_checkpoint(cfg)
        else:
            if behavior == "restart":
                old_dir = old_experiment_dir(exp_dir)
                log.info("Experiment folder %s exists: moving it to %s and starting from scratch", exp_dir, old_dir)
                shutil.move(exp_dir, old_dir)
            else:  # overwrite
                log.info("Experiment folder %s exists: deleting it and starting from scratch", exp_dir)
                shutil.rmtree(exp_dir)
            lock.release()  # it locked the old folder's file; the new folder gets its own
            result = _copy_cfg(cfg)

    try:
        ensure_dir_exists(exp_dir)
    except OSError as exc:
        raise ExperimentDirError(
            f"Cannot create the experiment folder {exp_dir}: {exc.strerror}. Choose a writable --train_dir "
            f"(now {cfg.train_dir!r})."
        ) from exc
    _lock_folder(lock, cfg)
    if temporary_lock:
        lock.release()
    return result


class ExperimentDirError(OSError):
    """The experiment folder cannot be created or used (the message says which and why)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _lock_folder(lock: ExperimentLock, cfg: Config) -> None:
    try:
        lock.acquire()
    except OSError as exc:  # (ExperimentLockedError is not one: it propagates as it is)
        raise ExperimentDirError(
            f"Cannot use the experiment folder {lock.exp_dir}: creating its lock file failed ({exc.strerror}). "
            f"Choose a writable --train_dir (now {cfg.train_dir!r})."
        ) from exc


# --------------------------------------------------------------------------------------------------------------
# Private helpers
# --------------------------------------------------------------------------------------------------------------


def _copy_cfg(cfg: Config) -> AttrDict:
    """An independent ``AttrDict`` copy of ``cfg`` (lists and dicts are copied too)."""
    return AttrDict({key: copy.deepcopy(value) for key, value in cfg_dict(cfg).items()})


def _unserializable_keys(params: Dict[str, Any]) -> List[str]:
    """The keys whose values ``json`` cannot write."""
    bad_keys = []
    for key, value in params.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            bad_keys.append(key)
    return bad_keys


def _check_experiment_name(experiment: Any) -> None:
    """``--experiment`` must denote a folder strictly inside ``--train_dir``: ``overwrite``/``restart`` would
    otherwise delete or move ``--train_dir`` itself or something outside it."""
    name = str(experiment) if experiment is not None else ""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or os.path.isabs(name) or ".." in parts:
        raise ValueError(
            f"--experiment={experiment!r} must be a folder name inside --train_dir (not empty, not an absolute path, "
            f"without '..'), e.g. --experiment=my_experiment."
        )
