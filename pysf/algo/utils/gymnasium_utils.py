"""Legacy OpenAI Gym envs and spaces as Gymnasium ones (Sample Factory's ``sample_factory.algo.utils.gymnasium_utils``).

pysf runs Gymnasium envs. ``patch_non_gymnasium_env`` turns an env written for OpenAI Gym (the ``gym`` package)
into a ``gymnasium.Env``, and ``convert_space`` turns a ``gym`` space into the equal Gymnasium space (as the
Brax and IsaacGym examples do for their spaces). Gymnasium envs and spaces pass through unchanged.

Unlike Sample Factory, which delegates to the ``shimmy`` package, pysf converts by itself, so ``shimmy`` is not
needed (``gym`` only is, to have gym envs at all):

- gym >= 0.26 envs (``reset(seed=..., options=...)`` -> ``(obs, info)``, ``step`` -> 5-tuple) are wrapped in
  :class:`GymV26CompatibilityEnv`, which forwards the calls as they are;
- older envs (``reset()`` -> ``obs``, ``seed(seed)``, ``step`` -> ``(obs, reward, done, info)``) are wrapped in
  :class:`GymV21CompatibilityEnv`: ``reset(seed=s)`` calls ``env.seed(s)`` first and returns ``(obs, {})``;
  ``done`` becomes ``truncated`` when ``info["TimeLimit.truncated"]`` is set (the key is removed), else
  ``terminated`` (gymnasium's ``convert_to_terminated_truncated_step_api``).
- Discrete spaces keep their ``start`` (shimmy drops it).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from inspect import signature
from types import ModuleType
from typing import Any, Dict, Optional, SupportsFloat, Tuple

import gymnasium
from gymnasium import spaces
from gymnasium.utils.step_api_compatibility import convert_to_terminated_truncated_step_api

from pysf.utils.utils import log

__all__ = [
    "gym_installed",
    "patch_non_gymnasium_env",
    "convert_space",
    "GymV26CompatibilityEnv",
    "GymV21CompatibilityEnv",
]


def _gym_is_installed() -> bool:
    try:
        return importlib.util.find_spec("gym") is not None
    except (ImportError, ValueError):
        return False


# Whether the legacy ``gym`` package can be imported (it is not imported here).
gym_installed = _gym_is_installed()


def _gym_module() -> Optional[ModuleType]:
    """The ``gym`` package when it is (or can be) imported, else None. Imported only when a non-Gymnasium object
    has to be recognized, so Gymnasium-only users never pay for importing gym."""
    module = sys.modules.get("gym")
    if module is not None:
        return module
    if not gym_installed:
        return None
    try:
        import gym  # noqa: F401  (legacy package, optional)
    except ImportError:
        return None
    return sys.modules["gym"]


def convert_space(space: Any) -> spaces.Space:
    """The Gymnasium space equal to ``space``: a Gymnasium space is returned as it is; a ``gym`` Discrete, Box,
    MultiDiscrete, MultiBinary, Tuple, Dict, Sequence, Graph or Text space is rebuilt as its Gymnasium twin
    (recursively for composite spaces).

    Raises:
        ValueError: ``space`` is neither a Gymnasium nor a ``gym`` space (or ``gym`` is not installed).
        NotImplementedError: a ``gym`` space type without a Gymnasium twin.
    """
    if isinstance(space, gymnasium.Space):
        return space
    gym = _gym_module()
    if gym is None or not isinstance(space, gym.spaces.Space):
        raise ValueError(
            f"The space is of type {type(space)}, not a Gymnasium space; convert_space() also accepts spaces of "
            f"the legacy OpenAI Gym package (`gym`){'' if gym is not None else ', which is not installed'}."
        )

    def gym_space_type(name: str) -> Optional[type]:
        return getattr(gym.spaces, name, None)  # Sequence, Graph and Text exist from gym 0.26 only

    def is_a(name: str) -> bool:
        space_type = gym_space_type(name)
        return space_type is not None and isinstance(space, space_type)

    if is_a("Discrete"):
        return spaces.Discrete(n=int(space.n), start=int(getattr(space, "start", 0)))
    if is_a("Box"):
        return spaces.Box(low=space.low, high=space.high, shape=space.shape, dtype=space.dtype)
    if is_a("MultiDiscrete"):
        return spaces.MultiDiscrete(nvec=space.nvec, dtype=space.dtype)
    if is_a("MultiBinary"):
        return spaces.MultiBinary(n=space.n)
    if is_a("Tuple"):
        return spaces.Tuple(tuple(convert_space(s) for s in space.spaces))
    if is_a("Dict"):
        return spaces.Dict({key: convert_space(s) for key, s in space.spaces.items()})
    if is_a("Sequence"):
        return spaces.Sequence(convert_space(space.feature_space))
    if is_a("Graph"):
        edge_space = None if space.edge_space is None else convert_space(space.edge_space)
        return spaces.Graph(node_space=convert_space(space.node_space), edge_space=edge_space)
    if is_a("Text"):
        return spaces.Text(max_length=space.max_length, min_length=space.min_length, charset=space.character_set)
    raise NotImplementedError(
        f"Cannot convert gym space {space!r} ({type(space).__name__}) to a Gymnasium space; "
        "define the env's spaces with gymnasium.spaces instead"
    )


class _GymCompatibilityEnv(gymnasium.Env):
    """What both adapters share: converted spaces, metadata, render mode, spec and close()."""

    def __init__(self, env: Any, render_mode: Optional[str]):
        self.gym_env = env
        self.observation_space = convert_space(env.observation_space)
        self.action_space = convert_space(env.action_space)
        self.metadata = getattr(env, "metadata", {"render_modes": []})
        self.render_mode = render_mode
        self.reward_range = getattr(env, "reward_range", None)
        # gym's EnvSpec has the fields pysf reads (max_episode_steps, reward_threshold).
        self.spec = getattr(env, "spec", None)

    def close(self) -> None:
        self.gym_env.close()

    def __str__(self) -> str:
        return f"<{type(self).__name__}{self.gym_env}>"

    def __repr__(self) -> str:
        return str(self)


class GymV26CompatibilityEnv(_GymCompatibilityEnv):
    """A ``gymnasium.Env`` around a gym >= 0.26 env, whose API is already Gymnasium's: calls are forwarded."""

    def __init__(self, env: Any):
        super().__init__(env, getattr(env, "render_mode", None))

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict]:
        super().reset(seed=seed)
        return self.gym_env.reset(seed=seed, options=options)

    def step(self, action: Any) -> Tuple[Any, SupportsFloat, bool, bool, Dict[str, Any]]:
        return self.gym_env.step(action)

    def render(self) -> Any:
        return self.gym_env.render()


