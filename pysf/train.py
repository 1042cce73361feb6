"""Training entry points (Sample Factory's ``sample_factory.train``): ``run_rl(cfg)`` and ``python -m pysf.train``."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, List, Optional, Tuple

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.utils.typing import Config, StatusCode


def make_runner(cfg: Config) -> Tuple[Config, Runner]:
    """The runner for ``cfg`` (experiment folder and resume logic happen in ``Runner.init``)."""
    return cfg, Runner(cfg)


def run_rl(cfg: Config) -> StatusCode:
    """Train until ``--train_for_env_steps`` / ``--train_for_seconds``; 0 success, 1 failure, 2 interrupted.

    A configuration problem (bad flag combination, unknown env, model that does not compile) is logged
    with what to change, and the status is 1.
    """
    from pysf.algo.inference.compile import ModelCompileError, ModelVerificationError

    cfg, runner = make_runner(cfg)
    try:
        status = runner.init()
    except (ValueError, ImportError, NotImplementedError, ModelCompileError, ModelVerificationError) as exc:
        logging.getLogger("pysf").error("%s", exc)
        runner.close()
        return ExperimentStatus.FAILURE
    if status == ExperimentStatus.SUCCESS:
        status = runner.run()
    return status


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
