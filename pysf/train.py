"""Training entry points (Sample Factory's ``sample_factory.train``): ``run_rl(cfg)`` and ``python -m pysf.train``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Callable, List, Optional, Tuple

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.algo.utils.multiprocessing_utils import stop_signals_handled_by
from pysf.utils.typing import Config, StatusCode

log = logging.getLogger("pysf")


def make_runner(cfg: Config) -> Tuple[Config, Runner]:
    """The runner for ``cfg`` (experiment folder and resume logic happen in ``Runner.init``)."""
    return cfg, Runner(cfg)


def run_rl(cfg: Config) -> StatusCode:
    """Train until ``--train_for_env_steps`` / ``--train_for_seconds``; 0 success, 1 failure, 2 interrupted.

    A start-up problem (bad flag combination, unknown env, a model that does not compile, an experiment folder
    in use or not writable, unreadable checkpoints) is logged as one message saying what to change, and the
    status is 1; set ``PYSF_DEBUG=1`` to see its traceback. Ctrl-C or SIGTERM during start-up end the run with
    status 2, like during training.
    """
    cfg, runner = make_runner(cfg)
    try:
        with stop_signals_handled_by(signal.default_int_handler):  # SIGTERM during start-up acts like Ctrl-C
            status = runner.init()
    except KeyboardInterrupt:
        log.info("Interrupted during start-up: stopping (nothing was trained)")
        runner.close()
        return ExperimentStatus.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every start-up error ends as one message and status 1
        log.error("%s", startup_error_message(exc), exc_info=exc if os.environ.get("PYSF_DEBUG") else None)
        runner.close()
        return ExperimentStatus.FAILURE
    if status == ExperimentStatus.SUCCESS:
        status = runner.run()
    return status


def startup_error_message(exc: BaseException) -> str:
    """One actionable line (or paragraph) for an error raised while a run starts."""
    from pysf.algo.inference.compile import ModelCompileError, ModelVerificationError

    expected = (ValueError, ImportError, NotImplementedError, ModelCompileError, ModelVerificationError, OSError, RuntimeError)
    if isinstance(exc, expected):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc} (an unexpected error while starting; set PYSF_DEBUG=1 for its traceback)"


def parse_train_args(
    argv: Optional[List[str]] = None,
    evaluation: bool = False,
    add_extra_args: Optional[Callable[[argparse.ArgumentParser], None]] = None,
) -> Config:
    """Sample Factory's two-pass parse, with pysf's defaults for native envs applied in between
    (and a command's own flags from ``add_extra_args(parser)``)."""
    from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
    from pysf.envs.native_defaults import native_env_defaults

    parser, partial_cfg = parse_sf_args(argv, evaluation=evaluation)
    if add_extra_args is not None:
        add_extra_args(parser)
    parser.set_defaults(**native_env_defaults(getattr(partial_cfg, "env", None) or ""))
    return parse_full_cfg(parser, argv)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pysf.train --env ... [flags]``."""
    return run_rl(parse_train_args(argv))


if __name__ == "__main__":
    sys.exit(main())
