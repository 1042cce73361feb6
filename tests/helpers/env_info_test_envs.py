"""Env factories for tests/algo/utils/test_env_info.py, at module level so that a spawned process can import
them (the spawned process gets the test's sys.path, which includes tests/)."""

from __future__ import annotations

import os
from typing import Any, Dict

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pysf.envs.env_utils import RewardShapingInterface

# set in the environment to make the factories raise (inherited by spawned processes)
FAIL_ENV_VAR = "PYSF_TEST_ENV_INFO_FACTORY_FAILS"

# factory calls made in this process
factory_calls = {"count": 0}


class ShapedTwoAgentEnv(gym.Env, RewardShapingInterface):
    """Two agents, Tuple actions, a reward-shaping scheme; never stepped by these tests."""

    def __init__(self, episode_len: int = 10):
        self.num_agents = 2
        self.is_multiagent = True
        self.observation_space = spaces.Box(-1.0, 1.0, (5,), dtype=np.float32)
        self.action_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)))
        self.episode_len = episode_len

    def reset(self, *, seed=None, options=None):
        return [np.zeros(5, dtype=np.float32)] * 2, [{}, {}]

    def step(self, actions):
        raise NotImplementedError("not stepped in these tests")

    def get_default_reward_shaping(self) -> Dict[str, Any]:
        return dict(goal=1.0, time=-0.1)

    def set_reward_shaping(self, reward_shaping: Dict[str, Any], agent_idx) -> None:
        pass


class DictObsEnv(gym.Env):
    """Single agent with dict observations."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            pos=spaces.Box(-1.0, 1.0, (2,), dtype=np.float32), img=spaces.Box(0, 255, (1, 4, 4), dtype=np.uint8)
        )
        self.action_space = spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def _count_and_maybe_fail() -> None:
    factory_calls["count"] += 1
    if os.environ.get(FAIL_ENV_VAR):
        raise RuntimeError("this factory fails on purpose")


def make_shaped_two_agent_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    _count_and_maybe_fail()
    return ShapedTwoAgentEnv(episode_len=getattr(cfg, "custom_episode_len", 10))


def make_dict_obs_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    _count_and_maybe_fail()
    return gym.wrappers.TimeLimit(DictObsEnv(), max_episode_steps=7)
