"""pysf.envs.env_utils: Sample Factory's env-side hooks (reward shaping, training info) found through wrappers,
``retry``, ``num_env_steps`` and ``register_env``."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any, Dict

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from pysf.algo.utils.context import global_env_registry
from pysf.envs.env_utils import (
    EnvCriticalError,
    RewardShapingInterface,
    TrainingInfoInterface,
    find_training_info_interface,
    find_wrapper_interface,
    get_default_reward_shaping,
    num_env_steps,
    register_env,
    retry,
    set_reward_shaping,
    set_training_info,
    vizdoom_available,
    wrapper_layers,
)


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


class ShapedEnv(gym.Env, RewardShapingInterface, TrainingInfoInterface):
    """Two agents' worth of reward-shaping schemes; records every call."""

    def __init__(self):
        TrainingInfoInterface.__init__(self)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.schemes = [dict(win=1.0, step=-0.01), dict(win=1.0, step=-0.01)]
        self.calls = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}

    def get_default_reward_shaping(self) -> Dict[str, Any]:
        return dict(win=1.0, step=-0.01)

    def set_reward_shaping(self, reward_shaping: Dict[str, Any], agent_idx) -> None:
        self.calls.append(agent_idx)
        indices = range(len(self.schemes))[agent_idx] if isinstance(agent_idx, slice) else [agent_idx]
        for i in indices:
            self.schemes[i] = reward_shaping


class PlainEnv(gym.Env):
    def __init__(self):
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


class ShapingWrapper(gym.Wrapper, RewardShapingInterface):
    """A wrapper that owns the reward shaping (as Sample Factory's Doom reward-shaping wrapper does)."""

    def __init__(self, env):
        super().__init__(env)
        self.scheme = dict(kills=2.0)

    def get_default_reward_shaping(self):
        return dict(kills=2.0)

    def set_reward_shaping(self, reward_shaping, agent_idx):
        self.scheme = reward_shaping


class InnerSimulatorEnv(gym.Env, RewardShapingInterface):
    """An env (not a wrapper) that keeps its simulator in ``self.env``, like Sample Factory's IsaacGym example."""

    def __init__(self, simulator):
        self.env = simulator
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def get_default_reward_shaping(self):
        return dict(outer=1.0)


def test_interfaces_are_found_under_gymnasium_wrappers():
    base = ShapedEnv()
    env = TimeLimit(gym.wrappers.ClipReward(base, -1.0, 1.0), max_episode_steps=10)

    assert find_wrapper_interface(env, RewardShapingInterface) is base
    assert find_training_info_interface(env) is base
    assert find_wrapper_interface(TimeLimit(PlainEnv(), 5), RewardShapingInterface) is None
    assert find_training_info_interface(PlainEnv()) is None
    assert [type(layer) for layer in wrapper_layers(env)] == [TimeLimit, gym.wrappers.ClipReward, ShapedEnv]


def test_the_outermost_implementation_wins():
    env = TimeLimit(ShapingWrapper(ShapedEnv()), max_episode_steps=10)
    wrapper = env.env
    assert find_wrapper_interface(env, RewardShapingInterface) is wrapper
    assert get_default_reward_shaping(env) == dict(kills=2.0)
    set_reward_shaping(env, dict(kills=5.0), 0)
    assert wrapper.scheme == dict(kills=5.0)
    assert env.unwrapped.calls == [], "the inner env's interface is shadowed by the wrapper's"


def test_an_env_is_not_unwrapped_past_itself():
    # InnerSimulatorEnv is its own `unwrapped`: its `env` attribute is not a wrapper layer to search.
    env = InnerSimulatorEnv(simulator=ShapedEnv())
    assert find_training_info_interface(env) is None
    assert get_default_reward_shaping(env) == dict(outer=1.0)


def test_objects_without_wrapper_attributes_are_searched_alone():
    class Duck(TrainingInfoInterface):
        pass

    duck = Duck()
    assert find_training_info_interface(duck) is duck
    assert find_wrapper_interface(object(), RewardShapingInterface) is None


