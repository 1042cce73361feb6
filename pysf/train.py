"""Training entry points (Sample Factory's ``sample_factory.train``): ``run_rl(cfg)`` and ``python -m pysf.train``."""

from __future__ import annotations

import sys
from typing import List, Optional, Tuple

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.utils.typing import Config, StatusCode


def make_runner(cfg: Config) -> Tuple[Config, Runner]:
    """The runner for ``cfg`` (resume logic happens in ``Runner.init``)."""
    return cfg, Runner(cfg)


def run_rl(cfg: Config) -> StatusCode:
    """Train until ``--train_for_env_steps`` / ``--train_for_seconds``; 0 success, 1 failure, 2 interrupted."""
    cfg, runner = make_runner(cfg)
    status = runner.init()
    if status == ExperimentStatus.SUCCESS:
        status = runner.run()
    return status


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pysf.train --env ... [flags]``."""
    from pysf.cfg.arguments import parse_args

    cfg = parse_args(argv)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
