"""The launcher's command line (Sample Factory's ``sample_factory.launcher.run``)::

    python -m pysf.launcher.run --run=my_project.experiments.cartpole_sweep --backend=processes \\
        --max_parallel=4 --experiments_per_gpu=2 --num_gpus=1 --pause_between=1 [--train_dir=./train_dir]

``--run`` names a module (importable from the current folder or ``PYTHONPATH``; a ``path/to/file.py`` is
accepted too) that defines ``RUN_DESCRIPTION``, a :class:`pysf.launcher.run_description.RunDescription`. The
exit status is 0 when every experiment succeeded, 1 when one failed or the run could not be launched, 2 when
interrupted.

Only ``--backend=processes`` (local subprocesses) is implemented; Sample Factory's ``slurm`` and ``ngc``
back-ends stop with a message saying so.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any, List, Optional, Sequence

from pysf.algo.utils.misc import ExperimentStatus
from pysf.launcher.run_processes import add_os_parallelism_args, run
from pysf.utils.typing import Config
from pysf.utils.utils import LOG_FORMAT, log

__all__ = ["BACKENDS", "UnsupportedBackendError", "RunModuleError", "launcher_argparser", "parse_args", "main"]

# Sample Factory's back-ends, in its order; only "processes" is implemented by pysf.
BACKENDS = ("processes", "slurm", "ngc")
_UNSUPPORTED_BACKENDS = {
    "slurm": "Sample Factory's SLURM back-end, which submits one sbatch job per experiment",
    "ngc": "Sample Factory's NGC back-end, which submits one `ngc batch run` job per experiment",
}


class UnsupportedBackendError(NotImplementedError):
    """A back-end Sample Factory has and pysf does not implement yet."""


def _unsupported_backend_message(backend: str) -> str:
    return (
        f"--backend={backend} ({_UNSUPPORTED_BACKENDS[backend]}) is not supported by pysf yet. "
        f"Use --backend=processes to run the experiments as local processes (on a cluster node: one launcher per "
        f"node, with --max_parallel, --experiments_per_gpu and --num_gpus), or submit the commands yourself: "
        f"RUN_DESCRIPTION.generate_experiments(train_dir, makedirs=False) yields each experiment's command line."
    )


def _base_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pysf.launcher.run",
        description="Run the experiments of a RUN_DESCRIPTION module (hyperparameter sweeps, seeds, ...).",
    )
    parser.add_argument("--train_dir", default="./train_dir", type=str, help="Root folder of the experiments")
    parser.add_argument(
        "--run",
        default=None,
        type=str,
        help="Module that describes the run, e.g. my_project.experiments.cartpole_sweep: importable from the "
        "current folder or PYTHONPATH, and defining a global RUN_DESCRIPTION (a RunDescription).",
    )
    parser.add_argument(
        "--backend",
        default="processes",
        choices=list(BACKENDS),
        help="How experiments are run: processes = local subprocesses (the only back-end pysf implements so far)",
    )
    parser.add_argument("--pause_between", default=1, type=int, help="Seconds between starting two experiments")
    parser.add_argument(
        "--experiment_suffix", default="", type=str, help="Appended to the experiments' folder names"
    )
    return parser


def launcher_argparser(args: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The launcher's parser, with the flags of the back-end ``args`` select (default: ``processes``).

    An unknown ``--backend`` fails as argparse does, listing the valid ones.

    Raises:
        UnsupportedBackendError: ``--backend=slurm`` or ``--backend=ngc`` (not implemented by pysf); the
            message says what to use instead.
    """
    parser = _base_parser()
    partial_cfg, _ = parser.parse_known_args(list(args) if args is not None else [])
    if partial_cfg.backend in _UNSUPPORTED_BACKENDS:
        raise UnsupportedBackendError(_unsupported_backend_message(partial_cfg.backend))
    return add_os_parallelism_args(parser)


def parse_args(argv: Optional[Sequence[str]] = None) -> Config:
    """Parse the launcher's flags (``sys.argv[1:]`` by default)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return launcher_argparser(argv).parse_args(argv)


def _module_name(run: str) -> str:
    """``pkg.experiments.sweep`` as given, or the module name of a relative ``pkg/experiments/sweep.py``."""
    if run.endswith(".py"):
        return run[: -len(".py")].replace("\\", "/").strip("/").replace("/", ".")
    return run


class RunModuleError(Exception):
    """The ``--run`` module cannot be found or does not define a usable ``RUN_DESCRIPTION``."""


def _load_run_description(run: str) -> Any:
    """``RUN_DESCRIPTION`` of the module ``run`` names.

    Errors raised while the module itself runs (including an import it does that fails) propagate with their
    traceback; only a missing module or a missing/unusable ``RUN_DESCRIPTION`` become :class:`RunModuleError`.
    """
    module_name = _module_name(run)
    try:
        run_module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not (module_name == missing or module_name.startswith(missing + ".")):
            raise  # the module was found; something it imports is missing
        raise RunModuleError(
            f"Could not import the run module {module_name!r} ({exc}). It must be importable from the current "
            f"folder (run the launcher from the folder that holds its top-level package) or from PYTHONPATH."
        ) from exc
    run_description = getattr(run_module, "RUN_DESCRIPTION", None)
    if run_description is None:
        raise RunModuleError(
            f"The run module {module_name!r} ({getattr(run_module, '__file__', '?')}) defines no RUN_DESCRIPTION: "
            f"add RUN_DESCRIPTION = RunDescription(run_name, experiments=[Experiment(...), ...])"
        )
    if not callable(getattr(run_description, "generate_experiments", None)):
        raise RunModuleError(
            f"{module_name}.RUN_DESCRIPTION is a {type(run_description).__name__}, expected a "
            f"pysf.launcher.run_description.RunDescription"
        )
    return run_description


def _ensure_console_logging() -> None:
    # The "rl" logger has no handler of its own; give the launcher a console when nothing else configured one.
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pysf.launcher.run``: launch the run; returns the exit status (see the module docstring)."""
    _ensure_console_logging()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        launcher_cfg = parse_args(argv)
    except UnsupportedBackendError as exc:
        log.error("%s", exc)
        return ExperimentStatus.FAILURE

    if not launcher_cfg.run:
        log.error("--run is required: the module that defines RUN_DESCRIPTION, e.g. --run=my_project.experiments.sweep")
        return ExperimentStatus.FAILURE
    try:
        run_description = _load_run_description(launcher_cfg.run)
    except RunModuleError as exc:
        log.error("%s", exc)
        return ExperimentStatus.FAILURE

    run_description.experiment_suffix = launcher_cfg.experiment_suffix
    try:
        return run(run_description, launcher_cfg)
    except ValueError as exc:
        log.error("%s", exc)
        return ExperimentStatus.FAILURE


if __name__ == "__main__":
    sys.exit(main())
