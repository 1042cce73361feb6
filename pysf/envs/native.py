"""pysf's native (C++) environments as seen from Python: names, spaces, and backend selection."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from gymnasium import spaces

from pysf.algo.utils.context import global_env_registry
from pysf.cfg.backends import env_backend_problem
from pysf.utils.typing import Config



def native_env_names() -> List[str]:
    """Env ids with a native C++ implementation (e.g. ``CartPole-v1``)."""
    from pysf import _C

    return list(_C.native_env_names())


def _space_from_spec(spec: Dict) -> spaces.Space:
    if spec["kind"] == "discrete":
        return spaces.Discrete(int(spec["n"]))
    shape = tuple(int(s) for s in spec["shape"])
    low = np.asarray(spec["low"], dtype=np.float32).reshape(shape)
    high = np.asarray(spec["high"], dtype=np.float32).reshape(shape)
    return spaces.Box(low, high, shape, dtype=np.float32)


def native_env_spaces(env_name: str) -> Tuple[spaces.Space, spaces.Space, int, Optional[float], int]:
    """``(observation_space, action_space, max_episode_steps, reward_threshold, num_agents)`` of a native env
    (``num_agents``: the agents that play one env together, e.g. a board game's two seats)."""
    from pysf import _C

    spec = _C.native_env_spec(env_name)
    threshold = spec.get("reward_threshold")
    return (
        _space_from_spec(spec["observation_space"]),
        _space_from_spec(spec["action_space"]),
        int(spec["max_episode_steps"]),
        None if threshold is None else float(threshold),
        int(spec["num_agents"]),
    )


def use_native_env(cfg: Config) -> bool:
    """Whether ``cfg.env`` runs on the native engine (``--env_backend``: auto, native or gym).

    ``auto`` picks the native implementation when one exists and the name was not registered with
    ``register_env`` (a registered factory may add wrappers, so it is honored).
    """
    backend = getattr(cfg, "env_backend", "auto")
    problem = env_backend_problem(backend)
    if problem is not None:
        raise ValueError(problem)
    names = native_env_names()
    if backend == "native":
        if cfg.env not in names:
            raise ValueError(f"--env_backend=native: there is no native implementation of {cfg.env!r} (native envs: {names})")
        return True
    if backend == "gym":
        return False
    return cfg.env in names and cfg.env not in global_env_registry()
