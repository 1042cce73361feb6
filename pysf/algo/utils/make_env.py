"""Envs the way the trainer sees them (Sample Factory's ``sample_factory.algo.utils.make_env``).

Every env is presented as a multi-agent env: a single-agent env becomes a 1-agent env whose outputs are
per-agent sequences of length 1, and which resets itself when its episode ends (the observation returned
with ``terminated`` or ``truncated`` is the first one of the next episode; the reset's info is in
``info["reset_info"]``). Observations are always dicts (a bare observation is stored under ``"obs"``).

- ``make_env_func_batched`` -> ``BatchedVecEnv``: observations are a dict of ``[num_agents, ...]`` torch
  tensors, rewards/terminated/truncated are ``[num_agents]`` tensors, infos a list with one dict per agent.
- ``make_env_func_non_batched`` -> ``NonBatchedVecEnv``: lists with one entry per agent (a dict observation,
  a reward, ...), for code that handles each agent on its own.
- ``SequentialVectorizeWrapper``: several batched envs stepped one after the other as one env whose agents
  are the agents of all of them.

An env declares itself multi-agent with ``num_agents`` (> 1) and/or ``is_multiagent`` attributes; it then
takes a sequence of actions and returns sequences (one entry per agent) and does its own resets.

pysf's trainer steps its envs with its own loop (and its native C++ envs without Python); these functions
are what user code and evaluation scripts use to make an env as Sample Factory's sampler sees it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium import Wrapper, spaces
from torch import Tensor

from pysf.envs.create_env import create_env
from pysf.envs.env_utils import (
    AgentIndex,
    RewardShapingInterface,
    TrainingInfoInterface,
    find_training_info_interface,
    find_wrapper_interface,
    wrapper_layers,
)
from pysf.utils.typing import Config

Actions = Any
ListActions = Sequence[Actions]
TensorActions = Tensor

SeqBools = Sequence[bool]

DictObservations = Dict[str, Any]
DictOfListsObservations = Dict[str, Sequence[Any]]
DictOfTensorObservations = Dict[str, Tensor]
ListObservations = Sequence[Any]
ListOfDictObservations = Sequence[DictObservations]

_MISSING = object()


def _first_layer_attribute(env: Any, name: str, default: Any) -> Any:
    """``name`` of the outermost wrapper layer that has it, else ``default``.

    gymnasium 1.x wrappers no longer forward unknown attributes to the env they wrap (0.29, which Sample
    Factory 2.1.1 uses, did), so a multi-agent env's ``num_agents`` is looked up layer by layer.
    """
    for layer in wrapper_layers(env):
        value = getattr(layer, name, _MISSING)
        if value is not _MISSING:
            return value
    return default


def get_multiagent_info(env: Any) -> Tuple[bool, int]:
    """``(is_multiagent, num_agents)`` of ``env``: its ``num_agents`` (default 1) and ``is_multiagent``
    (default ``num_agents > 1``) attributes, found through its wrappers."""
    num_agents = _first_layer_attribute(env, "num_agents", 1)
    is_multiagent = _first_layer_attribute(env, "is_multiagent", num_agents > 1)
    if not is_multiagent and num_agents != 1:
        raise ValueError(
            f"{type(env).__name__} has num_agents={num_agents} but is_multiagent={is_multiagent}: an env with several "
            f"agents must be multi-agent (set is_multiagent = True, or drop it)"
        )
    return bool(is_multiagent), int(num_agents)


def is_multiagent_env(env: Any) -> bool:
    """Whether ``env`` takes and returns one entry per agent (see ``get_multiagent_info``)."""
    is_multiagent, _num_agents = get_multiagent_info(env)
    return is_multiagent


def _require_gymnasium_env(env: Any) -> None:
    if not isinstance(env, gym.Env):
        raise TypeError(
            f"The env is a {type(env).__module__}.{type(env).__qualname__}, not a gymnasium.Env, so gymnasium wrappers "
            f"cannot wrap it. Derive it from gymnasium.Env; an OpenAI gym env can be converted in its make_env_func "
            f"with shimmy (shimmy.GymV26CompatibilityV0(env=env)), which Sample Factory applies automatically."
        )


def _list_of_dicts_to_dict_of_lists(dicts: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """``[{k: a0}, {k: a1}]`` -> ``{k: [a0, a1]}``, recursively for nested dicts (keys of the first dict)."""
    if not dicts:
        return dict()
    result: Dict[str, Any] = dict()
    for key, value in dicts[0].items():
        column = [d[key] for d in dicts]
        result[key] = _list_of_dicts_to_dict_of_lists(column) if isinstance(value, dict) else column
    return result


def _concatenate(parts: List[Any]) -> Any:
    """Concatenate per-env batches along the agent dimension (tensors or numpy arrays)."""
    if isinstance(parts[0], Tensor):
        return torch.cat(parts)
    return np.concatenate(parts)


class _DictObservationsWrapper(Wrapper):
    """Presents a bare observation space as ``Dict(obs=space)``; keeps the env's multi-agent attributes."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        is_multiagent, num_agents = get_multiagent_info(env)
        self.is_multiagent: bool = is_multiagent
        self.num_agents: int = num_agents
        self.observation_space: spaces.Dict = spaces.Dict(dict(obs=env.observation_space))


