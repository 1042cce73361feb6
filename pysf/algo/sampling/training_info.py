"""Training information for envs: Sample Factory's ``TrainingInfoInterface`` and ``RewardShapingInterface`` hooks.

The runner publishes ``training_info(...)`` of every policy when sampling starts and every
``TRAINING_INFO_INTERVAL_SECONDS`` (as Sample Factory's runner does) into a ``SharedTrainingInfo`` that every env
worker process reads; a worker hands the newest one of an agent's policy to its env whenever one of the agent's
episodes ends (and once right after the env is created): ``set_reward_shaping`` with that policy's reward shaping
for the agent, then ``set_training_info``. Envs without either interface cost nothing.
"""

from __future__ import annotations

import ctypes
import pickle
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pysf.envs.env_utils import (
    RewardShapingInterface,
    find_training_info_interface,
    find_wrapper_interface,
    set_reward_shaping,
    set_training_info,
)
from pysf.algo.utils.multiprocessing_utils import get_mp_ctx
from pysf.utils.typing import PolicyID

TRAINING_INFO_INTERVAL_SECONDS = 5.0


def training_info(policy_id: PolicyID, env_steps: int, reward_shaping: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The dict an env receives (Sample Factory's keys; the step count lags training a little)."""
    return dict(policy_id=policy_id, approx_total_training_steps=int(env_steps), reward_shaping=reward_shaping)


class SharedTrainingInfo:
    """The newest training info, in shared memory: written by the runner, read by any number of workers.

    Only the newest value matters, so it is one slot (pickled, with a version number) rather than a queue that
    workers whose envs have no hooks would never drain.
    """

    CAPACITY_BYTES = 1 << 16

    def __init__(self, context: Any = None):
        context = context or get_mp_ctx(False)
        self._version = context.Value(ctypes.c_int64, 0)  # its lock guards the payload too
        self._payload = context.Array(ctypes.c_char, self.CAPACITY_BYTES, lock=False)
        self._size = context.Value(ctypes.c_int64, 0, lock=False)

    def publish(self, info: List[Dict[str, Any]]) -> None:
        """Make ``info`` (one dict per policy, policy p at index p) the newest training info."""
        data = pickle.dumps(info)
        if len(data) > self.CAPACITY_BYTES:
            raise ValueError(f"training info of {len(data)} bytes exceeds {self.CAPACITY_BYTES} (reward shaping too large?)")
        with self._version.get_lock():
            self._payload[: len(data)] = data
            self._size.value = len(data)
            self._version.value += 1

    def read_if_newer(self, version: int) -> Optional[Tuple[int, List[Dict[str, Any]]]]:
        """``(version, info)`` if there is a newer one than ``version``, else None (one shared-memory read)."""
        if self._version.value == version:
            return None
        with self._version.get_lock():
            return self._version.value, pickle.loads(self._payload[: self._size.value])


class EnvTrainingHooks:
    """The interfaces of one worker's envs (found once) and the newest training info from the runner.

    ``policy_ids[index * agents_per_env + agent]`` is the policy agent ``agent`` of env ``index`` acts for (all 0
    when not given)."""

    def __init__(self, envs: List[Any], shared: Optional[SharedTrainingInfo], agents_per_env: int = 1,
                 policy_ids: Optional[Sequence[int]] = None):
        self.envs = envs
        self.agents_per_env = agents_per_env
        self.policy_ids = list(policy_ids) if policy_ids is not None else [0] * (len(envs) * agents_per_env)
        self.training_interfaces = [find_training_info_interface(env) for env in envs]
        self.has_reward_shaping = [find_wrapper_interface(env, RewardShapingInterface) is not None for env in envs]
        self.active = shared is not None and (
            any(i is not None for i in self.training_interfaces) or any(self.has_reward_shaping)
        )
        self.shared = shared
        self.version = 0
        self.latest: Optional[List[Dict[str, Any]]] = None
        if self.active:
            for index in range(len(envs)):
                for agent in range(agents_per_env):
                    self.apply(index, agent)

    def _refresh(self) -> None:
        newer = self.shared.read_if_newer(self.version)
        if newer is not None:
            self.version, self.latest = newer

    def apply(self, index: int, agent: int = 0, policy_id: Optional[int] = None) -> None:
        """Hand the newest training info of policy ``policy_id`` (default: the one the agent started with) to env
        ``index`` (at an episode boundary of its agent ``agent``)."""
        if not self.active:
            return
        self._refresh()
        if self.latest is None:
            return
        if policy_id is None:
            policy_id = self.policy_ids[index * self.agents_per_env + agent]
        info = self.latest[policy_id]
        if self.has_reward_shaping[index]:
            set_reward_shaping(self.envs[index], info.get("reward_shaping"), agent)
        set_training_info(self.training_interfaces[index], info)
