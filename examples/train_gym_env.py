"""Train on a gymnasium env through the Python env path (Sample Factory's ``sf_examples/train_gym_env.py``).

    python examples/train_gym_env.py --env CartPole-v1 --experiment gym_cartpole

The env is registered with a Sample Factory-style factory, so pysf runs it in env worker processes that
write observations into shared memory (the C++ sampler batches inference for all of them). pysf's native
CartPole would be used for an unregistered ``--env CartPole-v1``; registering a factory keeps your wrappers.
"""

import sys

import gymnasium as gym

from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.train import run_rl


def make_gym_env_func(full_env_name, cfg=None, env_config=None, render_mode=None):
    """Sample Factory's 4-argument env factory."""
    return gym.make(full_env_name, render_mode=render_mode)


def register_gym_envs(env_name: str) -> None:
    """Register the env id given on the command line."""
    register_env(env_name, make_gym_env_func)


def main() -> int:
    """Script entry point."""
    parser, partial_cfg = parse_sf_args()
    register_gym_envs(partial_cfg.env)
    # Sample Factory's documented CartPole settings, plus pysf's small-MLP defaults for classic control.
    parser.set_defaults(
        use_rnn=False,
        recurrence=1,
        encoder_mlp_layers=[64, 64],
        nonlinearity="tanh",
        num_workers=2,
        num_envs_per_worker=32,
        batch_size=2048,
        num_batches_per_epoch=2,
        num_epochs=2,
        learning_rate=3e-3,
        ppo_clip_ratio=0.2,
        exploration_loss_coeff=0.0,
        max_grad_norm=1.0,
        with_vtrace=False,
        train_for_env_steps=500_000,
    )
    cfg = parse_full_cfg(parser)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
