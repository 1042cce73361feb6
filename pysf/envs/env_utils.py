"""Env registration and the optional env-side hooks (Sample Factory's ``sample_factory.envs.env_utils``).

Besides ``register_env``, this module defines the two interfaces an env (or any wrapper around it) may
implement to hear from the trainer, and the helpers that find them through a stack of wrappers:

- ``RewardShapingInterface``: the env exposes a reward-shaping scheme (a dict of named weights) that the
  trainer reads once (``EnvInfo.reward_shaping_scheme``) and may send back, possibly changed (PBT), for one
  agent (``agent_idx: int``) or a range of agents (``agent_idx: slice``, batched sampling).
- ``TrainingInfoInterface``: the env receives a dict about the training session (at least
  ``approx_total_training_steps``), e.g. to drive a curriculum.

An interface is found on the outermost layer that implements it, unwrapping one ``.env`` at a time down to
``env.unwrapped`` (so a gymnasium wrapper in between does not hide it).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Type, TypeVar, Union

from pysf.algo.utils.context import global_env_registry
from pysf.utils.typing import CreateEnvFunc
from pysf.utils.utils import is_module_available, log, retrying

AgentIndex = Union[int, slice]
InterfaceT = TypeVar("InterfaceT")


def register_env(env_name: str, make_env_func: CreateEnvFunc) -> None:
    """Register ``make_env_func(full_env_name, cfg, env_config, render_mode)`` under ``env_name``.

    ``env_config`` is an ``AttrDict(worker_index, vector_index, env_id)`` (``None`` for the temporary env that
    reads the spaces). Register before ``run_rl``: env worker processes receive the registry, so the function
    must be importable (defined at module level).
    """
    if not callable(make_env_func):
        raise TypeError(f"register_env({env_name!r}, ...): make_env_func must be callable, got {make_env_func!r}")
    registry = global_env_registry()
    if env_name in registry:
        log.warning("Environment %s is already registered; overwriting it", env_name)
    registry[env_name] = make_env_func


class EnvCriticalError(Exception):
    """An env failure that must stop training."""


def vizdoom_available() -> bool:
    """Whether the ``vizdoom`` package can be imported."""
    return is_module_available("vizdoom")


def retry(
    exception_class: Union[Type[BaseException], tuple] = Exception, num_attempts: int = 3, sleep_time: float = 1
) -> Callable[[Callable], Callable]:
    """Decorator: call the function up to ``num_attempts`` times while it raises ``exception_class``.

    Each failure but the last is logged and followed by a pause of ``sleep_time`` seconds; the last one
    propagates. Other exceptions propagate at once.
    """
    return retrying(exception_class, num_attempts, lambda _attempt: sleep_time)


def wrapper_layers(env: Any) -> Iterator[Any]:
    """``env``, ``env.env``, ... down to ``env.unwrapped`` (inclusive); pysf's helper, not in Sample Factory.

    A layer that is its own ``unwrapped`` ends the walk even if it has an ``env`` attribute (an env may keep
    an inner simulator under that name, as Sample Factory's IsaacGym example does). A layer without ``env``
    ends it too (not every object handed in is a gymnasium wrapper).
    """
    unwrapped = getattr(env, "unwrapped", env)
    seen = set()
    while env is not None and id(env) not in seen:
        seen.add(id(env))
        yield env
        if env is unwrapped:
            return
        env = getattr(env, "env", None)


def find_wrapper_interface(env: Any, interface_type: Type[InterfaceT]) -> Optional[InterfaceT]:
    """The outermost layer of ``env`` (itself, then ``env.env``, ... down to ``env.unwrapped``) that is an
    instance of ``interface_type``; ``None`` if no layer is."""
    for layer in wrapper_layers(env):
        if isinstance(layer, interface_type):
            return layer
    return None


class RewardShapingInterface:
    """Implemented by envs (or wrappers) whose reward is a weighted sum of named components."""

    def get_default_reward_shaping(self) -> Optional[Dict[str, Any]]:
        """The env's reward-shaping scheme before any change: ``{component name: weight}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_default_reward_shaping()")

    def set_reward_shaping(self, reward_shaping: Dict[str, Any], agent_idx: AgentIndex) -> None:
        """Use ``reward_shaping`` from now on for agent ``agent_idx`` (an int), or for every agent in the range
        ``agent_idx`` (a slice: the batched sampler sets one scheme for all the agents of an env at once)."""
        raise NotImplementedError(f"{type(self).__name__} must implement set_reward_shaping()")


def get_default_reward_shaping(env: Any) -> Optional[Dict[str, Any]]:
    """The default scheme of the first ``RewardShapingInterface`` found in ``env``'s wrappers, else ``None``."""
    interface = find_wrapper_interface(env, RewardShapingInterface)
    if interface is None:
        return None
    return interface.get_default_reward_shaping()


def set_reward_shaping(env: Any, reward_shaping: Optional[Dict[str, Any]], agent_idx: AgentIndex) -> None:
    """Hand ``reward_shaping`` to the first ``RewardShapingInterface`` in ``env``'s wrappers.

    Nothing happens when ``reward_shaping`` is ``None`` (the env has no scheme) or no layer implements the
    interface.
    """
    if reward_shaping is None:
        return
    interface = find_wrapper_interface(env, RewardShapingInterface)
    if interface is not None:
        interface.set_reward_shaping(reward_shaping, agent_idx)


class TrainingInfoInterface:
    """Implemented by envs (or wrappers) that want to know how far training is (curricula and the like).

    ``set_training_info`` keeps the latest dict in ``self.training_info``; it always has
    ``approx_total_training_steps`` (env steps of the agent's policy so far, lagging a little behind the
    learner) and also ``policy_id`` and ``reward_shaping``.
    """

    def __init__(self) -> None:
        self.training_info: Dict[str, Any] = dict()

    def set_training_info(self, training_info: Dict[str, Any]) -> None:
        """Receive the latest training information (override to react to it)."""
        self.training_info = training_info


def find_training_info_interface(env: Any) -> Optional[TrainingInfoInterface]:
    """The first ``TrainingInfoInterface`` in ``env``'s wrappers, else ``None``."""
    return find_wrapper_interface(env, TrainingInfoInterface)


def set_training_info(training_info_interface: Optional[TrainingInfoInterface], training_info: Dict[str, Any]) -> None:
    """Hand ``training_info`` to ``training_info_interface`` (found once with ``find_training_info_interface``);
    nothing happens when it is ``None``."""
    if training_info_interface is not None:
        training_info_interface.set_training_info(training_info)


def num_env_steps(infos: Iterable[Dict[str, Any]]) -> int:
    """Env frames behind a batch of steps: each info counts its ``num_frames`` (e.g. a frameskip), else 1."""
    return sum(info.get("num_frames", 1) for info in infos)
