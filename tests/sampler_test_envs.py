"""Instrumented gymnasium envs for the sampler tests (module-level so env worker processes can import them)."""

from __future__ import annotations

import os
import signal

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CountingEnv(gym.Env):
    """Observation ``[env_id, counter, episode_step]``; ``counter`` counts every step of this env ever taken.

    Episodes terminate after ``4 + env_id % 5`` steps, so episode ends fall inside and across rollouts.
    """

    def __init__(self, env_id: int = 0, fail_after: int = -1, failure: str = "raise"):
        self.observation_space = spaces.Box(0, np.inf, (3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.env_id = env_id
        self.counter = 0
        self.episode_step = 0
        self.episode_length = 4 + env_id % 5
        self.fail_after = fail_after
        self.failure = failure

    def _obs(self):
        return np.array([self.env_id, self.counter, self.episode_step], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.counter += 1
        self.episode_step += 1
        if 0 <= self.fail_after <= self.counter:
            return self._fail()
        terminated = self.episode_step >= self.episode_length
        info = {"episode_extra_stats": {"last_counter": float(self.counter)}} if terminated else {}
        return self._obs(), 1.0, terminated, False, info

    def _fail(self):
        if self.failure == "raise":
            raise RuntimeError(f"CountingEnv {self.env_id} exploded on purpose")
        if self.failure == "shape":
            return np.zeros(5, dtype=np.float32), 1.0, False, False, {}
        if self.failure == "nan":
            return np.array([np.nan, 0, 0], dtype=np.float32), 1.0, False, False, {}
        if self.failure == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.failure == "hang":
            import time

            time.sleep(3600)
        raise ValueError(self.failure)


def make_counting_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    env_id = 0 if env_config is None else env_config.env_id
    return CountingEnv(env_id)


def make_faulty_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    env_id = 0 if env_config is None else env_config.env_id
    failure = full_env_name.split("_")[-1]
    # Only one env fails, after a few steps, to check the error names the right worker.
    return CountingEnv(env_id, fail_after=30 if env_id == 5 else -1, failure=failure)
