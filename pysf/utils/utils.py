"""General helpers with Sample Factory's names (``sample_factory.utils.utils``).

The subset user code imports from Sample Factory: the ``log`` logger, ``str2bool``, experiment-folder paths
(``experiments_dir``, ``experiment_dir``, ``summaries_dir``, ``cfg_file``, ``cfg_file_old``), directory helpers
(``ensure_dir_exists``, ``maybe_ensure_dir_exists``, ``safe_ensure_dir_exists``, ``remove_if_exists``), git
information (``git_root``, ``get_git_commit_hash``, ``save_git_diff``), ``project_tmp_dir``/``get_username``,
``init_file_logger``/``has_file_handler``, ``log_every_n``/``debug_log_every_n``, ``is_module_available``,
``static_vars``, ``set_attr_if_exists``, ``retry``, ``safe_get``, numpy helpers (``scale_to_range``,
``numpy_all_the_way``, ``numpy_flatten``, ``ensure_contigious``, ``min_with_idx``/``max_with_idx``/``op_with_idx``),
``figure_to_numpy``, and process/OS helpers (``get_free_disk_space_mb``, ``memory_consumption_mb``, ``kill``,
``join_or_kill``, ``list_child_processes``, ``kill_processes``, ``cores_for_worker_process``,
``set_process_cpu_affinity``). ``AttrDict`` is re-exported for code written for older Sample Factory versions.

Differences from Sample Factory, on purpose:

- ``log`` (the logger named ``"rl"``, as in Sample Factory) has no handler of its own and propagates to the root
  logger, so its records go wherever the application (or pysf's runner, which installs Sample Factory's console
  format ``[time][pid] message`` and the ``sf_log.txt`` file handler on the root logger) sends them, and pytest's
  ``caplog`` sees them. Sample Factory attaches a colored stream handler at import time and stops propagation.
- Importing this module has no side effects on the file system (Sample Factory opens ``./sf_log.txt``).
- ``is_module_available`` finds the module without importing it (Sample Factory imports it).
- ``figure_to_numpy`` returns ``[height, width, 4]`` RGBA (Sample Factory's reshape is ``[width, height, 4]``,
  the same only for square figures).
- Not provided: ``safe_put``/``safe_put_many`` (they rely on faster_fifo's ``put_many`` raising ``queue.Full``
  after its own timeout, which pysf's queues do not have).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import operator
import os
import queue
import subprocess
import sys
import tempfile
import time
from os.path import join
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type, Union

import numpy as np

from pysf.cfg.cfg import str2bool
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config

__all__ = [
    "log",
    "str2bool",
    "AttrDict",
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
    "setup_logging",
    "log_every_n",
    "debug_log_every_n",
    "is_module_available",
    "static_vars",
    "has_file_handler",
    "set_attr_if_exists",
    "scale_to_range",
    "op_with_idx",
    "min_with_idx",
    "max_with_idx",
    "safe_get",
    "retry",
    "retrying",
    "numpy_all_the_way",
    "numpy_flatten",
    "ensure_contigious",
    "figure_to_numpy",
    "get_free_disk_space_mb",
    "memory_consumption_mb",
    "kill",
    "join_or_kill",
    "list_child_processes",
    "kill_processes",
    "cores_for_worker_process",
    "set_process_cpu_affinity",
]

# Sample Factory's logger name: user code does ``from sample_factory.utils.utils import log``.
log = logging.getLogger("rl")
# As in Sample Factory, its debug lines (e.g. a user script's log.debug progress) reach the console.
log.setLevel(logging.DEBUG)

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


def setup_logging(log_file: Optional[str] = None) -> None:
    """Console logging (stdout) in Sample Factory's format for every logger (``log``, pysf's runner, user code);
    also into ``log_file`` (sf_log.txt) when given. Idempotent."""
    root = logging.getLogger()
    if not any(getattr(h, "_pysf", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
        handler._pysf = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    if log_file and not any(getattr(h, "baseFilename", None) == os.path.abspath(log_file) for h in root.handlers):
        file_handler = LogFileHandler(log_file)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(file_handler)


class LogFileHandler(logging.FileHandler):
    """sf_log.txt: a file handler that, when its file cannot be written (a full disk), says so once on the
    console and stops, instead of printing a traceback for every record that follows."""

    def handleError(self, record: logging.LogRecord) -> None:
        if getattr(self, "_failed", False):
            return
        self._failed = True
        error = sys.exc_info()[1]
        sys.stderr.write(f"Logging to {self.baseFilename} stopped: {getattr(error, 'strerror', None) or error}\n")

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_failed", False):
            super().emit(record)


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
    file_handler = LogFileHandler(filename)
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(file_handler)
    return filename


def has_file_handler() -> bool:
    """Whether log records already go to a file: ``log`` or the root logger (where pysf's runner installs
    ``sf_log.txt``) has a ``logging.FileHandler``."""
    for logger in (log, logging.getLogger()):
        if any(isinstance(handler, logging.FileHandler) for handler in logger.handlers):
            return True
    return False


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


def set_attr_if_exists(obj: Any, attr_name: str, attr_value: Any) -> None:
    """``setattr(obj, attr_name, attr_value)`` only when ``obj`` already has that attribute."""
    if hasattr(obj, attr_name):
        setattr(obj, attr_name, attr_value)


def retrying(
    exceptions: Union[Type[BaseException], Tuple[Type[BaseException], ...]],
    num_attempts: int,
    pause_seconds: Callable[[int], float],
) -> Callable[[Callable], Callable]:
    """Decorator: call the function up to ``num_attempts`` times while it raises ``exceptions``.

    After failed attempt ``k`` (from 1) the failure is logged and ``pause_seconds(k)`` slept; the last failure
    propagates, other exceptions at once. The one mechanism behind Sample Factory's two ``retry`` decorators.
    """
    if num_attempts < 1:
        raise ValueError(f"retry(num_attempts={num_attempts}): at least one attempt is needed")

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, num_attempts + 1):
                try:
                    return func(*args, **kwargs)
                except exceptions as exc:
                    if attempt == num_attempts:
                        raise
                    name = getattr(func, "__name__", repr(func))
                    log.error("%s failed with %r (attempt %d of %d), trying again", name, exc, attempt, num_attempts)
                    time.sleep(pause_seconds(attempt))

        return wrapper

    return decorator


def retry(times: int, exceptions: Union[Type[BaseException], Tuple[Type[BaseException], ...]]) -> Callable:
    """Decorator (Sample Factory's ``utils.retry``): ``times`` tries with waits of 1, 2, 4, ... seconds (at most
    10) after each failure, then one last call whose exception (if any) propagates."""
    return retrying(exceptions, times + 1, lambda attempt: min(2 ** (attempt - 1), 10))


def safe_get(q: Any, timeout: float = 1e6, msg: str = "Queue timeout") -> Any:
    """``q.get()`` that waits in slices of ``timeout`` seconds (logging each expiry) until an item arrives.

    A finite timeout keeps ``KeyboardInterrupt`` deliverable while waiting, which a bare blocking ``get`` of a
    multiprocessing queue does not.
    """
    while True:
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            log.info("Queue timed out (%s), timeout %.3f", msg, timeout)


# ---- numpy


def scale_to_range(np_array: np.ndarray, min_: float, max_: float) -> np.ndarray:
    """Affinely map the values of ``np_array`` so that its minimum becomes ``min_`` and its maximum ``max_``
    (a constant array gives NaNs, as the span is 0)."""
    min_arr = np.min(np_array)
    max_arr = np.max(np_array)
    unit = (np_array - min_arr) / (max_arr - min_arr)
    return unit * (max_ - min_) + min_


def op_with_idx(x: Sequence[Any], op: Callable[[Any, Any], bool]) -> Tuple[Any, int]:
    """``(best item, its index)`` of a non-empty sequence, where ``op(a, b)`` says ``a`` beats ``b``; ties keep the
    first occurrence."""
    if len(x) == 0:
        raise ValueError("op_with_idx needs a non-empty sequence")
    best_idx = 0
    best_x = x[0]
    for i, item in enumerate(x):
        if op(item, best_x):
            best_x, best_idx = item, i
    return best_x, best_idx


def min_with_idx(x: Sequence[Any]) -> Tuple[Any, int]:
    """``(minimum, index of its first occurrence)``."""
    return op_with_idx(x, operator.lt)


def max_with_idx(x: Sequence[Any]) -> Tuple[Any, int]:
    """``(maximum, index of its first occurrence)``."""
    return op_with_idx(x, operator.gt)


def numpy_all_the_way(list_of_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack equally shaped arrays into one array with a new leading dimension (``[len, *shape]``)."""
    shape = [len(list_of_arrays)] + list(list_of_arrays[0].shape)
    return np.concatenate(list_of_arrays).reshape(shape)