class BatchedDictObservationsWrapper(_DictObservationsWrapper):
    """Observations become ``{"obs": observations}`` (the batch, one entry per agent, stays as it is)."""

    def reset(self, **kwargs: Any) -> Tuple[DictObservations, Any]:
        obs, info = self.env.reset(**kwargs)
        return dict(obs=obs), info

    def step(self, action: Any) -> Tuple[DictObservations, Any, Any, Any, Any]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return dict(obs=obs), rew, terminated, truncated, info


class BatchedMultiAgentWrapper(Wrapper):
    """A single-agent env with dict observations as a 1-agent env: every output becomes a length-1 list
    (observations a dict of length-1 lists), the action is ``action[0]``, and the env resets itself at the
    end of an episode (the reset's info in ``info["reset_info"]``)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict):
            raise TypeError(
                f"BatchedMultiAgentWrapper needs a Dict observation space, got {env.observation_space}: wrap the env "
                f"in BatchedDictObservationsWrapper first (BatchedVecEnv does)"
            )
        self.num_agents: int = 1
        self.is_multiagent: bool = True

    @staticmethod
    def _obs(obs: DictObservations) -> DictOfListsObservations:
        return {key: [value] for key, value in obs.items()}

    def reset(self, **kwargs: Any) -> Tuple[DictOfListsObservations, List[Dict]]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs), [info]

    def step(self, action: Any) -> Tuple[DictOfListsObservations, List, List[bool], List[bool], List[Dict]]:
        obs, rew, terminated, truncated, info = self.env.step(_first_agents_action(action))
        if terminated or truncated:
            obs, info["reset_info"] = self.env.reset()
        return self._obs(obs), [rew], [terminated], [truncated], [info]


def _first_agents_action(actions: Any) -> Any:
    """The first agent's action of a batch: ``actions[0]``, or for a Tuple action space's batch (a tuple with
    one batch per component) the tuple of each component's first."""
    if isinstance(actions, tuple):
        return tuple(component[0] for component in actions)
    return actions[0]


class BatchedListToDictWrapper(Wrapper):
    """A multi-agent env returning a list of dict observations (one per agent) returns a dict of lists."""

    def reset(self, **kwargs: Any) -> Tuple[Any, Any]:
        obs, info = self.env.reset(**kwargs)
        if isinstance(obs, list):
            obs = _list_of_dicts_to_dict_of_lists(obs)
        return obs, info

    def step(self, action: Any) -> Tuple[Any, Any, Any, Any, Any]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        if isinstance(obs, list):
            obs = _list_of_dicts_to_dict_of_lists(obs)
        return obs, rew, terminated, truncated, info


