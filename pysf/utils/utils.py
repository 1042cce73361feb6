"""General helpers with Sample Factory's names (``sample_factory.utils.utils``).

The subset user code imports from Sample Factory: the ``log`` logger, ``str2bool``, experiment-folder paths
(``experiments_dir``, ``experiment_dir``, ``summaries_dir``, ``cfg_file``, ``cfg_file_old``), directory helpers
(``ensure_dir_exists``, ``maybe_ensure_dir_exists``, ``safe_ensure_dir_exists``, ``remove_if_exists``), git
information (``git_root``, ``get_git_commit_hash``, ``save_git_diff``), ``project_tmp_dir``/``get_username``,
``init_file_logger``, ``log_every_n``/``debug_log_every_n`` and ``is_module_available``.

Differences from Sample Factory, on purpose:

- ``log`` (the logger named ``"rl"``, as in Sample Factory) has no handler of its own and propagates to the root
  logger, so its records go wherever the application (or pysf's runner, which installs Sample Factory's console
  format ``[time][pid] message`` and the ``sf_log.txt`` file handler on the root logger) sends them, and pytest's
  ``caplog`` sees them. Sample Factory attaches a colored stream handler at import time and stops propagation.
- Importing this module has no side effects on the file system (Sample Factory opens ``./sf_log.txt``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import tempfile
from os.path import join
from typing import Any, Callable, Dict, List, Optional, Tuple

from pysf.cfg.cfg import str2bool
from pysf.utils.typing import Config

__all__ = [
    "log",
    "str2bool",
    "CONFIG_FILENAME",
    "LEGACY_CONFIG_FILENAME",
    "LOG_FILENAME",
    "LOG_FORMAT",
    "ensure_dir_exists",
    "maybe_ensure_dir_exists",
    "safe_ensure_dir_exists",
    "remove_if_exists",
    "get_username",
    "project_tmp_dir",
    "experiments_dir",
    "experiment_dir",
    "summaries_dir",
    "cfg_file",
    "cfg_file_old",
    "git_root",
    "get_git_commit_hash",
    "save_git_diff",
    "init_file_logger",
    "log_every_n",
    "debug_log_every_n",
    "is_module_available",
    "static_vars",
]

# Sample Factory's logger name: user code does ``from sample_factory.utils.utils import log``.
log = logging.getLogger("rl")

# Names of the files inside an experiment folder (Sample Factory 2.x; cfg.json was used before 2.0.2).
CONFIG_FILENAME = "config.json"
LEGACY_CONFIG_FILENAME = "cfg.json"
LOG_FILENAME = "sf_log.txt"
# Sample Factory's log line format (console and sf_log.txt).
LOG_FORMAT = "[%(asctime)s][%(process)05d] %(message)s"

_GIT_TIMEOUT_SECONDS = 5.0


# --------------------------------------------------------------------------------------------------------------
# File system
# --------------------------------------------------------------------------------------------------------------


def ensure_dir_exists(path: str) -> str:
    """Create ``path`` (and its parents) if it does not exist yet; return ``path``."""
    if not os.path.exists(path):
        os.makedirs(path, exist_ok=True)
    return path


def maybe_ensure_dir_exists(path: str, mkdir: bool) -> str:
    """``ensure_dir_exists(path)`` when ``mkdir`` is true, else just ``path``."""
    return ensure_dir_exists(path) if mkdir else path


def safe_ensure_dir_exists(path: str) -> str:
    """Like :func:`ensure_dir_exists`, tolerating another process creating the folder at the same time."""
    try:
        return ensure_dir_exists(path)
    except FileExistsError:
        return path


def remove_if_exists(file: str) -> None:
    """Delete ``file`` if it is an existing regular file."""
    if os.path.isfile(file):
        os.remove(file)


def get_username() -> str:
    """Name of the current user (the numeric uid when it has no name, e.g. in some containers)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        try:
            return str(os.getuid())
        except AttributeError:  # not a POSIX system
            return os.environ.get("USERNAME", "user")


