"""What the trainer needs to know about an env (Sample Factory's ``sample_factory.algo.utils.env_info``).

``obtain_env_info(cfg)`` reads it in this process: from the compiled spec of a native env, else from a
temporary env (``create_env``) that is closed right away. ``obtain_env_info_in_a_separate_process(cfg)``
(Sample Factory's way) does the same in a spawned process, so that creating the env leaves nothing behind in
the caller (threads, GPU or display contexts); the factory must then be importable there (defined at module
level, registered before the call). Both give the same ``EnvInfo``.

With ``--use_env_info_cache`` both read and write a pickled cache entry (``env_info_cache_filename``) instead
of creating the temporary env, for envs that are slow to start. An entry is used only if it was made for the
same inputs: the EnvInfo protocol and field names, pysf's version, the env name, how the env is made (the
registered factory's name and arguments and the modification time and size of its module file, or the
gymnasium registration and its entry point's file) and every env-side cfg value (all cfg entries except the
trainer's own flags: ``--env_*`` flags and the ones scripts add). An entry that cannot be read, is not a pysf
entry or was made for other inputs is logged and rebuilt. An env whose code changed elsewhere (not in the
factory's module) is not seen by that check; ``check_env_info`` catches it when the workers create their envs
(it deletes the entry and raises, as in Sample Factory), so the next start rebuilds it. Native envs never use
the cache: their spec is compiled in and reading it costs less than reading the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pickle
import queue
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from os.path import join
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from gymnasium import spaces

from pysf.algo.utils.context import SampleFactoryContext, global_env_registry, set_global_context, sf_global_context
from pysf.algo.utils.make_env import (
    BatchedListToDictWrapper,
    BatchedMultiAgentWrapper,
    BatchedVecEnv,
    NonBatchedMultiAgentWrapper,
    NonBatchedVecEnv,
    _DictObservationsWrapper,
    get_multiagent_info,
)
from pysf.algo.utils.multiprocessing_utils import die_with_parent, get_mp_ctx, new_child_process, start_child_process
from pysf.envs.env_utils import get_default_reward_shaping, wrapper_layers
from pysf.utils.typing import ActionSpace, Config, ObsSpace
from pysf.utils.utils import log, project_tmp_dir

# Bump when the meaning of an EnvInfo field changes (added or removed fields invalidate cache entries anyway).
ENV_INFO_PROTOCOL_VERSION = 2

_CACHE_FORMAT = "pysf env info cache"


@dataclass
class EnvInfo:
    """Spaces and properties of an env, obtained once before training."""

    obs_space: ObsSpace  # always a Dict space (a bare observation space becomes Dict(obs=space))
    action_space: ActionSpace
    num_agents: int = 1
    gpu_actions: bool = False  # the env expects actions as GPU tensors (--env_gpu_actions)
    gpu_observations: bool = False  # the env returns GPU tensors (--env_gpu_observations)
    action_splits: Optional[List[int]] = None  # Tuple action spaces: the number of actions of each part
    all_discrete: Optional[bool] = None  # Tuple action spaces: whether every part is Discrete
    frameskip: int = 1
    reward_shaping_scheme: Optional[Dict[str, Any]] = None  # the env's RewardShapingInterface default, if any
    env_info_protocol_version: Optional[int] = None
    # pysf: whether the env runs natively (C++), and its time limit when known
    native: bool = False
    max_episode_steps: Optional[int] = None
    obs_is_dict: bool = True  # False: the env returns bare observations, stored under key "obs"
    reward_threshold: Optional[float] = None  # the env's "solved" level (gymnasium spec), when it has one
    # pysf: the env itself is multi-agent (per-agent sequences in and out); single-agent envs are False even
    # though make_env_func_batched/non_batched present them as 1-agent multi-agent envs
    is_multiagent: bool = False


def as_dict_space(space: spaces.Space) -> spaces.Dict:
    """Non-dict observation spaces become ``Dict(obs=space)`` (the main key is ``obs``)."""
    if isinstance(space, spaces.Dict):
        return space
    return spaces.Dict(obs=space)


def _action_splits(action_space: ActionSpace) -> Tuple[Optional[List[int]], Optional[bool]]:
    if not isinstance(action_space, spaces.Tuple):
        return None, None
    from pysf.algo.utils.action_distributions import calc_num_actions

    splits = [calc_num_actions(s) for s in action_space.spaces]
    return splits, all(isinstance(s, spaces.Discrete) for s in action_space.spaces)


# the layers make_env adds: extract_env_info looks through them for what the env itself is
_VEC_ENV_LAYERS = (
    BatchedVecEnv,
    NonBatchedVecEnv,
    BatchedListToDictWrapper,
    BatchedMultiAgentWrapper,
    NonBatchedMultiAgentWrapper,
    _DictObservationsWrapper,
)
_SINGLE_AGENT_LAYERS = (BatchedMultiAgentWrapper, NonBatchedMultiAgentWrapper)


def _has_layer(env: Any, classes: Any) -> bool:
    return any(isinstance(layer, classes) for layer in wrapper_layers(env))


def extract_env_info(env: Any, cfg: Config) -> EnvInfo:
    """EnvInfo of a created env: as ``create_env`` returns it, or wrapped by ``make_env_func_batched`` /
    ``make_env_func_non_batched`` (the result is the same)."""
    is_multiagent, num_agents = get_multiagent_info(env)
    obs_wrapped_in_dict = _has_layer(env, _DictObservationsWrapper)
    env_itself = next((layer for layer in wrapper_layers(env) if not isinstance(layer, _VEC_ENV_LAYERS)), env)
    spec = getattr(env_itself, "spec", None)
    action_splits, all_discrete = _action_splits(env.action_space)
    return EnvInfo(
        obs_space=as_dict_space(env.observation_space),
        action_space=env.action_space,
        num_agents=num_agents,
        gpu_actions=cfg.env_gpu_actions,
        gpu_observations=cfg.env_gpu_observations,
        action_splits=action_splits,
        all_discrete=all_discrete,
        frameskip=cfg.env_frameskip,
        reward_shaping_scheme=get_default_reward_shaping(env),
        env_info_protocol_version=ENV_INFO_PROTOCOL_VERSION,
        native=False,
        max_episode_steps=getattr(spec, "max_episode_steps", None),
        obs_is_dict=isinstance(env.observation_space, spaces.Dict) and not obs_wrapped_in_dict,
        reward_threshold=getattr(spec, "reward_threshold", None),
        is_multiagent=is_multiagent and not _has_layer(env, _SINGLE_AGENT_LAYERS),
    )


def _native_env_info(cfg: Config) -> EnvInfo:
    from pysf.envs.native import native_env_spaces

    obs_space, action_space, max_steps, reward_threshold, num_agents = native_env_spaces(cfg.env)
    action_splits, all_discrete = _action_splits(action_space)
    return EnvInfo(
        obs_space=as_dict_space(obs_space),
        action_space=action_space,
        num_agents=num_agents,
        gpu_actions=cfg.env_gpu_actions,
        gpu_observations=cfg.env_gpu_observations,
        action_splits=action_splits,
        all_discrete=all_discrete,
        frameskip=cfg.env_frameskip,
        reward_shaping_scheme=None,
        env_info_protocol_version=ENV_INFO_PROTOCOL_VERSION,
        native=True,
        max_episode_steps=max_steps,
        obs_is_dict=False,
        reward_threshold=reward_threshold,
        is_multiagent=num_agents > 1,
    )


def _uncached_env_info(cfg: Config) -> EnvInfo:
    """EnvInfo from the native spec, or from a temporary env (closed before returning)."""
    from pysf.envs.native import use_native_env

    if use_native_env(cfg):
        return _native_env_info(cfg)
    from pysf.envs.create_env import create_env

    try:
        env = create_env(cfg.env, cfg=cfg, env_config=None)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's env factory: report it like a configuration problem
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        # The innermost frame outside installed packages is usually the user's line.
        own = [f for f in frames if "site-packages" not in f.filename and os.sep + "pysf" + os.sep not in f.filename]
        where = (own or frames)[-1]
        raise ValueError(
            f"Creating env {cfg.env!r} to read its spaces failed: {type(exc).__name__}: {exc} "
            f"(at {where.filename}:{where.lineno}). Check the env's make_env_func and the packages it needs."
        ) from exc
    try:
        return extract_env_info(env, cfg)
    finally:
        env.close()


def _differing_fields(expected: EnvInfo, actual: EnvInfo, ignore: Sequence[str] = ()) -> List[str]:
    return [
        f.name
        for f in dataclasses.fields(EnvInfo)
        if f.name not in ignore and getattr(expected, f.name) != getattr(actual, f.name)
    ]


def check_env_info(env: Any, env_info: EnvInfo, cfg: Config) -> None:
    """Raise ``ValueError`` if ``env`` (a newly created env) does not match ``env_info`` (what training was set
    up for, possibly read from the cache); the cache entry is deleted then, so the next start rebuilds it.

    ``native`` is not compared: it says how pysf runs the env, not what the env is.
    """
    new_env_info = extract_env_info(env, cfg)
    differing = _differing_fields(env_info, new_env_info, ignore=("native",))
    if not differing:
        return
    details = "; ".join(f"{name}: {getattr(env_info, name)!r} != {getattr(new_env_info, name)!r}" for name in differing)
    cache_filename = env_info_cache_filename(cfg)
    removed = False
    try:
        os.remove(cache_filename)
        removed = True
    except OSError:
        pass  # no cache entry (or not removable): nothing more to clean up
    log.error(
        "The env %r does not match the env info training was set up with (%s).%s",
        cfg.env,
        details,
        f" Deleted the env info cache entry {cache_filename}." if removed else "",
    )
    raise ValueError(
        f"Env info mismatch for env {cfg.env!r} ({details}). The env changed after its env info was obtained "
        f"(or cached); start again (the cache entry was removed, it will be rebuilt), or run with "
        f"--use_env_info_cache=False."
    )


# --------------------------------------------------------------------------------------------------------------
# The temporary env in a spawned process
# --------------------------------------------------------------------------------------------------------------


def spawn_tmp_env_and_get_info(sf_context: SampleFactoryContext, res_queue: Any, cfg: Config, parent_pid: int) -> None:
    """Body of the spawned process: install the parent's registries, obtain the env info, put the result in
    ``res_queue`` as ``("ok", pickled EnvInfo)`` or ``("error", description with traceback)``."""
    die_with_parent(parent_pid)
    set_global_context(sf_context)
    try:
        env_info = _uncached_env_info(cfg)
        log.debug("Env info: %r", env_info)
        # pickled here, so that an unpicklable EnvInfo is reported instead of failing in the queue's thread
        res_queue.put(("ok", pickle.dumps(env_info)))
    except BaseException as exc:  # reported to the parent, which raises
        res_queue.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _env_info_in_a_spawned_process(cfg: Config) -> EnvInfo:
    res_queue = get_mp_ctx(False).Queue()
    process = new_child_process(spawn_tmp_env_and_get_info, (sf_global_context(), res_queue, cfg, os.getpid()),
                                name="pysf-env-info")
    start_child_process(process)
    try:
        result = None
        while result is None:
            try:
                result = res_queue.get(timeout=0.5)
            except queue.Empty:
                if not process.is_alive():
                    try:  # it may have put its result just before exiting
                        result = res_queue.get(timeout=1.0)
                    except queue.Empty:
                        raise RuntimeError(
                            f"The process that creates a temporary {cfg.env!r} env to read its spaces exited with code "
                            f"{process.exitcode} without a result (see its output above)"
                        ) from None
        process.join()
    finally:
        if process.is_alive():  # interrupted (Ctrl-C) or failed while waiting
            process.kill()
            process.join()
        res_queue.close()
    status, payload = result
    if status != "ok":
        raise RuntimeError(
            f"Creating a temporary {cfg.env!r} env in a separate process (to read its spaces) failed: {payload}"
        )
    return pickle.loads(payload)


# --------------------------------------------------------------------------------------------------------------
# The env info cache
# --------------------------------------------------------------------------------------------------------------


def env_info_cache_filename(cfg: Config) -> str:
    """The cache entry of ``cfg.env``: ``<tmp>/sf2_<user>/pysf_env_info_<env>``.

    Sample Factory's entries are ``env_info_<env>`` in the same folder; pysf's have their own name because
    each can only read its own pickles.
    """
    safe_name = re.sub(r"[^A-Za-z0-9_.=+-]", "_", str(cfg.env))
    return join(project_tmp_dir(), f"pysf_env_info_{safe_name}")


# cfg entries that are not flags (set by postprocess_args) or do not shape the env
_NON_ENV_CFG_KEYS = frozenset({"command_line", "cli_args", "git_hash", "git_repo_name", "use_env_info_cache"})


def _trainer_flag_names() -> frozenset:
    """Flags of pysf's trainer (everything but the env group): they do not shape the env. ``env`` is one of them
    (it is a key of its own)."""
    from pysf.cfg.arguments import trainer_flag_names

    return trainer_flag_names()


def _stable_repr(value: Any) -> str:
    """``repr`` without object addresses, which change from process to process."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def _file_stamp(path: Optional[str]) -> Optional[Tuple[str, int, int]]:
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_mtime_ns, stat.st_size


