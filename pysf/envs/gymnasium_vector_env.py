"""gymnasium ``VectorEnv`` objects (``SyncVectorEnv``, ``AsyncVectorEnv``, ale_py's ``AtariVectorEnv``, ...) as
the batched multi-agent envs of Sample Factory's contract.

A ``make_env_func`` may return a gymnasium vector env; ``create_env`` wraps it in
:class:`GymnasiumVectorEnvAdapter`, so that every part of pysf sees an env whose ``num_agents`` are the vector
env's sub-envs, whose spaces are one sub-env's, and which resets a sub-env in the step that ends its episode
(the observation returned with ``terminated`` or ``truncated`` is the next episode's first). Train such envs with
``--batched_sampling=True``: their batches then go straight into the trajectory rows.

Autoreset modes (``metadata["autoreset_mode"]``): ``SAME_STEP`` is that contract already; ``DISABLED`` is
adapted by resetting the finished sub-envs at once (``reset(options={"reset_mask": ...})``); ``NEXT_STEP``
(gymnasium's default) spends a step of every finished sub-env on its reset and ignores that step's action, which
would enter training as a transition that never happened, so it is refused with a message saying how to make
the env instead.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

# Keys of gymnasium's vector infos that describe the reset itself rather than the step (the final observation
# and info of a finished sub-env, and the masks gymnasium adds for every key).
_RESET_INFO_KEYS = ("final_obs", "final_info")


class GymnasiumVectorEnvAdapter(gym.Env):
    """A gymnasium vector env as a batched multi-agent env: ``num_agents = num_envs``, one sub-env's spaces,
    each sub-env reset in the step that finishes its episode. Infos stay a dict of per-sub-env arrays (the
    vectorized infos Sample Factory's batched sampling reads) without gymnasium's ``_key`` masks and final
    observations."""

    def __init__(self, vector_env: gym.vector.VectorEnv):
        self.vector_env = vector_env
        self.num_agents: int = int(vector_env.num_envs)
        self.is_multiagent: bool = True
        self.observation_space = vector_env.single_observation_space
        self.action_space = vector_env.single_action_space
        self.metadata = dict(getattr(vector_env, "metadata", {}) or {})
        self.render_mode = getattr(vector_env, "render_mode", None)
        mode = self.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.autoreset_mode = AutoresetMode(mode) if isinstance(mode, str) else mode
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            raise ValueError(
                f"{type(vector_env).__name__} resets its sub-envs in the step after an episode ends "
                f"(autoreset_mode NEXT_STEP), which would train on transitions that never happened. Make it with "
                f"autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP (or DISABLED); ale_py's AtariVectorEnv and "
                f"gymnasium's SyncVectorEnv/AsyncVectorEnv take autoreset_mode=..."
            )

    @property
    def unwrapped(self) -> Any:
        return self.vector_env.unwrapped

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict]:
        """``seed`` seeds the vector env as it seeds itself (sub-env ``k`` from ``seed + k``), folded into 31 bits
        first: pysf's env seeds are 64-bit, and ale_py's vector env takes 32-bit ones."""
        if seed is not None:
            seed = int(seed) % (2**31 - self.num_agents)
        obs, info = self.vector_env.reset(seed=seed, options=options)
        return obs, _step_info(info)

    def step(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict]:
        obs, rewards, terminated, truncated, info = self.vector_env.step(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED:
            finished = np.logical_or(terminated, truncated)
            if finished.any():
                reset_obs, _ = self.vector_env.reset(options={"reset_mask": finished})
                obs = _where_finished(finished, reset_obs, obs)
        return obs, rewards, terminated, truncated, _step_info(info)

    def render(self) -> Any:
        return self.vector_env.render()

    def close(self) -> None:
        self.vector_env.close()


def _step_info(info: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in info.items() if not key.startswith("_") and key not in _RESET_INFO_KEYS}


def _where_finished(finished: np.ndarray, reset_obs: Any, obs: Any) -> Any:
    """``obs`` with the finished sub-envs' entries taken from ``reset_obs`` (dict observations key by key)."""
    if isinstance(obs, dict):
        return {key: _where_finished(finished, reset_obs[key], value) for key, value in obs.items()}
    merged = np.array(obs, copy=True)
    merged[finished] = np.asarray(reset_obs)[finished]
    return merged