class BatchedVecEnv(Wrapper):
    """Any env as a batched multi-agent env: observations a dict of ``[num_agents, ...]`` tensors, rewards,
    terminated and truncated ``[num_agents]`` tensors; infos are left as the env returns them (a list with
    one dict per agent for a single-agent env).

    How each output converts to a tensor is decided from its first value: tensors pass through, numpy arrays
    are shared with ``torch.from_numpy``, sequences of arrays go through one numpy array, sequences of
    tensors are stacked, sequences of numbers become a tensor of their type.
    """

    ConvertFunc = Callable[[Any], Tensor]

    def __init__(self, env: gym.Env):
        _require_gymnasium_env(env)
        if not isinstance(env.observation_space, spaces.Dict):
            env = BatchedDictObservationsWrapper(env)
        if is_multiagent_env(env):
            env = BatchedListToDictWrapper(env)
        else:
            env = BatchedMultiAgentWrapper(env)
        super().__init__(env)

        self.is_multiagent, self.num_agents = get_multiagent_info(env)
        self._convert_obs_func: Dict[str, BatchedVecEnv.ConvertFunc] = dict()
        self._convert_rew_func: Optional[BatchedVecEnv.ConvertFunc] = None
        self._convert_terminated_func: Optional[BatchedVecEnv.ConvertFunc] = None
        self._convert_truncated_func: Optional[BatchedVecEnv.ConvertFunc] = None
        self._seed: Optional[int] = None
        self._seeded = False

    @staticmethod
    def _get_convert_func(x: Any) -> ConvertFunc:
        """The function converting values like ``x`` to a tensor."""
        if isinstance(x, Tensor):
            return lambda x_: x_
        if isinstance(x, np.ndarray):
            return torch.from_numpy
        if isinstance(x, (list, tuple)):
            if len(x) > 0 and isinstance(x[0], (np.ndarray, list, tuple)):
                # one numpy array first: torch.tensor() on a list of arrays is very slow
                return lambda x_: torch.tensor(np.array(x_))
            if len(x) > 0 and isinstance(x[0], Tensor):
                return torch.stack
            return torch.tensor
        raise RuntimeError(
            f"Cannot convert a {type(x).__name__} returned by the env to a torch.Tensor: a batched env must return "
            f"tensors, numpy arrays or lists/tuples with one entry per agent"
        )

    def _convert(self, obs: DictObservations) -> DictOfTensorObservations:
        return {key: self._convert_obs_func[key](value) for key, value in obs.items()}

    def seed(self, seed: Optional[int] = None) -> None:
        """Seed the env at its next reset (gymnasium seeds through ``reset(seed=...)``); only the first reset
        after this call gets the seed."""
        self._seed = seed
        self._seeded = False

    def reset(self, **kwargs: Any) -> Tuple[DictOfTensorObservations, Any]:
        if not self._seeded and self._seed is not None:
            kwargs["seed"] = self._seed
            self._seeded = True
        obs, info = self.env.reset(**kwargs)
        if not isinstance(obs, dict):
            raise TypeError(f"The env's reset() returned a {type(obs).__name__} observation where a dict was expected")
        for key, value in obs.items():
            if key not in self._convert_obs_func:
                self._convert_obs_func[key] = self._get_convert_func(value)
        return self._convert(obs), info

    def step(self, action: TensorActions) -> Tuple[DictOfTensorObservations, Tensor, Tensor, Tensor, Any]:
        obs, rew, terminated, truncated, infos = self.env.step(action)
        if self._convert_rew_func is None:
            self._convert_rew_func = self._get_convert_func(rew)
            self._convert_terminated_func = self._get_convert_func(terminated)
            self._convert_truncated_func = self._get_convert_func(truncated)
        return (
            self._convert(obs),
            self._convert_rew_func(rew),
            self._convert_terminated_func(terminated),
            self._convert_truncated_func(truncated),
            infos,
        )


