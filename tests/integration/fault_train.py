"""``python tests/fault_train.py <pysf.train flags>``: ``python -m pysf.train`` with the test envs registered.

The fault-tolerance tests run training as a separate process (exit status, signals, surviving children) on envs
that misbehave on purpose; the envs come from ``tests/helpers`` (the test puts ``tests/`` on ``PYTHONPATH``, which spawned env workers
inherit).
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from helpers import sampler_test_envs, validation_test_envs
from pysf.envs.env_utils import register_env
from pysf.train import main


class TextActionEnv(gym.Env):
    """An env with an action space pysf cannot train (text)."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = spaces.Text(8)

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


def make_text_action_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return TextActionEnv()


def register_test_envs() -> None:
    for failure in ("hang", "raise"):
        register_env(f"faulty_env_{failure}", sampler_test_envs.make_faulty_env)
    register_env("counting_env", sampler_test_envs.make_counting_env)
    register_env("text_action_env", make_text_action_env)
    for fault in ("none_reward", "complex_obs", "raise"):
        register_env(f"faulty_output__{fault}", validation_test_envs.make_faulty_output_env)


if __name__ == "__main__":
    register_test_envs()
    sys.exit(main(sys.argv[1:]))
