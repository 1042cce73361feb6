"""Stable-Baselines3 PPO on CartPole-v1 with rl-zoo's hyperparameters; runs inside the SB3 peer venv.

    <sb3 venv>/bin/python benchmarks/peers/sb3_cartpole.py --env_steps 1000000 --seed 0 [--max_seconds 180]

rl-zoo (hyperparams/ppo.yml, CartPole-v1): 8 envs (DummyVecEnv), MlpPolicy, n_steps 32, batch_size 256,
gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2. The linear
schedules decay over the whole ``--env_steps`` budget, as rl-zoo does over its ``n_timesteps``.

Prints one JSON line per PPO rollout (``{"t": seconds since this process started, "steps": env steps,
"reward": mean raw return of the last 100 episodes or null}``) and a final ``{"done": ...}`` line; the
benchmark driver (benchmarks/compare.py) reads them. ``--max_seconds`` stops training early so that the
whole benchmark fits its time budget; the final line says whether that happened.
"""

from __future__ import annotations

import time

PROCESS_START = time.time()  # before the heavy imports, so start-up counts as it does for the other systems

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402


def linear_schedule(initial: float):
    """rl-zoo's ``lin_<value>``: the value times the fraction of training that remains."""
    return lambda progress_remaining: progress_remaining * initial


class CurveLogger(BaseCallback):
    """One JSON line per rollout; stops training at the time limit."""

    def __init__(self, max_seconds: float):
        super().__init__()
        self.max_seconds = max_seconds
        self.stopped_early = False

    def _on_step(self) -> bool:
        return not self.stopped_early  # False ends learn() at the first step of the next rollout

    def _on_rollout_end(self) -> None:
        episodes = self.model.ep_info_buffer  # the last 100 episodes (stats_window_size), raw returns (Monitor)
        reward = float(np.mean([e["r"] for e in episodes])) if len(episodes) >= episodes.maxlen else None
        elapsed = time.time() - PROCESS_START
        print(json.dumps({"t": elapsed, "steps": self.num_timesteps, "reward": reward}), flush=True)
        self.stopped_early = elapsed > self.max_seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env_steps", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max_seconds", type=float, default=float("inf"))
    args = parser.parse_args()

    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=linear_schedule(1e-3), clip_range=linear_schedule(0.2), seed=args.seed, device="cpu", verbose=0,
    )
    logger = CurveLogger(args.max_seconds)
    model.learn(total_timesteps=args.env_steps, callback=logger)
    print(json.dumps({"done": True, "t": time.time() - PROCESS_START, "steps": model.num_timesteps,
                      "stopped_at_time_limit": logger.stopped_early}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