class SequentialVectorizeWrapper(Wrapper, TrainingInfoInterface, RewardShapingInterface):
    """Several batched envs (``BatchedVecEnv``) stepped one after the other, as one env with the agents of all
    of them: env ``i``'s agents are rows ``i * agents_per_env ...``.

    ``step`` writes into the buffers allocated at ``reset`` and returns them: the observation dict and the
    reward/terminated/truncated tensors are overwritten by the next step (copy what you keep).
    Training info and reward shaping are passed on to the envs that implement the interfaces.
    """

    def __init__(self, envs: Sequence[gym.Env]):
        if len(envs) == 0:
            raise ValueError("SequentialVectorizeWrapper needs at least one env")
        Wrapper.__init__(self, envs[0])
        TrainingInfoInterface.__init__(self)
        agents = [get_multiagent_info(e)[1] for e in envs]
        self.single_env_agents: int = agents[0]
        if any(n != self.single_env_agents for n in agents):
            raise ValueError(f"SequentialVectorizeWrapper: all envs must have the same number of agents, got {agents}")

        self.envs = list(envs)
        self.num_agents: int = self.single_env_agents * len(self.envs)
        self.is_multiagent: bool = True
        self.obs: Optional[Dict[str, Any]] = None
        self.rew = self.terminated = self.truncated = None

        # An interface is used only when every env has it (then each env gets its share).
        training = [find_training_info_interface(e) for e in self.envs]
        shaping = [find_wrapper_interface(e, RewardShapingInterface) for e in self.envs]
        self.training_info_interfaces: Optional[List[TrainingInfoInterface]] = (
            training if all(t is not None for t in training) else None
        )
        self.reward_shaping_interfaces: Optional[List[RewardShapingInterface]] = (
            shaping if all(s is not None for s in shaping) else None
        )

    def _agent_rows(self, env_index: int) -> slice:
        first = env_index * self.single_env_agents
        return slice(first, first + self.single_env_agents)

    @staticmethod
    def _add_infos(infos: List[Dict], env_infos: Any) -> None:
        if isinstance(env_infos, (list, tuple)):
            infos.extend(env_infos)
        else:
            infos.append(env_infos)

    def reset(self, **kwargs: Any) -> Tuple[Dict[str, Any], List[Dict]]:
        parts: Dict[str, List[Any]] = dict()
        infos: List[Dict] = []
        for e in self.envs:
            obs, info = e.reset(**kwargs)
            for key, value in obs.items():
                parts.setdefault(key, []).append(value)
            self._add_infos(infos, info)
        self.obs = {key: _concatenate(values) for key, values in parts.items()}
        return self.obs, infos

    def step(self, actions: Tensor) -> Tuple[Dict[str, Any], Tensor, Tensor, Tensor, List[Dict]]:
        if self.obs is None:
            raise RuntimeError("SequentialVectorizeWrapper.step() called before reset()")
        infos: List[Dict] = []
        for i, e in enumerate(self.envs):
            rows = self._agent_rows(i)
            obs, rew, terminated, truncated, info = e.step(actions[rows])
            for key, value in obs.items():
                self.obs[key][rows] = value
            if self.rew is None:
                self.rew = rew.repeat(len(self.envs))
                self.terminated = terminated.repeat(len(self.envs))
                self.truncated = truncated.repeat(len(self.envs))
            self.rew[rows] = rew
            self.terminated[rows] = terminated
            self.truncated[rows] = truncated
            self._add_infos(infos, info)
        return self.obs, self.rew, self.terminated, self.truncated, infos

    def set_training_info(self, training_info: Dict[str, Any]) -> None:
        self.training_info = training_info
        for interface in self.training_info_interfaces or ():
            interface.set_training_info(training_info)

    def get_default_reward_shaping(self) -> Optional[Dict[str, Any]]:
        if self.reward_shaping_interfaces is None:
            return None
        return self.reward_shaping_interfaces[0].get_default_reward_shaping()

    def set_reward_shaping(self, reward_shaping: Dict[str, Any], agent_indices: AgentIndex) -> None:
        """Set ``reward_shaping`` for the agents ``agent_indices`` (a slice over all envs' agents, or one index);
        each env receives it with its own agent index."""
        if self.reward_shaping_interfaces is None:
            return
        if isinstance(agent_indices, slice):
            indices = range(*agent_indices.indices(self.num_agents))
        else:
            indices = [int(agent_indices)]
        for agent_idx in indices:
            env_idx, env_agent_idx = divmod(agent_idx, self.single_env_agents)
            self.reward_shaping_interfaces[env_idx].set_reward_shaping(reward_shaping, env_agent_idx)

    def close(self) -> None:
        for e in self.envs:
            e.close()