def _callable_source(func: Any) -> Tuple[str, Optional[Tuple[str, int, int]]]:
    """``(module.qualname, stamp of its module's file)`` of a factory (``functools.partial`` unwrapped)."""
    while isinstance(func, functools.partial):
        func = func.func
    module_name = getattr(func, "__module__", None) or type(func).__module__
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = sys.modules.get(module_name)
    return f"{module_name}.{qualname}", _file_stamp(getattr(module, "__file__", None))


def _env_source(env_name: str) -> Tuple:
    """What makes ``env_name``'s env: its registered factory, else its gymnasium registration."""
    registry = global_env_registry()
    if env_name in registry:
        factory = registry[env_name]
        return ("registered", _stable_repr(factory)) + _callable_source(factory)
    import gymnasium

    try:
        gym_spec = gymnasium.spec(env_name)
    except gymnasium.error.Error:
        return ("unknown",)  # creating it fails with the full explanation
    entry_point = gym_spec.entry_point
    if isinstance(entry_point, str):
        try:
            module_spec = importlib.util.find_spec(entry_point.split(":")[0])
        except (ImportError, ValueError):
            module_spec = None
        stamp = _file_stamp(getattr(module_spec, "origin", None))
    else:
        stamp = _callable_source(entry_point)[1]
    return ("gymnasium", gymnasium.__version__, _stable_repr(gym_spec), stamp)


