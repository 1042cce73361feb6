"""pysf.algo.utils.make_env: envs as Sample Factory's samplers see them (batched: dicts of tensors; non-batched:
per-agent lists; single-agent envs as 1-agent envs that reset themselves; sequential vectorization)."""

from __future__ import annotations

from typing import Any, Dict

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.utils.make_env import (
    BatchedMultiAgentWrapper,
    BatchedVecEnv,
    NonBatchedMultiAgentWrapper,
    NonBatchedVecEnv,
    SequentialVectorizeWrapper,
    get_multiagent_info,
    is_multiagent_env,
    make_env_func_batched,
    make_env_func_non_batched,
)
from pysf.cfg.arguments import default_cfg
from pysf.envs.env_utils import (
    RewardShapingInterface,
    TrainingInfoInterface,
    find_training_info_interface,
    register_env,
    set_reward_shaping,
    set_training_info,
)


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


class EpisodeEnv(gym.Env, TrainingInfoInterface, RewardShapingInterface):
    """Single agent. Observation ``[step in episode, last action, env_id]``; reward = the action; the episode
    terminates after ``length`` steps. ``reset`` reports how many resets happened and the seed it got."""

    def __init__(self, length: int = 3, env_id: int = 0):
        TrainingInfoInterface.__init__(self)
        self.observation_space = spaces.Box(0.0, 100.0, (3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.length, self.env_id = length, env_id
        self.t = 0
        self.resets = 0
        self.seeds = []
        self.shaping = []

    def _obs(self, action: int = 0) -> np.ndarray:
        return np.array([self.t, action, self.env_id], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        self.t = 0
        self.resets += 1
        return self._obs(), {"resets": self.resets}

    def step(self, action):
        action = int(action)
        self.t += 1
        return self._obs(action), float(action), self.t >= self.length, False, {"t": self.t}

    def get_default_reward_shaping(self) -> Dict[str, Any]:
        return dict(action=1.0)

    def set_reward_shaping(self, reward_shaping, agent_idx) -> None:
        self.shaping.append((reward_shaping, agent_idx))


class DictObsEnv(gym.Env):
    """Single agent with dict observations (a float vector and a uint8 image)."""

    def __init__(self):
        self.observation_space = spaces.Dict(
            pos=spaces.Box(-1.0, 1.0, (2,), dtype=np.float32), img=spaces.Box(0, 255, (1, 3, 3), dtype=np.uint8)
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.t = 0

    def _obs(self):
        return dict(pos=np.full(2, self.t / 10, dtype=np.float32), img=np.full((1, 3, 3), self.t, dtype=np.uint8))

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert action.shape == (2,)
        self.t += 1
        return self._obs(), 0.5, False, self.t >= 2, {}


class TwoAgentEnv(gym.Env):
    """Two agents (Sample Factory's multi-agent convention): per-agent lists in and out, own resets after
    ``length`` steps. Agent i's observation is ``[i, step, its last action]``; its reward is its action."""

    def __init__(self, length: int = 2, dict_obs: bool = False):
        self.num_agents = 2
        self.is_multiagent = True
        box = spaces.Box(0.0, 100.0, (3,), dtype=np.float32)
        self.observation_space = spaces.Dict(obs=box) if dict_obs else box
        self.action_space = spaces.Discrete(4)
        self.length, self.dict_obs = length, dict_obs
        self.t = 0

    def _obs(self, actions=(0, 0)):
        obs = [np.array([i, self.t, actions[i]], dtype=np.float32) for i in range(2)]
        return [dict(obs=o) for o in obs] if self.dict_obs else obs

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), [dict(agent=i) for i in range(2)]

    def step(self, actions):
        actions = [int(a) for a in actions]
        self.t += 1
        done = self.t >= self.length
        obs = self._obs(actions)
        if done:
            self.t = 0
            obs = self._obs()
        return obs, [float(a) for a in actions], [done, done], [False, False], [dict(agent=i) for i in range(2)]


def make_episode_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return EpisodeEnv(length=3, env_id=0 if env_config is None else env_config.env_id)


def make_two_agent_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return TwoAgentEnv()


def cfg_for(env_name: str):
    return default_cfg(env=env_name)


def test_single_agent_env_batched_outputs_are_tensors_with_an_agent_dimension():
    register_env("episode_env", make_episode_env)
    env = make_env_func_batched(cfg_for("episode_env"), env_config=None)
    assert isinstance(env, BatchedVecEnv)
    assert (env.num_agents, env.is_multiagent) == (1, True)
    assert env.observation_space == spaces.Dict(obs=spaces.Box(0.0, 100.0, (3,), dtype=np.float32))
    assert env.action_space == spaces.Discrete(3)

    obs, infos = env.reset()
    assert list(obs) == ["obs"]
    assert isinstance(obs["obs"], torch.Tensor) and obs["obs"].shape == (1, 3) and obs["obs"].dtype == torch.float32
    assert infos == [{"resets": 1}]

    obs, rew, terminated, truncated, infos = env.step(np.array([2]))
    assert obs["obs"].tolist() == [[1.0, 2.0, 0.0]]
    assert rew.shape == (1,) and rew.dtype.is_floating_point and rew.tolist() == [2.0]
    assert terminated.dtype == torch.bool and terminated.tolist() == [False]
    assert truncated.dtype == torch.bool and truncated.tolist() == [False]
    assert infos == [{"t": 1}]


def test_single_agent_env_resets_itself_and_reports_the_reset_info():
    register_env("episode_env", make_episode_env)
    env = make_env_func_batched(cfg_for("episode_env"), env_config=None)
    env.reset()
    env.step(np.array([1]))
    env.step(np.array([1]))
    obs, rew, terminated, truncated, infos = env.step(np.array([2]))  # third step: the episode ends
    assert terminated.tolist() == [True] and rew.tolist() == [2.0]
    assert obs["obs"].tolist() == [[0.0, 0.0, 0.0]], "the observation is the first of the next episode"
    assert infos == [{"t": 3, "reset_info": {"resets": 2}}]
    obs, _rew, terminated, _truncated, infos = env.step(np.array([0]))
    assert terminated.tolist() == [False] and obs["obs"][0, 0].item() == 1.0 and "reset_info" not in infos[0]


def test_single_agent_env_non_batched_outputs_are_per_agent_lists():
    register_env("episode_env", make_episode_env)
    env = make_env_func_non_batched(cfg_for("episode_env"), env_config=None)
    assert isinstance(env, NonBatchedVecEnv)
    assert (env.num_agents, env.is_multiagent) == (1, True)
    assert isinstance(env.observation_space, spaces.Dict) and list(env.observation_space.spaces) == ["obs"]

    obs, infos = env.reset()
    assert len(obs) == 1 and list(obs[0]) == ["obs"]
    assert isinstance(obs[0]["obs"], np.ndarray) and obs[0]["obs"].tolist() == [0.0, 0.0, 0.0]
    assert infos == [{"resets": 1}]

    results = [env.step([1]) for _ in range(3)]
    obs, rew, terminated, truncated, infos = results[-1]
    assert rew == [1.0] and terminated == [True] and truncated == [False]
    assert obs[0]["obs"].tolist() == [0.0, 0.0, 0.0]
    assert infos == [{"t": 3, "reset_info": {"resets": 2}}]
    assert results[0][2] == [False] and results[0][0][0]["obs"].tolist() == [1.0, 1.0, 0.0]


def test_dict_observations_keep_their_keys_and_dtypes():
    batched = BatchedVecEnv(DictObsEnv())
    assert set(batched.observation_space.spaces) == {"pos", "img"}
    obs, _ = batched.reset()
    assert set(obs) == {"pos", "img"}
    assert obs["pos"].shape == (1, 2) and obs["pos"].dtype == torch.float32
    assert obs["img"].shape == (1, 1, 3, 3) and obs["img"].dtype == torch.uint8
    obs, rew, terminated, truncated, _ = batched.step([np.zeros(2, dtype=np.float32)])
    assert obs["img"].flatten().tolist() == [1] * 9 and rew.tolist() == [0.5]
    obs, _, _, truncated, infos = batched.step([np.zeros(2, dtype=np.float32)])
    assert truncated.tolist() == [True] and obs["img"].max().item() == 0 and "reset_info" in infos[0]

    non_batched = NonBatchedVecEnv(DictObsEnv())
    obs, _ = non_batched.reset()
    assert set(obs[0]) == {"pos", "img"} and obs[0]["img"].dtype == np.uint8


@pytest.mark.parametrize("dict_obs", [False, True])
def test_two_agent_env_batched(dict_obs):
    env = BatchedVecEnv(TwoAgentEnv(dict_obs=dict_obs))
    assert (env.num_agents, env.is_multiagent) == (2, True)
    assert not any(isinstance(layer, BatchedMultiAgentWrapper) for layer in _layers(env))
    obs, infos = env.reset()
    assert obs["obs"].shape == (2, 3) and obs["obs"][:, 0].tolist() == [0.0, 1.0]
    assert infos == [dict(agent=0), dict(agent=1)]
    obs, rew, terminated, truncated, infos = env.step(np.array([3, 1]))
    assert obs["obs"].tolist() == [[0.0, 1.0, 3.0], [1.0, 1.0, 1.0]]
    assert rew.tolist() == [3.0, 1.0] and terminated.tolist() == [False, False] and terminated.dtype == torch.bool
    _, _, terminated, _, _ = env.step(np.array([0, 0]))
    assert terminated.tolist() == [True, True]


def test_two_agent_env_non_batched():
    env = NonBatchedVecEnv(TwoAgentEnv())
    assert (env.num_agents, env.is_multiagent) == (2, True)
    assert not any(isinstance(layer, NonBatchedMultiAgentWrapper) for layer in _layers(env))
    obs, infos = env.reset()
    assert [o["obs"][0] for o in obs] == [0.0, 1.0] and len(infos) == 2
    obs, rew, terminated, truncated, infos = env.step([2, 3])
    assert [o["obs"].tolist() for o in obs] == [[0.0, 1.0, 2.0], [1.0, 1.0, 3.0]]
    assert rew == [2.0, 3.0] and terminated == [False, False] and truncated == [False, False]


def _layers(env):
    from pysf.envs.env_utils import wrapper_layers

    return list(wrapper_layers(env))


def test_multiagent_info_is_found_under_gymnasium_wrappers():
    # gymnasium 1.x wrappers do not forward num_agents: it must still be seen through them
    wrapped = gym.wrappers.ClipReward(TwoAgentEnv(), -1.0, 1.0)
    assert get_multiagent_info(wrapped) == (True, 2)
    assert is_multiagent_env(wrapped)
    assert get_multiagent_info(EpisodeEnv()) == (False, 1)

    class CountOnly(TwoAgentEnv):
        def __init__(self):
            super().__init__()
            del self.is_multiagent  # num_agents > 1 alone makes it multi-agent

    assert get_multiagent_info(CountOnly()) == (True, 2)

    class Contradiction(TwoAgentEnv):
        def __init__(self):
            super().__init__()
            self.is_multiagent = False

    with pytest.raises(ValueError, match="num_agents=2"):
        get_multiagent_info(Contradiction())


def test_seed_goes_to_the_first_reset_only():
    env = BatchedVecEnv(EpisodeEnv())
    env.seed(7)
    env.reset()
    env.reset()
    env.reset(seed=3)
    assert env.unwrapped.seeds == [7, None, 3]


def test_non_gymnasium_envs_are_rejected_with_an_explanation():
    class OldStyle:
        observation_space = spaces.Discrete(2)
        action_space = spaces.Discrete(2)

    for vec_env in (BatchedVecEnv, NonBatchedVecEnv):
        with pytest.raises(TypeError, match="not a gymnasium.Env.*shimmy"):
            vec_env(OldStyle())


def test_native_env_names_give_the_gymnasium_env():
    env = make_env_func_batched(cfg_for("CartPole-v1"), env_config=None)
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    assert isinstance(env.unwrapped, CartPoleEnv)
    obs, _ = env.reset(seed=0)
    assert obs["obs"].shape == (1, 4)
    env.close()


def test_sequential_vectorize_wrapper_over_three_envs():
    from pysf.utils.attr_dict import AttrDict

    register_env("episode_env", make_episode_env)
    cfg = cfg_for("episode_env")
    envs = [make_env_func_batched(cfg, AttrDict(worker_index=0, vector_index=i, env_id=i)) for i in range(3)]
    vec = SequentialVectorizeWrapper(envs)
    assert vec.num_agents == 3 and vec.single_env_agents == 1
    assert vec.observation_space == envs[0].observation_space

    obs, infos = vec.reset()
    assert obs["obs"].shape == (3, 3) and obs["obs"][:, 2].tolist() == [0.0, 1.0, 2.0]
    assert infos == [{"resets": 1}] * 3

    obs, rew, terminated, truncated, infos = vec.step(np.array([0, 1, 2]))
    assert obs["obs"].tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    assert rew.tolist() == [0.0, 1.0, 2.0] and terminated.tolist() == [False] * 3 and truncated.shape == (3,)
    assert infos == [{"t": 1}] * 3
    vec.step(np.array([2, 1, 0]))
    obs, rew, terminated, _, infos = vec.step(np.array([1, 1, 1]))
    assert terminated.tolist() == [True] * 3 and obs["obs"][:, 0].tolist() == [0.0] * 3
    assert all(info["reset_info"] == {"resets": 2} for info in infos)

    # hooks: the wrapper is the interface and passes it on to every env, each with its own agent index
    interface = find_training_info_interface(vec)
    assert interface is vec
    set_training_info(interface, dict(approx_total_training_steps=99))
    assert [e.unwrapped.training_info for e in envs] == [dict(approx_total_training_steps=99)] * 3
    assert vec.get_default_reward_shaping() == dict(action=1.0)
    set_reward_shaping(vec, dict(action=2.0), slice(1, 3))
    assert [e.unwrapped.shaping for e in envs] == [[], [(dict(action=2.0), 0)], [(dict(action=2.0), 0)]]
    vec.close()


def test_sequential_vectorize_wrapper_of_two_agent_envs_and_bad_inputs():
    vec = SequentialVectorizeWrapper([BatchedVecEnv(TwoAgentEnv()) for _ in range(2)])
    assert vec.num_agents == 4
    vec.reset()
    obs, rew, _, _, infos = vec.step(np.array([1, 2, 3, 0]))
    assert rew.tolist() == [1.0, 2.0, 3.0, 0.0] and obs["obs"][:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert len(infos) == 4
    assert vec.get_default_reward_shaping() is None  # TwoAgentEnv has no reward shaping
    set_reward_shaping(vec, dict(a=1.0), slice(0, 4))  # nothing to set, no error

    with pytest.raises(ValueError, match="same number of agents"):
        SequentialVectorizeWrapper([BatchedVecEnv(TwoAgentEnv()), BatchedVecEnv(EpisodeEnv())])
    with pytest.raises(RuntimeError, match="before reset"):
        SequentialVectorizeWrapper([BatchedVecEnv(EpisodeEnv())]).step(np.array([0]))


def test_conversion_of_each_kind_of_output():
    convert = BatchedVecEnv._get_convert_func
    array = np.arange(6, dtype=np.int16).reshape(2, 3)
    shared = convert(array)(array)
    assert shared.dtype == torch.int16 and shared.data_ptr() == torch.from_numpy(array).data_ptr()
    t = torch.ones(2)
    assert convert(t)(t) is t
    assert convert([np.zeros(3), np.ones(3)])([np.zeros(3), np.ones(3)]).shape == (2, 3)
    assert convert([torch.zeros(3), torch.ones(3)])([torch.zeros(3), torch.ones(3)]).shape == (2, 3)
    assert convert([True, False])([True, False]).dtype == torch.bool
    assert convert((1.5, 2.5))((1.5, 2.5)).tolist() == [1.5, 2.5]
    with pytest.raises(RuntimeError, match="Cannot convert a str"):
        convert("text")


class TupleActionEnv(gym.Env):
    """Checks that every action it gets is one of its Tuple space's (a Discrete and a Box component)."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Tuple([spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32)])

    def __init__(self):
        self.received = []

    def reset(self, seed=None, options=None):
        return np.zeros(2, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.received.append(action)
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_a_single_agent_env_gets_its_tuple_action_from_the_workers_batch():
    """The env workers' batched decoding gives a Tuple space one batch per component; the 1-agent wrapper
    hands the env each component's first entry, as the per-agent decoding does."""
    from pysf.algo.sampling.rollout_worker import ActionDecoder

    raw = TupleActionEnv()
    env = BatchedVecEnv(raw)
    env.reset()
    rows = np.array([[2.0, 0.5, -0.5]], np.float32)
    decoder = ActionDecoder(raw.action_space)
    env.step(decoder.batch_decoder()(rows))
    env.step(decoder.rows_decoder()(rows))
    for action in raw.received:
        assert action[0] == 2 and np.allclose(action[1], [0.5, -0.5])