def project_tmp_dir(mkdir: bool = True) -> str:
    """Per-user scratch folder ``<tmp>/sf2_<user>`` (e.g. for the env-info cache)."""
    return maybe_ensure_dir_exists(join(tempfile.gettempdir(), f"sf2_{get_username()}"), mkdir)


# --------------------------------------------------------------------------------------------------------------
# Experiment folder layout: <train_dir>/<experiment>/{config.json, sf_log.txt, .summary/, checkpoint_p0/, ...}
# --------------------------------------------------------------------------------------------------------------


def experiments_dir(cfg: Config, mkdir: bool = True) -> str:
    """The root folder of all experiments, ``cfg.train_dir`` (created when ``mkdir``)."""
    return maybe_ensure_dir_exists(cfg.train_dir, mkdir)


def experiment_dir(cfg: Config, mkdir: bool = True) -> str:
    """The folder of this experiment, ``<cfg.train_dir>/<cfg.experiment>`` (created when ``mkdir``, as in Sample
    Factory; pass ``mkdir=False`` to only compute the path)."""
    return maybe_ensure_dir_exists(join(experiments_dir(cfg, mkdir), cfg.experiment), mkdir)


def summaries_dir(experiment_dir_: str, mkdir: bool = True) -> str:
    """TensorBoard folder of an experiment: ``<experiment_dir>/.summary``."""
    return maybe_ensure_dir_exists(join(experiment_dir_, ".summary"), mkdir)


def cfg_file(cfg: Config, mkdir: bool = True) -> str:
    """Path of the experiment's saved configuration, ``<experiment_dir>/config.json``.

    As in Sample Factory the experiment folder is created unless ``mkdir=False``.
    """
    return join(experiment_dir(cfg, mkdir), CONFIG_FILENAME)


def cfg_file_old(cfg: Config, mkdir: bool = True) -> str:
    """Path of the legacy configuration file ``<experiment_dir>/cfg.json`` (Sample Factory < 2.0.2)."""
    return join(experiment_dir(cfg, mkdir), LEGACY_CONFIG_FILENAME)


# --------------------------------------------------------------------------------------------------------------
# Git
# --------------------------------------------------------------------------------------------------------------


def git_root() -> Optional[str]:
    """Root of the git working tree containing the current directory, or ``None`` outside a repository."""
    curr_dir = os.getcwd()
    while True:
        if os.path.exists(join(curr_dir, ".git")):
            return curr_dir
        parent_dir = os.path.dirname(curr_dir)
        if parent_dir == curr_dir:
            return None
        curr_dir = parent_dir


def get_git_commit_hash() -> Tuple[str, str]:
    """``(commit hash, origin remote URL)`` of the repository in the current directory; ``"unknown"`` parts when
    unavailable. Same values as ``cfg.git_hash`` / ``cfg.git_repo_name``."""
    from pysf.cfg.arguments import git_commit_hash_and_repo_name

    return git_commit_hash_and_repo_name()


def save_git_diff(directory: str) -> None:
    """Write ``git diff`` of the current repository to ``<directory>/git.diff`` (nothing outside a repository)."""
    root = git_root()
    if root is None:
        return
    try:
        with open(join(directory, "git.diff"), "w") as outfile:
            subprocess.run(
                ["git", "diff"],
                stdout=outfile,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                cwd=root,
                timeout=_GIT_TIMEOUT_SECONDS,
                check=False,
            )
    except (OSError, subprocess.SubprocessError):
        log.debug("Could not save the git diff into %s", directory)


# --------------------------------------------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------------------------------------------


