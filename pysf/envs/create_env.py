"""Creating one Python env (Sample Factory's ``sample_factory.envs.create_env``)."""

from __future__ import annotations

from typing import Any, Optional

from pysf.algo.utils.context import global_env_registry
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config


def create_env(
    full_env_name: str,
    cfg: Optional[Config] = None,
    env_config: Optional[AttrDict] = None,
    render_mode: Optional[str] = None,
) -> Any:
    """A registered env (``make_env_func(full_env_name, cfg, env_config, render_mode)``), else ``gymnasium.make``.

    Any gymnasium id works without registration; ``register_env`` is needed for custom envs and to add
    wrappers.
    """
    registry = global_env_registry()
    if full_env_name in registry:
        return registry[full_env_name](full_env_name, cfg, env_config, render_mode)
    import gymnasium

    try:
        return gymnasium.make(full_env_name, render_mode=render_mode)
    except gymnasium.error.Error as exc:
        raise ValueError(
            f"Unknown env {full_env_name!r}: it is neither registered with pysf.envs.env_utils.register_env "
            f"(registered: {sorted(registry)}) nor a gymnasium id ({exc})"
        ) from exc
