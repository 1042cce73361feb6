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
    wrappers. A factory may return a gymnasium vector env: it comes back as a batched multi-agent env
    (``pysf.envs.gymnasium_vector_env``); a PettingZoo parallel or turn-based (AEC) env comes back as a multi-agent
    env (``pysf.envs.pettingzoo_env``).
    """
    import gymnasium

    from pysf.algo.utils.gymnasium_utils import patch_non_gymnasium_env

    registry = global_env_registry()
    if full_env_name in registry:
        make_env_func = registry[full_env_name]
        try:
            env = make_env_func(full_env_name, cfg, env_config, render_mode)
        except gymnasium.error.NameNotFound:
            # gymnasium 1.x registers the Atari ids only once ale_py is imported (gym did it by itself).
            if not _register_ale_envs():
                raise
            env = make_env_func(full_env_name, cfg, env_config, render_mode)
        if isinstance(env, gymnasium.vector.VectorEnv):
            from pysf.envs.gymnasium_vector_env import GymnasiumVectorEnvAdapter

            return GymnasiumVectorEnvAdapter(env)
        from pysf.envs import pettingzoo_env

        if pettingzoo_env.is_pettingzoo_parallel_env(env):
            return pettingzoo_env.PettingZooParallelEnv(env)
        if pettingzoo_env.is_pettingzoo_aec_env(env):
            return pettingzoo_env.PettingZooAECEnv(env)
        return patch_non_gymnasium_env(env)  # legacy gym envs are converted, as in Sample Factory

    if full_env_name.startswith("ALE/") or "NoFrameskip" in full_env_name:
        _register_ale_envs()
    _register_python_twins()
    try:
        return gymnasium.make(full_env_name, render_mode=render_mode)
    except gymnasium.error.Error as exc:
        raise ValueError(
            f"Unknown env {full_env_name!r}: it is neither registered with pysf.envs.env_utils.register_env "
            f"(registered: {sorted(registry)}) nor a gymnasium id ({exc})"
        ) from exc


def _register_python_twins() -> None:
    """Give gymnasium the Python references of the native envs that gymnasium does not have (ConnectFour-v0), so
    that ``enjoy`` and ``--env_backend=gym`` find them under the same id."""
    import gymnasium

    if "ConnectFour-v0" not in gymnasium.registry:
        # A two-agent env (lists per agent): gymnasium's single-agent checker does not apply.
        gymnasium.register("ConnectFour-v0", entry_point="pysf.envs.connect_four:ConnectFourEnv",
                           disable_env_checker=True)


def _register_ale_envs() -> bool:
    """Register ale_py's Atari envs with gymnasium if ale_py is installed and not yet registered."""
    import sys

    if "ale_py" in sys.modules:
        return False
    try:
        import ale_py
    except ImportError:
        return False
    import gymnasium

    gymnasium.register_envs(ale_py)
    return True
