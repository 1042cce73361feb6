"""Gymnasium envs whose outputs go wrong in one chosen way, for tests/algo/sampling/test_env_output_validation.py
(module-level, so that spawned env worker processes can import them)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# The env that goes wrong (env ids 0 and 1 live in worker 0 with 2 envs per worker) and the step at which it does.
FAULTY_ENV_ID = 1
FAULT_STEP = 3


class FaultyOutputEnv(gym.Env):
    """``Box(-1, 1, (3,))`` observations ``[env_id / 10, 0, 0]`` and reward 1.0 per step, episodes of 5 steps.

    From step ``FAULT_STEP`` of its life on (counted over episodes), env ``FAULTY_ENV_ID`` returns the ``fault``
    (every env does, for ``out_of_bounds``); ``raise`` raises two calls below ``step``.
    """

    def __init__(self, env_id: int, fault: str):
        self.observation_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.env_id = env_id
        self.fault = fault
        self.steps = 0
        self.episode_step = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.env_id / 10, 0.0, 0.0], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode_step = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        self.episode_step += 1
        obs, reward = self._obs(), 1.0
        faulty = self.env_id == FAULTY_ENV_ID or self.fault == "out_of_bounds"
        if faulty and self.steps >= FAULT_STEP:
            obs, reward = self._faulty_output(obs)
        return obs, reward, self.episode_step >= 5, False, {}

    def _faulty_output(self, obs: np.ndarray):
        fault = self.fault
        if fault == "complex_obs":
            return obs.astype(np.complex64) + 1j, 1.0
        if fault == "string_obs":
            return np.array(["a", "b", "c"]), 1.0
        if fault == "out_of_bounds":
            return np.array([self.env_id / 10, 5.0, -3.0], dtype=np.float32), 1.0
        if fault == "none_reward":
            return obs, None
        if fault == "array_reward":
            return obs, np.array([1.0, 2.0])
        if fault == "complex_reward":
            return obs, np.complex64(1 + 2j)
        if fault == "string_reward":
            return obs, "1.5"  # numpy would convert it to 1.5 without a word
        if fault == "scalar_array_rewards":  # accepted: a 1-element array, a 0-d array, a numpy scalar
            return obs, [np.array([1.0]), np.array(1.0), np.float32(1.0)][self.steps % 3]
        if fault == "raise":
            return self._advance_physics()
        if fault == "deep_raise":  # a traceback far over the 4000-byte error report
            return _descend_even(80)
        raise ValueError(f"unknown fault {fault!r}")

    def _advance_physics(self):
        return self._integrate_velocity(dt=0.1)

    def _integrate_velocity(self, dt: float):
        raise RuntimeError(f"FaultyOutputEnv {self.env_id}: velocity diverged at dt={dt}")


def _descend_even(depth: int):
    # Two functions calling each other: Python's traceback cannot fold the frames into "[Previous line repeated]".
    return _descend_odd(depth - 1)


def _descend_odd(depth: int):
    if depth <= 0:
        _hit_the_bottom()
    return _descend_even(depth - 1)


def _hit_the_bottom():
    raise RecursionError("the bottom of FaultyOutputEnv's descent")


def make_faulty_output_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    """``<name>__<fault>``: a FaultyOutputEnv with that fault; ``make_env_raise`` fails creating env FAULTY_ENV_ID."""
    env_id = 0 if env_config is None else env_config.env_id
    fault = full_env_name.rsplit("__", 1)[-1]
    if fault == "make_env_raise" and env_id == FAULTY_ENV_ID:
        _load_env_assets(env_id)
    return FaultyOutputEnv(env_id, fault)


def _load_env_assets(env_id: int):
    raise FileNotFoundError(f"assets of env {env_id} not found")
