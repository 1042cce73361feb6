"""PettingZoo envs as the multi-agent envs of Sample Factory's contract.

A ``make_env_func`` may return a ``pettingzoo.ParallelEnv`` or a turn-based ``pettingzoo.AECEnv`` (the classic
board and card games); ``create_env`` wraps it in :class:`PettingZooParallelEnv` or :class:`PettingZooAECEnv`, so
that every part of pysf sees an env with ``num_agents`` (its ``possible_agents``, in that order), one agent's
spaces, per-agent lists in and out, and resets of its own.

    register_env("pistonball", lambda name, cfg, env_config, render_mode: pistonball_v6.parallel_env())
    register_env("connect_four", lambda name, cfg, env_config, render_mode: connect_four_v3.env())
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np

from pysf.algo.utils.action_distributions import ACTION_MASK_KEY


def _pettingzoo_module() -> Any:
    """pettingzoo, when something imported it (pysf never imports it itself)."""
    import sys

    return sys.modules.get("pettingzoo")


def is_pettingzoo_parallel_env(env: Any) -> bool:
    """Whether ``env`` is a ``pettingzoo.ParallelEnv`` (without importing pettingzoo when nobody did)."""
    pettingzoo = _pettingzoo_module()
    return pettingzoo is not None and isinstance(env, pettingzoo.ParallelEnv)


def is_pettingzoo_aec_env(env: Any) -> bool:
    """Whether ``env`` is a turn-based ``pettingzoo.AECEnv`` (or one of its wrappers)."""
    pettingzoo = _pettingzoo_module()
    return pettingzoo is not None and isinstance(env, pettingzoo.AECEnv)


class _PettingZooAgents(gym.Env):
    """What both wrappers share: agent ``i`` is ``possible_agents[i]``, every agent has the same spaces (they are
    rows of the same buffers), rendering and closing go to the env."""

    metadata = {"render_modes": []}

    def __init__(self, env: Any):
        self.env = env
        self.agent_names: List[str] = list(env.possible_agents)
        if not self.agent_names:
            raise ValueError(f"{type(env).__name__} has no possible_agents")
        self.num_agents: int = len(self.agent_names)
        self.is_multiagent: bool = True
        first = self.agent_names[0]
        self.observation_space = env.observation_space(first)
        self.action_space = env.action_space(first)
        for name in self.agent_names[1:]:
            for what, space, agent_space in (("observation", self.observation_space, env.observation_space(name)),
                                              ("action", self.action_space, env.action_space(name))):
                if agent_space != space:
                    raise ValueError(
                        f"{type(env).__name__}: agent {name!r} has the {what} space {agent_space}, agent {first!r} "
                        f"{space}. pysf trains agents of one env as rows of the same buffers, so they need one "
                        f"{what} space: pad or wrap the env (e.g. SuperSuit's pad_observations_v0/pad_action_space_v0)"
                    )
        self.render_mode = getattr(env, "render_mode", None)
        self._last_obs: Dict[str, Any] = {}

    def _check_actions(self, actions: Sequence[Any]) -> None:
        if len(actions) != self.num_agents:
            raise ValueError(f"{self.num_agents} actions expected (one per agent), got {len(actions)}")

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class PettingZooParallelEnv(_PettingZooAgents):
    """A ``pettingzoo.ParallelEnv`` as a multi-agent env: agent ``i`` is ``possible_agents[i]``; ``step`` takes
    one action per agent and returns lists with one entry per agent; when no agent is left the env resets
    itself (the observations returned with the last flags are the next episode's first).

    An agent that is done while others play on is inactive until that reset: it keeps its last observation, gets
    reward 0 and False flags, its action is not passed to the env, and its info says ``is_active: False`` from
    the step that ended it (Sample Factory's marker: those steps stay out of training).

    All agents must share one observation space and one action space, since they are rows of the same buffers.
    """

    def _observations(self, obs: Dict[str, Any]) -> List[Any]:
        self._last_obs.update(obs)
        return [self._last_obs[name] for name in self.agent_names]

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[List[Any], List[Dict]]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._observations(obs), [dict(infos.get(name, {})) for name in self.agent_names]

    def step(self, actions: Sequence[Any]) -> Tuple[List[Any], List[float], List[bool], List[bool], List[Dict]]:
        self._check_actions(actions)
        live = set(self.env.agents)
        obs, rewards, terminated, truncated, infos = self.env.step(
            {name: action for name, action in zip(self.agent_names, actions) if name in live}
        )
        observations = self._observations(obs)
        out_rewards, out_terminated, out_truncated, out_infos = [], [], [], []
        for name in self.agent_names:
            if name in live:
                term, trunc = bool(terminated.get(name, False)), bool(truncated.get(name, False))
                info = dict(infos.get(name, {}))
                if term or trunc:
                    info["is_active"] = False
                out_rewards.append(float(rewards.get(name, 0.0)))
            else:
                term, trunc, info = False, False, {"is_active": False}
                out_rewards.append(0.0)
            out_terminated.append(term)
            out_truncated.append(trunc)
            out_infos.append(info)
        if not self.env.agents:  # everyone is done: the next episode starts, every agent active again
            obs, reset_infos = self.env.reset()
            self._last_obs = {}
            observations = self._observations(obs)
            for name, info in zip(self.agent_names, out_infos):
                info.pop("is_active", None)
                info["reset_info"] = dict(reset_infos.get(name, {}))
        return observations, out_rewards, out_terminated, out_truncated, out_infos


class PettingZooAECEnv(_PettingZooAgents):
    """A turn-based ``pettingzoo.AECEnv`` (e.g. PettingZoo's classic games) as a multi-agent env: every agent acts
    at every step, and only the action of the agent whose turn it is (``agent_selection``) is applied.

    Observations are ``env.observe(agent)``. Where an observation dict has an ``action_mask`` that allows nothing
    (PettingZoo's classic envs give the agents who wait for their turn such a mask), the agent gets a mask that
    allows action 0 only: that action is ignored anyway, and a one-action distribution keeps the waiting steps out
    of the policy gradient (their log-probability is 0 whatever the weights). Rewards are each agent's reward for
    the applied move (``env.rewards``), so a game's final result reaches the winner and the loser at the same step.
    A done agent's turn is passed with ``None``, as the AEC protocol asks; an agent done while others play on is
    inactive (``is_active: False``) until no agent is left, when the env resets itself.
    """

    def __init__(self, env: Any):
        super().__init__(env)
        self._index = {name: i for i, name in enumerate(self.agent_names)}

    def _observe(self, name: str) -> Any:
        obs = self.env.observe(name)
        if isinstance(obs, dict) and ACTION_MASK_KEY in obs and not np.any(obs[ACTION_MASK_KEY]):
            mask = np.zeros_like(obs[ACTION_MASK_KEY])
            mask[0] = 1
            obs = {**obs, ACTION_MASK_KEY: mask}
        return obs

    def _observations(self) -> List[Any]:
        self._last_obs.update({name: self._observe(name) for name in self.env.agents})
        return [self._last_obs[name] for name in self.agent_names]

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[List[Any], List[Dict]]:
        self.env.reset(seed=seed, options=options)
        self._last_obs = {}
        return self._observations(), [dict(self.env.infos.get(name, {})) for name in self.agent_names]

    def step(self, actions: Sequence[Any]) -> Tuple[List[Any], List[float], List[bool], List[bool], List[Dict]]:
        self._check_actions(actions)
        env = self.env
        live = set(env.agents)
        env.step(actions[self._index[env.agent_selection]])
        # The move's results, before passing the done agents' turns clears them.
        rewards = [float(env.rewards.get(name, 0.0)) for name in self.agent_names]
        terminated = [name in live and bool(env.terminations.get(name, False)) for name in self.agent_names]
        truncated = [name in live and bool(env.truncations.get(name, False)) for name in self.agent_names]
        infos = [dict(env.infos.get(name, {})) if name in live else {"is_active": False} for name in self.agent_names]
        for info, term, trunc in zip(infos, terminated, truncated):
            if term or trunc:
                info["is_active"] = False
        while env.agents and (env.terminations[env.agent_selection] or env.truncations[env.agent_selection]):
            env.step(None)
        if not env.agents:  # everyone is done: the next game starts, every agent active again
            observations, reset_infos = self.reset()
            for info, reset_info in zip(infos, reset_infos):
                info.pop("is_active", None)
                info["reset_info"] = reset_info
            return observations, rewards, terminated, truncated, infos
        return self._observations(), rewards, terminated, truncated, infos
