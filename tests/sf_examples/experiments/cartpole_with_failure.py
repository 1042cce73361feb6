"""A run whose only experiment cannot start training (unknown env): the launcher must exit non-zero.

    python -m pysf.launcher.run --run=experiments.cartpole_with_failure --backend=processes --max_parallel=1
"""

from pysf.launcher.run_description import Experiment, ParamGrid, RunDescription

_params = ParamGrid([("env", ["NoSuchEnv-v0"])])

_experiments = [
    Experiment("bad_env", "python -m pysf.train --train_for_env_steps=4096", _params.generate_params()),
]

RUN_DESCRIPTION = RunDescription("cartpole_with_failure", experiments=_experiments)