class NonBatchedMultiAgentWrapper(Wrapper):
    """A single-agent env as a 1-agent env: every output becomes a length-1 list, the action is
    ``action[0]``, and the env resets itself at the end of an episode (``info["reset_info"]``)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.num_agents: int = 1
        self.is_multiagent: bool = True

    def reset(self, **kwargs: Any) -> Tuple[ListObservations, List[Dict]]:
        obs, info = self.env.reset(**kwargs)
        return [obs], [info]

    def step(self, action: ListActions) -> Tuple[ListObservations, List, List[bool], List[bool], List[Dict]]:
        obs, rew, terminated, truncated, info = self.env.step(action[0])
        if terminated or truncated:
            obs, info["reset_info"] = self.env.reset()
        return [obs], [rew], [terminated], [truncated], [info]


class NonBatchedDictObservationsWrapper(_DictObservationsWrapper):
    """Per-agent observations become ``{"obs": observation}`` dicts."""

    def reset(self, **kwargs: Any) -> Tuple[ListOfDictObservations, Any]:
        obs, info = self.env.reset(**kwargs)
        return [dict(obs=o) for o in obs], info

    def step(self, action: ListActions) -> Tuple[ListOfDictObservations, Any, Any, Any, Any]:
        obs, rew, terminated, truncated, info = self.env.step(action)
        return [dict(obs=o) for o in obs], rew, terminated, truncated, info


class NonBatchedVecEnv(Wrapper):
    """Any env as a non-batched multi-agent env: ``reset()`` returns a list of dict observations and a list of
    infos, ``step(actions)`` (one action per agent) lists of observations, rewards, terminated, truncated and
    infos, one entry per agent."""

    def __init__(self, env: gym.Env):
        _require_gymnasium_env(env)
        if not is_multiagent_env(env):
            env = NonBatchedMultiAgentWrapper(env)
        if not isinstance(env.observation_space, spaces.Dict):
            env = NonBatchedDictObservationsWrapper(env)
        super().__init__(env)
        self.is_multiagent, self.num_agents = get_multiagent_info(env)


def make_env_func_batched(cfg: Config, env_config: Optional[Any], render_mode: Optional[str] = None) -> BatchedVecEnv:
    """``create_env(cfg.env, ...)`` wrapped in ``BatchedVecEnv``: dicts of tensors in, tensors out."""
    env = create_env(cfg.env, cfg=cfg, env_config=env_config, render_mode=render_mode)
    return BatchedVecEnv(env)


def make_env_func_non_batched(
    cfg: Config, env_config: Optional[Any], render_mode: Optional[str] = None
) -> NonBatchedVecEnv:
    """``create_env(cfg.env, ...)`` wrapped in ``NonBatchedVecEnv``: one entry per agent in every output."""
    env = create_env(cfg.env, cfg=cfg, env_config=env_config, render_mode=render_mode)
    return NonBatchedVecEnv(env)