def init_file_logger(cfg: Config) -> Optional[str]:
    """Also write ``log`` records to ``<experiment_dir>/sf_log.txt`` (unless ``--log_to_file=False``).

    Idempotent: a second call for the same file adds no second handler. Returns the log file path, or ``None``
    when file logging is disabled.
    """
    if not getattr(cfg, "log_to_file", True):
        return None
    filename = os.path.abspath(join(experiment_dir(cfg), LOG_FILENAME))
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == filename:
            return filename
    file_handler = logging.FileHandler(filename)
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(file_handler)
    return filename


_log_every_n_history: Dict[str, int] = {}


def log_every_n(n: int, _level: int, msg: str, *args: Any, **kwargs: Any) -> None:
    """Log ``msg`` only on every ``n``-th call with that same message (calls are counted per ``msg``)."""
    num_msgs = _log_every_n_history.get(msg, 0)
    if num_msgs % n == 0:
        log.log(_level, f"{msg} ({num_msgs} times)" if num_msgs > 1 else msg, *args, **kwargs)
    _log_every_n_history[msg] = num_msgs + 1


def debug_log_every_n(n: int, msg: str, *args: Any, **kwargs: Any) -> None:
    """:func:`log_every_n` at DEBUG level."""
    log_every_n(n, logging.DEBUG, msg, *args, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Misc
# --------------------------------------------------------------------------------------------------------------


def is_module_available(module_name: str) -> bool:
    """Whether ``module_name`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def static_vars(**kwargs: Any) -> Callable[[Callable], Callable]:
    """Decorator attaching attributes to a function (``@static_vars(counter=0)``)."""

    def decorate(func: Callable) -> Callable:
        for key, value in kwargs.items():
            setattr(func, key, value)
        return func

    return decorate


# ---- worker processes' CPU cores and priority (Sample Factory's --set_workers_cpu_affinity, --default_niceness)


def cores_for_worker_process(worker_idx: int, num_workers: int, cpu_count: int) -> Optional[List[int]]:
    """Indices (into the available cores) that worker ``worker_idx`` of ``num_workers`` should run on, or
    None for "any". Sample Factory's assignment: the first ``cpu_count * (num_workers // cpu_count)`` workers
    get a core each (round robin); the remaining workers share the cores in equal groups when the count
    divides evenly (e.g. 20 cores, 44 workers: 40 workers with one core, 4 workers with 5 cores each)."""
    whole_workers_per_core = num_workers // cpu_count
    if worker_idx < whole_workers_per_core * cpu_count:
        return [worker_idx % cpu_count]
    remaining_workers = num_workers % cpu_count
    if cpu_count % remaining_workers == 0:
        cores_each = cpu_count // remaining_workers
        first = (worker_idx % cpu_count) * cores_each
        return list(range(first, first + cores_each))
    return None


def set_worker_process_affinity_and_niceness(cfg: Config, worker_idx: int) -> None:
    """What Sample Factory does at the start of a rollout worker process: pin it to its cores
    (``--set_workers_cpu_affinity``) and, with several workers, lower its priority to
    ``--default_niceness`` + 10 so the learner and inference preempt env stepping when they need a core."""
    import psutil

    process = psutil.Process()
    num_workers = int(cfg.num_workers)
    try:
        if cfg.set_workers_cpu_affinity and hasattr(process, "cpu_affinity"):
            available = process.cpu_affinity()
            cores = cores_for_worker_process(worker_idx, num_workers, len(available))
            if cores is not None:
                process.cpu_affinity([available[c] for c in cores])
        if num_workers > 1:
            process.nice(min(int(cfg.default_niceness) + 10, 20))
    except (psutil.Error, OSError) as exc:  # a restricted container: run unpinned rather than fail
        log.debug("worker %d: could not set CPU affinity / niceness: %s", worker_idx, exc)


def set_main_process_niceness(cfg: Config) -> None:
    """``--default_niceness`` for the training process (learner and inference), as Sample Factory's learner."""
    niceness = int(cfg.default_niceness)
    if niceness == 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError as exc:
        log.warning("Could not set --default_niceness=%d (%s); negative values need privileges", niceness, exc)