class GymV21CompatibilityEnv(_GymCompatibilityEnv):
    """A ``gymnasium.Env`` around an env with the pre-0.26 gym API (see the module documentation).

    ``options`` of ``reset`` are not supported by that API and are ignored; with ``render_mode="human"`` the env
    is rendered after every reset and step.
    """

    def __init__(self, env: Any, render_mode: Optional[str] = None):
        super().__init__(env, render_mode)

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.gym_env.seed(seed)
        obs = self.gym_env.reset()
        if self.render_mode == "human":
            self.render()
        return obs, {}

    def step(self, action: Any) -> Tuple[Any, SupportsFloat, bool, bool, Dict[str, Any]]:
        obs, reward, done, info = self.gym_env.step(action)
        if self.render_mode == "human":
            self.render()
        return convert_to_terminated_truncated_step_api((obs, reward, done, info))

    def render(self) -> Any:
        if self.render_mode is None:
            return self.gym_env.render()
        return self.gym_env.render(mode=self.render_mode)


def _patch_env(env: Any) -> gymnasium.Env:
    if isinstance(env, gymnasium.Env):
        return env
    gym = _gym_module()
    if gym is None or not isinstance(env, gym.Env):
        raise ValueError(
            f"The environment is of type {type(env)}, not a Gymnasium environment (gymnasium.Env). Make it a "
            "gymnasium.Env subclass; environments of the legacy OpenAI Gym package (gym.Env) are converted "
            f"automatically{'' if gym is not None else ' when gym is installed'}."
        )
    warnings.warn(
        f"{type(env).__name__} is an OpenAI Gym environment: pysf wraps it in a Gymnasium compatibility layer. "
        "Consider porting it to Gymnasium (gymnasium.Env).",
        stacklevel=3,
    )
    if "seed" in signature(env.unwrapped.reset).parameters:
        gymnasium_env: gymnasium.Env = GymV26CompatibilityEnv(env)
    else:
        gymnasium_env = GymV21CompatibilityEnv(env)
    # Multi-agent envs announce themselves with these attributes; keep them visible on the wrapper.
    for attr in ("num_agents", "is_multiagent"):
        if hasattr(env, attr):
            setattr(gymnasium_env, attr, getattr(env, attr))
    return gymnasium_env


def patch_non_gymnasium_env(env: Any) -> gymnasium.Env:
    """``env`` as a Gymnasium env: Gymnasium envs are returned as they are, gym envs wrapped (see the module
    documentation). Observation/action spaces that are still ``gym`` spaces are replaced by their Gymnasium
    twins; where the env does not allow setting them, a warning is logged.

    Raises:
        ValueError: ``env`` is neither a ``gymnasium.Env`` nor a ``gym.Env``.
    """
    env = _patch_env(env)
    try:
        if not isinstance(env.observation_space, gymnasium.Space):
            env.observation_space = convert_space(env.observation_space)
        if not isinstance(env.action_space, gymnasium.Space):
            env.action_space = convert_space(env.action_space)
    except AttributeError:
        # Spaces defined as read-only properties (or missing): leave them, the env may still work.
        log.warning("Could not patch the spaces of %r; consider switching to the Gymnasium API", env)
    return env