def test_reward_shaping_get_and_set_for_one_agent_and_a_range():
    base = ShapedEnv()
    env = TimeLimit(base, max_episode_steps=10)
    assert get_default_reward_shaping(env) == dict(win=1.0, step=-0.01)

    set_reward_shaping(env, dict(win=2.0), 1)
    assert base.schemes == [dict(win=1.0, step=-0.01), dict(win=2.0)]
    set_reward_shaping(env, dict(win=3.0), slice(0, 2))
    assert base.schemes == [dict(win=3.0), dict(win=3.0)]
    assert base.calls == [1, slice(0, 2)]

    set_reward_shaping(env, None, 0)  # no scheme: the env is not called
    assert base.calls == [1, slice(0, 2)]

    assert get_default_reward_shaping(PlainEnv()) is None
    set_reward_shaping(PlainEnv(), dict(win=1.0), 0)  # no interface: nothing to do, no error


def test_unimplemented_reward_shaping_methods_say_which_class():
    class Half(RewardShapingInterface):
        pass

    with pytest.raises(NotImplementedError, match="Half"):
        get_default_reward_shaping(Half())
    with pytest.raises(NotImplementedError, match="Half"):
        set_reward_shaping(Half(), dict(a=1.0), 0)


def test_training_info_reaches_the_env():
    base = ShapedEnv()
    assert base.training_info == {}
    interface = find_training_info_interface(TimeLimit(base, max_episode_steps=3))
    info = dict(approx_total_training_steps=1234, policy_id=0, reward_shaping=None)
    set_training_info(interface, info)
    assert base.training_info == info

    set_training_info(None, info)  # env without the interface: no-op


def test_retry_retries_the_given_exception_then_gives_up(caplog):
    calls = []

    @retry(ValueError, num_attempts=3, sleep_time=0)
    def flaky(succeed_on: int) -> str:
        """doc"""
        calls.append(1)
        if len(calls) < succeed_on:
            raise ValueError(f"attempt {len(calls)}")
        return "done"

    assert flaky.__name__ == "flaky" and flaky.__doc__ == "doc"
    with caplog.at_level(logging.ERROR, logger="rl"):
        assert flaky(3) == "done"
    assert len(calls) == 3
    assert sum("trying again" in r.getMessage() for r in caplog.records) == 2

    calls.clear()
    with pytest.raises(ValueError, match="attempt 3"):
        flaky(10)
    assert len(calls) == 3


def test_retry_lets_other_exceptions_through_at_once():
    calls = []

    @retry(ValueError, num_attempts=5, sleep_time=0)
    def broken():
        calls.append(1)
        raise KeyError("not retried")

    with pytest.raises(KeyError):
        broken()
    assert len(calls) == 1
    with pytest.raises(ValueError, match="at least one attempt"):
        retry(num_attempts=0)


def test_num_env_steps_counts_frames():
    assert num_env_steps([]) == 0
    assert num_env_steps([{}, {}, {}]) == 3
    assert num_env_steps([{"num_frames": 4}, {}, {"num_frames": 4, "other": 1}]) == 9


def test_register_env_checks_and_overwrites(caplog):
    def make_a(full_env_name, cfg, env_config, render_mode):
        return PlainEnv()

    def make_b(full_env_name, cfg, env_config, render_mode):
        return PlainEnv()

    register_env("plain", make_a)
    with caplog.at_level(logging.WARNING, logger="rl"):
        register_env("plain", make_b)
    assert global_env_registry()["plain"] is make_b
    assert any("already registered" in r.getMessage() for r in caplog.records)
    with pytest.raises(TypeError, match="callable"):
        register_env("bad", "not a function")


def test_vizdoom_available_and_critical_error():
    assert vizdoom_available() == (importlib.util.find_spec("vizdoom") is not None)
    assert issubclass(EnvCriticalError, Exception)