def numpy_flatten(list_of_arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate arrays along their first dimension."""
    return np.concatenate(list_of_arrays, axis=0)


def ensure_contigious(x: np.ndarray) -> np.ndarray:
    """``x`` itself when it is C-contiguous, else a C-contiguous copy (Sample Factory's spelling of the name)."""
    if not x.flags["C_CONTIGUOUS"]:
        x = np.ascontiguousarray(x)
    return x


def figure_to_numpy(figure: Any) -> np.ndarray:
    """Render a matplotlib figure and return its pixels as a ``uint8`` array ``[height, width, 4]`` (RGBA)."""
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba(), dtype=np.uint8)
    return rgba.reshape(rgba.shape[0], rgba.shape[1], 4).copy()


# ---- processes and the OS


def get_free_disk_space_mb(cfg: Config) -> float:
    """Free space (MiB) on the file system holding ``cfg.train_dir`` (created if missing)."""
    statvfs = os.statvfs(experiments_dir(cfg))
    return statvfs.f_frsize * statvfs.f_bfree / (1024 * 1024)


def memory_consumption_mb() -> float:
    """Resident memory of the current process, in MiB."""
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / (1024 * 1024)


def kill(proc_pid: int) -> None:
    """Kill process ``proc_pid`` and all its descendants (SIGKILL)."""
    import psutil

    process = psutil.Process(proc_pid)
    for child in process.children(recursive=True):
        child.kill()
    process.kill()


def join_or_kill(process: Any, timeout: float = 1.0) -> None:
    """Join a ``multiprocessing.Process`` for up to ``timeout`` seconds, then kill it if it is still alive."""
    process.join(timeout)
    if process.is_alive():
        log.warning("Process %r could not join, kill it with fire!", process)
        process.kill()
        log.warning("Process %r is dead (%r)", process, process.is_alive())


def list_child_processes() -> List[Any]:
    """The running descendants of this process, as ``psutil.Process`` objects."""
    import psutil

    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.is_running():
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


# Helper processes that must outlive a kill_processes() sweep: killing torch's shared-memory manager or
# Python's resource/semaphore trackers leaks shared memory segments until reboot.
_PROCESSES_TO_SPARE = ("torch_shm", "resource_tracker", "semaphore_tracker")


def kill_processes(processes: Iterable[Any]) -> None:
    """Kill the given ``psutil.Process`` objects (e.g. :func:`list_child_processes`), sparing torch's
    shared-memory manager and Python's resource/semaphore trackers; already finished ones are skipped."""
    import psutil

    for p in processes:
        try:
            if any(name in part for name in _PROCESSES_TO_SPARE for part in [p.name()] + p.cmdline()):
                continue
            log.debug("Child process name %d %r %r %r", p.pid, p.name(), p.exe(), p.cmdline())
            if p.is_running():
                log.debug("Killing process %s...", p.name())
                p.kill()
        except psutil.NoSuchProcess:
            pass


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


def set_process_cpu_affinity(worker_idx: int, num_workers: int) -> None:
    """Pin the current process to the cores :func:`cores_for_worker_process` gives worker ``worker_idx`` of
    ``num_workers``, as indices into the cores this process may use now (e.g. a SLURM allocation). Does nothing
    where the OS has no CPU affinity (macOS) or when the workers do not divide the cores evenly."""
    import psutil

    process = psutil.Process()
    if not hasattr(process, "cpu_affinity"):
        log.debug("No CPU affinity on %s, not setting it", sys.platform)
        return
    available = process.cpu_affinity()
    cores = cores_for_worker_process(worker_idx, num_workers, len(available))
    if cores is not None:
        process.cpu_affinity([available[c] for c in cores])
    log.debug("Worker %d uses CPU cores %r", worker_idx, process.cpu_affinity())


def set_worker_process_affinity_and_niceness(cfg: Config, worker_idx: int) -> None:
    """What Sample Factory does at the start of a rollout worker process: pin it to its cores
    (``--set_workers_cpu_affinity``) and, with several workers, lower its priority to
    ``--default_niceness`` + 10 so the learner and inference preempt env stepping when they need a core."""
    import psutil

    num_workers = int(cfg.num_workers)
    try:
        if cfg.set_workers_cpu_affinity:
            set_process_cpu_affinity(worker_idx, num_workers)
        if num_workers > 1:
            psutil.Process().nice(min(int(cfg.default_niceness) + 10, 20))
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

