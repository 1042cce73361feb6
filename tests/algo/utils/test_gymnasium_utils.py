"""pysf.algo.utils.gymnasium_utils: legacy OpenAI Gym envs/spaces as Gymnasium ones.

The ``gym`` package is not installed here, so a small stand-in module with gym's class layout is put into
``sys.modules`` (that is how the conversion recognizes gym objects).
"""

from __future__ import annotations

import logging
import sys
import types

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import pysf.algo.utils.gymnasium_utils as gu
from pysf.algo.utils.gymnasium_utils import (
    GymV21CompatibilityEnv,
    GymV26CompatibilityEnv,
    convert_space,
    patch_non_gymnasium_env,
)


def make_fake_gym() -> types.ModuleType:
    gym = types.ModuleType("gym")
    gym_spaces = types.ModuleType("gym.spaces")

    class Space:
        pass

    class Discrete(Space):
        def __init__(self, n, start=0):
            self.n, self.start = n, start

    class Box(Space):
        def __init__(self, low, high, shape, dtype=np.float32):
            self.low = np.full(shape, low, dtype=dtype)
            self.high = np.full(shape, high, dtype=dtype)
            self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    class MultiDiscrete(Space):
        def __init__(self, nvec, dtype=np.int64):
            self.nvec, self.dtype = np.asarray(nvec, dtype=dtype), np.dtype(dtype)

    class MultiBinary(Space):
        def __init__(self, n):
            self.n = n

    class Tuple(Space):
        def __init__(self, spaces_):
            self.spaces = tuple(spaces_)

    class Dict(Space):
        def __init__(self, spaces_):
            self.spaces = dict(spaces_)

    class Sequence(Space):
        def __init__(self, feature_space):
            self.feature_space = feature_space

    class Graph(Space):
        def __init__(self, node_space, edge_space):
            self.node_space, self.edge_space = node_space, edge_space

    class Text(Space):
        def __init__(self, max_length, min_length=1, charset="abc"):
            self.max_length, self.min_length, self.character_set = max_length, min_length, frozenset(charset)

    class Unsupported(Space):
        pass

    for cls in (Space, Discrete, Box, MultiDiscrete, MultiBinary, Tuple, Dict, Sequence, Graph, Text, Unsupported):
        setattr(gym_spaces, cls.__name__, cls)

    class Env:
        metadata = {"render_modes": ["rgb_array"]}

        @property
        def unwrapped(self):
            return self

    gym.spaces = gym_spaces
    gym.Env = Env
    return gym


@pytest.fixture
def gym(monkeypatch):
    fake = make_fake_gym()
    monkeypatch.setitem(sys.modules, "gym", fake)
    monkeypatch.setitem(sys.modules, "gym.spaces", fake.spaces)
    return fake


@pytest.fixture
def no_gym(monkeypatch):
    monkeypatch.delitem(sys.modules, "gym", raising=False)
    monkeypatch.setattr(gu, "gym_installed", False)


# ---- spaces ----------------------------------------------------------------------------------------------


def test_gymnasium_spaces_pass_through(no_gym):
    space = spaces.Box(-1, 1, (3,))
    assert convert_space(space) is space


def test_converts_every_gym_space_type(gym):
    s = gym.spaces
    cases = [
        (s.Discrete(5), spaces.Discrete(5)),
        (s.Discrete(3, start=-1), spaces.Discrete(3, start=-1)),
        (s.Box(-2.0, 3.0, (2, 3)), spaces.Box(-2.0, 3.0, (2, 3), dtype=np.float32)),
        (s.Box(0, 255, (4,), dtype=np.uint8), spaces.Box(0, 255, (4,), dtype=np.uint8)),
        (s.MultiDiscrete([3, 4]), spaces.MultiDiscrete([3, 4])),
        (s.MultiBinary(6), spaces.MultiBinary(6)),
        (s.Tuple([s.Discrete(2), s.Box(0.0, 1.0, (1,))]), spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (1,))))),
        (s.Dict({"obs": s.Box(-1.0, 1.0, (2,)), "id": s.Discrete(4)}), spaces.Dict({"obs": spaces.Box(-1.0, 1.0, (2,)), "id": spaces.Discrete(4)})),
        (s.Sequence(s.Discrete(3)), spaces.Sequence(spaces.Discrete(3))),
        (s.Text(8, min_length=2, charset="xyz"), spaces.Text(8, min_length=2, charset="xyz")),
    ]  # fmt: skip
    for gym_space, expected in cases:
        converted = convert_space(gym_space)
        assert isinstance(converted, gymnasium.Space) and type(converted) is type(expected)
        assert converted == expected, (gym_space, converted, expected)
    graph = convert_space(s.Graph(s.Box(-1.0, 1.0, (3,)), s.Discrete(2)))
    assert isinstance(graph, spaces.Graph)
    assert graph.node_space == spaces.Box(-1.0, 1.0, (3,)) and graph.edge_space == spaces.Discrete(2)
    assert convert_space(s.Graph(s.Discrete(4), None)).edge_space is None


def test_foreign_space_without_gym(no_gym):
    with pytest.raises(ValueError, match="not installed"):
        convert_space(object())


