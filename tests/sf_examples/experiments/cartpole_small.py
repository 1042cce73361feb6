"""A tiny seed sweep on pysf's native CartPole-v1, written the way Sample Factory experiment files are.

    python -m pysf.launcher.run --run=experiments.cartpole_small --backend=processes --max_parallel=1 --pause_between=0
"""

from pysf.launcher.run_description import Experiment, ParamGrid, RunDescription

_params = ParamGrid(
    [
        ("seed", [1, 2]),
    ]
)

_cli = (
    "python -m pysf.train "
    "--env=CartPole-v1 "
    "--train_for_env_steps=4096 "
    "--num_workers=1 "
    "--num_envs_per_worker=8 "
    "--batch_size=256 "
    "--rollout=32"
)

_experiments = [
    Experiment("cartpole_small", _cli, _params.generate_params(randomize=False)),
]

RUN_DESCRIPTION = RunDescription("cartpole_small", experiments=_experiments)