def _cache_key(cfg: Config) -> Dict[str, Any]:
    """Everything the cached EnvInfo was derived from (as far as it can be seen without creating the env)."""
    import pysf
    from pysf.cfg.arguments import cfg_dict

    trainer_flags = _trainer_flag_names()
    env_side_cfg = sorted(
        (name, _stable_repr(value))
        for name, value in cfg_dict(cfg).items()
        if name not in trainer_flags and name not in _NON_ENV_CFG_KEYS
    )
    return dict(
        protocol=ENV_INFO_PROTOCOL_VERSION,
        fields=tuple(f.name for f in dataclasses.fields(EnvInfo)),
        pysf=pysf.__version__,
        env=cfg.env,
        source=_env_source(cfg.env),
        cfg=env_side_cfg,
    )


def _describe_key_difference(stored: Any, key: Dict[str, Any]) -> str:
    if not isinstance(stored, dict):
        return "no key"
    parts = [name for name in key if name != "cfg" and stored.get(name) != key[name]]
    if stored.get("cfg") != key["cfg"]:
        old, new = dict(stored.get("cfg") or ()), dict(key["cfg"])
        names = sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))
        parts.append("cfg " + ", ".join(names))
    return ", ".join(parts)


def _load_cached_env_info(filename: str, key: Dict[str, Any]) -> Optional[EnvInfo]:
    """The cached EnvInfo if ``filename`` holds a readable pysf entry made for ``key``; else ``None`` (logged)."""
    if not os.path.isfile(filename):
        log.debug("No env info cache entry %s yet", filename)
        return None
    try:
        with open(filename, "rb") as fobj:
            entry = pickle.load(fobj)
    except Exception as exc:  # anything unpickling can raise: truncated file, foreign classes, garbage
        log.warning("Env info cache entry %s cannot be read (%s: %s); rebuilding it", filename, type(exc).__name__, exc)
        return None
    is_pysf_entry = isinstance(entry, dict) and entry.get("format") == _CACHE_FORMAT
    if not (is_pysf_entry and isinstance(entry.get("env_info"), EnvInfo)):
        log.warning("Env info cache entry %s is not a pysf env info entry; rebuilding it", filename)
        return None
    if entry.get("key") != key:
        log.info(
            "Env info cache entry %s was made for other inputs (%s differ); rebuilding it",
            filename,
            _describe_key_difference(entry.get("key"), key),
        )
        return None
    log.debug("Env info read from the cache entry %s", filename)
    return entry["env_info"]