def test_unsupported_gym_space(gym):
    with pytest.raises(NotImplementedError, match="Unsupported"):
        convert_space(gym.spaces.Unsupported())
    with pytest.raises(ValueError, match="not a Gymnasium space"):
        convert_space([1, 2])


# ---- envs ------------------------------------------------------------------------------------------------


class GymnasiumEnv(gymnasium.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


def test_gymnasium_env_is_returned_unchanged(no_gym):
    env = GymnasiumEnv(spaces.Box(-1, 1, (2,)), spaces.Discrete(2))
    assert patch_non_gymnasium_env(env) is env


def test_gymnasium_env_with_gym_spaces_gets_them_converted(gym):
    env = GymnasiumEnv(gym.spaces.Box(-1.0, 1.0, (2,)), gym.spaces.Discrete(3))
    assert patch_non_gymnasium_env(env) is env
    assert env.observation_space == spaces.Box(-1.0, 1.0, (2,)) and env.action_space == spaces.Discrete(3)


def test_read_only_spaces_log_a_warning(gym, caplog):
    class ReadOnly(gymnasium.Env):
        @property
        def observation_space(self):
            return gym.spaces.Discrete(2)

        @property
        def action_space(self):
            return gym.spaces.Discrete(2)

    env = ReadOnly()
    with caplog.at_level(logging.WARNING, logger="rl"):
        assert patch_non_gymnasium_env(env) is env
    assert any("Could not patch the spaces" in r.getMessage() for r in caplog.records)


def make_v26_env(gym):
    class V26Env(gym.Env):
        render_mode = "rgb_array"

        def __init__(self):
            self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,))
            self.action_space = gym.spaces.Discrete(2)
            self.calls, self.num_agents, self.is_multiagent = [], 2, True

        def reset(self, seed=None, options=None):
            self.calls.append(("reset", seed, options))
            return np.zeros(2, dtype=np.float32), {"reset": True}

        def step(self, action):
            self.calls.append(("step", action))
            return np.ones(2, dtype=np.float32), 1.5, False, True, {"k": 1}

        def render(self):
            return "frame"

        def close(self):
            self.calls.append(("close",))

    return V26Env()


def test_gym_v26_env(gym):
    legacy = make_v26_env(gym)
    with pytest.warns(UserWarning, match="OpenAI Gym"):
        env = patch_non_gymnasium_env(legacy)
    assert isinstance(env, GymV26CompatibilityEnv) and isinstance(env, gymnasium.Env)
    assert env.observation_space == spaces.Box(-1.0, 1.0, (2,)) and env.action_space == spaces.Discrete(2)
    assert (env.num_agents, env.is_multiagent) == (2, True), "multi-agent attributes are kept"
    assert env.render_mode == "rgb_array" and env.metadata == {"render_modes": ["rgb_array"]}
    obs, info = env.reset(seed=3, options={"o": 1})
    assert info == {"reset": True} and legacy.calls[-1] == ("reset", 3, {"o": 1})
    assert env.step(1) == (pytest.approx(np.ones(2)), 1.5, False, True, {"k": 1})
    assert env.render() == "frame"
    env.close()
    assert legacy.calls[-1] == ("close",)


def make_v21_env(gym, truncate: bool):
    class V21Env(gym.Env):
        def __init__(self):
            self.observation_space = gym.spaces.Discrete(4)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (1,))
            self.seeds, self.render_modes = [], []

        def seed(self, seed=None):
            self.seeds.append(seed)

        def reset(self):
            return 0

        def step(self, action):
            info = {"TimeLimit.truncated": True} if truncate else {"other": 1}
            return 1, 0.5, True, info

        def render(self, mode="human"):
            self.render_modes.append(mode)
            return mode

        def close(self):
            pass

    return V21Env()


def test_gym_v21_env(gym):
    legacy = make_v21_env(gym, truncate=True)
    with pytest.warns(UserWarning):
        env = patch_non_gymnasium_env(legacy)
    assert isinstance(env, GymV21CompatibilityEnv)
    assert env.observation_space == spaces.Discrete(4) and env.action_space == spaces.Box(-1.0, 1.0, (1,))
    assert env.reset() == (0, {}) and legacy.seeds == []
    assert env.reset(seed=11) == (0, {}) and legacy.seeds == [11], "reset(seed=...) seeds the old API first"
    # done with TimeLimit.truncated -> truncated (the key is consumed), else terminated
    assert env.step(np.zeros(1)) == (1, 0.5, False, True, {})
    terminating = GymV21CompatibilityEnv(make_v21_env(gym, truncate=False))
    assert terminating.step(np.zeros(1)) == (1, 0.5, True, False, {"other": 1})
    assert not hasattr(env, "num_agents")


def test_gym_v21_env_human_rendering(gym):
    legacy = make_v21_env(gym, truncate=False)
    env = GymV21CompatibilityEnv(legacy, render_mode="human")
    env.reset()
    env.step(np.zeros(1))
    assert legacy.render_modes == ["human", "human"]


class DuckEnv:
    def reset(self):
        return 0


def test_non_env_objects_are_rejected(gym):
    with pytest.raises(ValueError, match="not a Gymnasium environment"):
        patch_non_gymnasium_env(DuckEnv())


def test_non_env_objects_are_rejected_without_gym(no_gym):
    with pytest.raises(ValueError, match="when gym is installed"):
        patch_non_gymnasium_env(DuckEnv())
