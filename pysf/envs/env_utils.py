"""Env registration (Sample Factory's ``sample_factory.envs.env_utils``)."""

from __future__ import annotations

import logging

from pysf.algo.utils.context import global_env_registry
from pysf.utils.typing import CreateEnvFunc

log = logging.getLogger(__name__)


class EnvCriticalError(Exception):
    """An env failure that must stop training."""


def register_env(env_name: str, make_env_func: CreateEnvFunc) -> None:
    """Register ``make_env_func(full_env_name, cfg, env_config, render_mode)`` under ``env_name``.

    Register before ``run_rl``: env worker processes receive the registry, so the function must be
    importable (defined at module level).
    """
    if not callable(make_env_func):
        raise TypeError(f"register_env({env_name!r}, ...): make_env_func must be callable, got {make_env_func!r}")
    registry = global_env_registry()
    if env_name in registry:
        log.warning("Environment %s is already registered; overwriting it", env_name)
    registry[env_name] = make_env_func