def _store_cached_env_info(filename: str, key: Dict[str, Any], env_info: EnvInfo) -> None:
    """Write the entry atomically (a concurrent start reads the old entry or the new one, never half of one)."""
    entry = dict(format=_CACHE_FORMAT, key=key, env_info=env_info)
    directory = os.path.dirname(filename)
    tmp_name = None
    try:
        with tempfile.NamedTemporaryFile("wb", dir=directory, prefix=".tmp_env_info_", delete=False) as fobj:
            tmp_name = fobj.name
            pickle.dump(entry, fobj)
        os.replace(tmp_name, filename)
        log.debug("Env info cached in %s", filename)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        # the cache only saves time: training goes on without it
        log.warning("Could not write the env info cache entry %s (%s: %s)", filename, type(exc).__name__, exc)
        if tmp_name is not None and os.path.exists(tmp_name):
            os.remove(tmp_name)


def _obtain(cfg: Config, build: Callable[[Config], EnvInfo]) -> EnvInfo:
    """``build(cfg)``, through the cache when ``--use_env_info_cache`` is on (never for native envs)."""
    from pysf.envs.native import use_native_env

    if not cfg.use_env_info_cache or use_native_env(cfg):
        return build(cfg)
    key = _cache_key(cfg)
    filename = env_info_cache_filename(cfg)
    env_info = _load_cached_env_info(filename, key)
    if env_info is None:
        env_info = build(cfg)
        _store_cached_env_info(filename, key, env_info)
    return env_info


def obtain_env_info(cfg: Config) -> EnvInfo:
    """EnvInfo of ``cfg.env``, read in this process (see the module docstring; honours ``--use_env_info_cache``)."""
    return _obtain(cfg, _uncached_env_info)


def obtain_env_info_in_a_separate_process(cfg: Config) -> EnvInfo:
    """EnvInfo of ``cfg.env`` read in a spawned process (Sample Factory's way; honours ``--use_env_info_cache``).

    The process receives this process's registries (``sf_global_context()``), so registered factories must be
    importable by it. An error there is raised here as a ``RuntimeError`` with its traceback.
    """
    return _obtain(cfg, _env_info_in_a_spawned_process)
