"""PettingZoo parallel envs as the multi-agent envs of Sample Factory's contract.

A ``make_env_func`` may return a ``pettingzoo.ParallelEnv``; ``create_env`` wraps it in
:class:`PettingZooParallelEnv`, so that every part of pysf sees an env with ``num_agents`` (its
``possible_agents``, in that order), one agent's spaces, per-agent lists in and out, and resets of its own.
Turn-based (AEC) games need the two-player support of the several-policies work and are not adapted here.

    register_env("pistonball", lambda name, cfg, env_config, render_mode: pistonball_v6.parallel_env())
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import gymnasium as gym


def is_pettingzoo_parallel_env(env: Any) -> bool:
    """Whether ``env`` is a ``pettingzoo.ParallelEnv`` (without importing pettingzoo when nobody did)."""
    import sys

    pettingzoo = sys.modules.get("pettingzoo")
    return pettingzoo is not None and isinstance(env, pettingzoo.ParallelEnv)


class PettingZooParallelEnv(gym.Env):
    """A ``pettingzoo.ParallelEnv`` as a multi-agent env: agent ``i`` is ``possible_agents[i]``; ``step`` takes
    one action per agent and returns lists with one entry per agent; when no agent is left the env resets
    itself (the observations returned with the last flags are the next episode's first).

    An agent that is done while others play on is inactive until that reset: it keeps its last observation, gets
    reward 0 and False flags, its action is not passed to the env, and its info says ``is_active: False`` from
    the step that ended it (Sample Factory's marker: those steps stay out of training).

    All agents must share one observation space and one action space, since they are rows of the same buffers.
    """

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

    def _observations(self, obs: Dict[str, Any]) -> List[Any]:
        self._last_obs.update(obs)
        return [self._last_obs[name] for name in self.agent_names]

    def reset(self, seed: Optional[int] = None, options: Optional[dict] = None) -> Tuple[List[Any], List[Dict]]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._observations(obs), [dict(infos.get(name, {})) for name in self.agent_names]

    def step(self, actions: Sequence[Any]) -> Tuple[List[Any], List[float], List[bool], List[bool], List[Dict]]:
        if len(actions) != self.num_agents:
            raise ValueError(f"{self.num_agents} actions expected (one per agent), got {len(actions)}")
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

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
