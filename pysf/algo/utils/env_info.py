"""What the trainer needs to know about an env (Sample Factory's ``sample_factory.algo.utils.env_info``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from gymnasium import spaces

from pysf.utils.typing import ActionSpace, Config, ObsSpace


@dataclass
class EnvInfo:
    """Spaces and properties of an env, obtained once before training."""

    obs_space: ObsSpace
    action_space: ActionSpace
    num_agents: int = 1
    gpu_actions: bool = False
    gpu_observations: bool = False
    action_splits: Optional[List[int]] = None
    all_discrete: Optional[bool] = None
    frameskip: int = 1
    reward_shaping_scheme: Optional[Any] = None
    env_info_protocol_version: Optional[int] = None
    # pysf: whether the env runs natively (C++), and its time limit when known
    native: bool = False
    max_episode_steps: Optional[int] = None
    obs_is_dict: bool = True  # False: the env returns bare observations, stored under key "obs"
    reward_threshold: Optional[float] = None  # the env's "solved" level (gymnasium spec), when it has one


def as_dict_space(space: spaces.Space) -> spaces.Dict:
    """Non-dict observation spaces become ``Dict(obs=space)`` (the main key is ``obs``)."""
    if isinstance(space, spaces.Dict):
        return space
    return spaces.Dict(obs=space)


def _action_splits(action_space: ActionSpace) -> tuple:
    if not isinstance(action_space, spaces.Tuple):
        return None, None
    from pysf.algo.utils.action_distributions import calc_num_actions

    return [calc_num_actions(s) for s in action_space.spaces], all(isinstance(s, spaces.Discrete) for s in action_space.spaces)


def extract_env_info(env: Any, cfg: Config) -> EnvInfo:
    """EnvInfo of a created gymnasium env."""
    action_splits, all_discrete = _action_splits(env.action_space)
    spec = getattr(env, "spec", None)
    return EnvInfo(
        obs_space=as_dict_space(env.observation_space),
        action_space=env.action_space,
        num_agents=int(getattr(env, "num_agents", 1)),
        action_splits=action_splits,
        all_discrete=all_discrete,
        frameskip=int(getattr(cfg, "env_frameskip", 1)),
        max_episode_steps=getattr(spec, "max_episode_steps", None) if spec is not None else None,
        obs_is_dict=isinstance(env.observation_space, spaces.Dict),
        reward_threshold=getattr(spec, "reward_threshold", None) if spec is not None else None,
    )


def obtain_env_info(cfg: Config) -> EnvInfo:
    """EnvInfo of ``cfg.env``: read from the native spec, or from a temporary Python env."""
    from pysf.envs.native import native_env_spaces, use_native_env

    if use_native_env(cfg):
        obs_space, action_space, max_steps, reward_threshold = native_env_spaces(cfg.env)
        return EnvInfo(
            obs_space=as_dict_space(obs_space),
            action_space=action_space,
            frameskip=int(getattr(cfg, "env_frameskip", 1)),
            native=True,
            max_episode_steps=max_steps,
            obs_is_dict=False,
            reward_threshold=reward_threshold,
        )
    from pysf.envs.create_env import create_env

    env = create_env(cfg.env, cfg=cfg, env_config=None)
    try:
        return extract_env_info(env, cfg)
    finally:
        env.close()
