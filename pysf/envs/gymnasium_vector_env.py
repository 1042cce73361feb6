"""gymnasium ``VectorEnv`` objects (``SyncVectorEnv``, ``AsyncVectorEnv``, ale_py's ``AtariVectorEnv``, EnvPool's
envs, ...) as the batched multi-agent envs of Sample Factory's contract.

A ``make_env_func`` may return a gymnasium vector env; ``create_env`` wraps it in
:class:`GymnasiumVectorEnvAdapter`, so that every part of pysf sees an env whose ``num_agents`` are the vector
env's sub-envs, whose spaces are one sub-env's, and which resets a sub-env in the step that ends its episode
(the observation returned with ``terminated`` or ``truncated`` is the next episode's first). Train such envs with
``--batched_sampling=True``: their batches then go straight into the trajectory rows.

Autoreset modes (``metadata["autoreset_mode"]``): ``SAME_STEP`` is that contract already; ``DISABLED`` is
adapted by resetting the finished sub-envs at once (``reset(options={"reset_mask": ...})``). ``NEXT_STEP``
(gymnasium's default, and EnvPool's) spends a step of every finished sub-env on its reset and ignores that step's
action, which would enter training as a transition that never happened. gymnasium's own ``SyncVectorEnv`` and
``AsyncVectorEnv`` and EnvPool cancel that pending reset when the sub-env is reset by mask, so they are adapted
like ``DISABLED``; any other ``NEXT_STEP`` env is refused with a message saying how to make it instead.

EnvPool (``pip install pysf[envpool]``) fixes its seeds in ``envpool.make(..., seed=...)`` and ignores
``reset(seed=...)``: a ``make_env_func`` seeds it from ``cfg.seed`` and ``env_config.env_id``. It must step all of
its envs at once (``batch_size == num_envs``, its default); its ``env_id`` and ``players`` infos, which name rows
rather than describe an episode, are not reported as episode statistics.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

# Keys of gymnasium's vector infos that describe the reset itself rather than the step (the final observation
# and info of a finished sub-env, and the masks gymnasium adds for every key).
_RESET_INFO_KEYS = ("final_obs", "final_info")
# Keys EnvPool adds to every env's infos: which rows (and players) the batch holds.
_ENVPOOL_ROW_INFO_KEYS = ("env_id", "players")


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
        self.is_envpool = _is_envpool(vector_env)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP and not _masked_reset_cancels_autoreset(vector_env):
            raise ValueError(
                f"{type(vector_env).__name__} resets its sub-envs in the step after an episode ends "
                f"(autoreset_mode NEXT_STEP), which would train on transitions that never happened. Make it with "
                f"autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP (or DISABLED), as ale_py's "
                f"AtariVectorEnv(..., autoreset_mode=...) takes it"
            )
        # Sub-envs that finish are reset in the same step, by mask, unless the env does that itself.
        self.resets_finished_envs = self.autoreset_mode != AutoresetMode.SAME_STEP
        if self.is_envpool:
            config = vector_env.unwrapped.config
            if config["batch_size"] != config["num_envs"]:
                raise ValueError(
                    f"this EnvPool env steps {config['batch_size']} of its {config['num_envs']} envs per call "
                    f"(asynchronous mode); pysf steps all of a vector env's envs at once: make it with "
                    f"batch_size=num_envs (EnvPool's default), and use --worker_num_splits=2 with two envs per "
                    f"worker (--num_envs_per_worker=2) to overlap stepping and inference"
                )

    @property
    def unwrapped(self) -> Any:
        return self.vector_env.unwrapped

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict]:
        """``seed`` seeds the vector env as it seeds itself (sub-env ``k`` from ``seed + k``), folded into 31 bits
        first: pysf's env seeds are 64-bit, and ale_py's vector env takes 32-bit ones. EnvPool takes no seed here
        (the module docstring)."""
        if self.is_envpool:
            seed = None  # fixed by envpool.make: reset(seed=...) would only warn that it is ignored
        elif seed is not None:
            seed = int(seed) % (2**31 - self.num_agents)
        obs, info = self.vector_env.reset(seed=seed, options=options)
        return obs, self._step_info(info)

    def step(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict]:
        obs, rewards, terminated, truncated, info = self.vector_env.step(actions)
        if self.resets_finished_envs:
            finished = np.logical_or(terminated, truncated)
            if finished.any():
                reset_obs, reset_info = self.vector_env.reset(options={"reset_mask": finished})
                obs = _where_finished(finished, reset_obs, obs, reset_info.get("env_id"))
        return obs, rewards, terminated, truncated, self._step_info(info)

    def render(self) -> Any:
        return self.vector_env.render()

    def close(self) -> None:
        self.vector_env.close()

    def _step_info(self, info: Dict[str, Any]) -> Dict[str, Any]:
        dropped = _RESET_INFO_KEYS + _ENVPOOL_ROW_INFO_KEYS if self.is_envpool else _RESET_INFO_KEYS
        return {key: value for key, value in info.items() if not key.startswith("_") and key not in dropped}


def _is_envpool(vector_env: gym.vector.VectorEnv) -> bool:
    """Whether the env is one of EnvPool's (told by its classes' modules: pysf does not import envpool)."""
    return any(cls.__module__.startswith("envpool.") for cls in type(vector_env.unwrapped).__mro__)


def _masked_reset_cancels_autoreset(vector_env: gym.vector.VectorEnv) -> bool:
    """Whether resetting a finished sub-env by mask also cancels the reset that a NEXT_STEP env has pending for it
    (so that its next step is a real one): true of gymnasium's own vector envs and of EnvPool, as
    tests/envs/test_gymnasium_vector_env.py checks; not known of others."""
    unwrapped = vector_env.unwrapped
    return isinstance(unwrapped, (gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv)) or _is_envpool(unwrapped)


def _where_finished(finished: np.ndarray, reset_obs: Any, obs: Any, reset_env_ids: Optional[np.ndarray]) -> Any:
    """``obs`` with the finished sub-envs' entries taken from ``reset_obs`` (dict observations key by key).
    ``reset_obs`` holds every sub-env (gymnasium's vector envs) or only the reset ones, in the order of
    ``reset_env_ids`` (EnvPool's ``env_id`` info) or else in index order."""
    if isinstance(obs, dict):
        return {key: _where_finished(finished, reset_obs[key], value, reset_env_ids) for key, value in obs.items()}
    merged = np.array(obs, copy=True)
    reset_obs = np.asarray(reset_obs)
    if reset_obs.shape[0] == merged.shape[0]:
        merged[finished] = reset_obs[finished]
    else:
        rows = np.flatnonzero(finished) if reset_env_ids is None else np.asarray(reset_env_ids)
        merged[rows] = reset_obs
    return merged

