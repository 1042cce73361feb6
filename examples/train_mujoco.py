"""Train on MuJoCo (gymnasium's v5 envs) with Sample Factory's MuJoCo settings (its ``sf_examples/mujoco``).

    pip install 'pysf[mujoco]'
    python examples/train_mujoco.py --env mujoco_halfcheetah --experiment cheetah
    python -m pysf.enjoy --env mujoco_halfcheetah --experiment cheetah   # after registering, see main()

``--env mujoco_<name>`` is gymnasium's ``<Name>-v5`` (``mujoco_halfcheetah`` -> ``HalfCheetah-v5``, also
``hopper``, ``walker2d``, ``ant``, ``humanoid``, ``swimmer``, ...; Sample Factory 2.1.1 names gymnasium 0.29's
v4 envs). Sample Factory's names for two of them work too: ``mujoco_walker`` and ``mujoco_standup``.
"""

from __future__ import annotations

import sys
from typing import Optional

import gymnasium as gym

from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.envs.env_utils import register_env
from pysf.train import run_rl

MUJOCO_PREFIX = "mujoco_"
MUJOCO_VERSION = "v5"
# Sample Factory's short names whose gymnasium id is not the name capitalized.
SHORT_NAMES = {"walker": "walker2d", "standup": "humanoidstandup", "doublependulum": "inverteddoublependulum",
               "pendulum": "invertedpendulum"}


def gymnasium_id(env_name: str) -> str:
    """``mujoco_halfcheetah`` -> ``HalfCheetah-v5`` (matched case-insensitively among gymnasium's MuJoCo envs)."""
    if not env_name.startswith(MUJOCO_PREFIX):
        raise ValueError(f"MuJoCo envs are named {MUJOCO_PREFIX}<name> (e.g. mujoco_halfcheetah), got {env_name!r}")
    name = env_name[len(MUJOCO_PREFIX):].replace("_", "").lower()
    name = SHORT_NAMES.get(name, name)
    suffix = f"-{MUJOCO_VERSION}"
    for env_id, spec in gym.registry.items():
        entry = str(spec.entry_point)
        if env_id.endswith(suffix) and "mujoco" in entry and env_id[: -len(suffix)].lower() == name:
            return env_id
    raise ValueError(f"no gymnasium MuJoCo env {name!r} with version {MUJOCO_VERSION} (pip install 'pysf[mujoco]')")


def make_mujoco_env(env_name: str, cfg=None, env_config=None, render_mode: Optional[str] = None):
    """The gymnasium env, as Sample Factory's example makes it (no wrapper of its own)."""
    return gym.make(gymnasium_id(env_name), render_mode=render_mode)


def mujoco_defaults(parser) -> None:
    """Sample Factory's MuJoCo settings (its sf_examples/mujoco/mujoco_params.py): synchronous PPO, a 64x64 tanh
    MLP, 8 workers x 8 envs, 4 minibatches of 1024 per epoch, 2 epochs, linearly decaying learning rate."""
    parser.set_defaults(
        batched_sampling=False, num_workers=8, num_envs_per_worker=8, worker_num_splits=2,
        train_for_env_steps=10_000_000, encoder_mlp_layers=[64, 64], env_frameskip=1, nonlinearity="tanh",
        batch_size=1024, kl_loss_coeff=0.1, use_rnn=False, adaptive_stddev=False, policy_initialization="torch_default",
        reward_scale=1, rollout=64, max_grad_norm=3.5, num_epochs=2, num_batches_per_epoch=4, ppo_clip_ratio=0.2,
        value_loss_coeff=1.3, exploration_loss_coeff=0.0, learning_rate=0.00295, lr_schedule="linear_decay",
        shuffle_minibatches=False, gamma=0.99, gae_lambda=0.95, with_vtrace=False, recurrence=1,
        normalize_input=True, normalize_returns=True, value_bootstrap=True, experiment_summaries_interval=3,
        save_every_sec=15, serial_mode=False, async_rl=False,
    )


def parse_mujoco_args(argv=None, evaluation: bool = False):
    parser, _partial_cfg = parse_sf_args(argv=argv, evaluation=evaluation)
    mujoco_defaults(parser)
    return parse_full_cfg(parser, argv)


def main() -> int:
    """Script entry point."""
    cfg = parse_mujoco_args()
    register_env(cfg.env, make_mujoco_env)
    return run_rl(cfg)


if __name__ == "__main__":
    sys.exit(main())
