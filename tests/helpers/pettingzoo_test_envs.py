"""A small PettingZoo parallel env for the adapter's tests (needs pettingzoo)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class RelayEnv(ParallelEnv):
    """Three agents. Observation ``[env_id, agent index, step]``; reward ``agent index + 1``. Agent ``b``
    terminates after ``B_STEPS`` steps, the others are truncated after ``EPISODE_STEPS``. Records the actions it
    was given."""

    metadata = {"name": "relay_v0"}
    B_STEPS = 2
    EPISODE_STEPS = 5

    def __init__(self, env_id: int = 0):
        self.possible_agents = ["a", "b", "c"]
        self.env_id = env_id
        self.steps = 0
        self.agents = []
        self.received = []

    def observation_space(self, agent):
        return spaces.Box(-1.0, 1e6, (3,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def _obs(self, agent):
        return np.array([self.env_id, self.possible_agents.index(agent), self.steps], dtype=np.float32)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.steps = 0
        return {agent: self._obs(agent) for agent in self.agents}, {agent: {"seed": seed} for agent in self.agents}

    def step(self, actions):
        self.received.append(dict(actions))
        self.steps += 1
        obs = {agent: self._obs(agent) for agent in self.agents}
        rewards = {agent: float(self.possible_agents.index(agent) + 1) for agent in self.agents}
        terminated = {agent: agent == "b" and self.steps == self.B_STEPS for agent in self.agents}
        truncated = {agent: self.steps == self.EPISODE_STEPS for agent in self.agents}
        infos = {agent: {"step": self.steps} for agent in self.agents}
        self.agents = [agent for agent in self.agents if not (terminated[agent] or truncated[agent])]
        return obs, rewards, terminated, truncated, infos


class MixedSpacesEnv(RelayEnv):
    def action_space(self, agent):
        return spaces.Discrete(3 if agent == "c" else 2)


def make_relay_env(full_env_name, cfg=None, env_config=None, render_mode=None):
    return RelayEnv(env_config.env_id if env_config is not None else 0)
