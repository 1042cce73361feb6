"""Env worker processes for Python (gymnasium) envs.

Each process owns ``num_splits`` splits of ``block_rows`` envs created with the registered
``make_env_func(full_env_name, cfg, env_config, render_mode)`` (or ``gymnasium.make``). The native sampler
tells it, per split, which trajectory block and step to act on; the process reads the actions from the
shared trajectory buffers, steps its envs, writes observations, raw rewards and termination/truncation
flags back into the buffers and reports "stepped" through a pipe. Nothing is pickled per step; finished
episodes' statistics travel through a multiprocessing queue (one message per episode).

Outputs are validated: an observation of the wrong shape or dtype, a NaN/inf observation or reward, or
an exception in the env stops sampling with a message naming the env, the worker and the cause.
"""

from __future__ import annotations

import os
import signal
import traceback
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from gymnasium import spaces

from pysf.algo.sampling import protocol
from pysf.algo.utils.context import SampleFactoryContext, set_global_context
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config


class EnvOutputError(RuntimeError):
    """An env returned something the trainer cannot use."""


@dataclass
class WorkerSpec:
    """Everything a worker process needs (pickled once, at process start)."""

    worker_index: int
    env_name: str
    cfg: Config
    obs_space: spaces.Dict
    action_space: spaces.Space
    block_rows: int
    num_splits: int
    first_env_id: int
    seed: Optional[int]
    context: SampleFactoryContext
    env_obs_is_dict: bool  # False: the env returns bare observations, stored under key "obs"


class _ActionDecoder:
    """Float32 action rows from the buffers -> what ``env.step`` expects."""

    def __init__(self, action_space: spaces.Space):
        self.action_space = action_space
        if isinstance(action_space, spaces.Tuple):
            from pysf.algo.utils.action_distributions import calc_num_actions

            self.splits = np.cumsum([calc_num_actions(s) for s in action_space.spaces])[:-1]
            self.parts = [_ActionDecoder(s) for s in action_space.spaces]

    def __call__(self, row: np.ndarray) -> Any:
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return int(row[0]) + int(space.start)
        if isinstance(space, spaces.MultiDiscrete):
            return row.astype(space.dtype).reshape(space.shape)
        if isinstance(space, spaces.Box):
            return row.astype(space.dtype).reshape(space.shape)
        if isinstance(space, spaces.Tuple):
            return tuple(part(chunk) for part, chunk in zip(self.parts, np.split(row, self.splits)))
        raise NotImplementedError(f"action space {space}")


class _SplitEnvs:
    """The envs of one split and their running episode statistics."""

    def __init__(self, spec: WorkerSpec, split: int, make_env):
        self.envs = []
        self.env_ids = []
        for i in range(spec.block_rows):
            vector_index = split * spec.block_rows + i
            env_id = spec.first_env_id + vector_index
            env_config = AttrDict(worker_index=spec.worker_index, vector_index=vector_index, env_id=env_id)
            self.envs.append(make_env(spec.env_name, spec.cfg, env_config, None))
            self.env_ids.append(env_id)
        self.episode_reward = np.zeros(spec.block_rows, dtype=np.float64)
        self.episode_length = np.zeros(spec.block_rows, dtype=np.int64)


class RolloutWorker:
    """The loop of one env worker process."""

    def __init__(self, spec: WorkerSpec, buffers: Dict[str, Any], request_fd: int, reply_fd: int, stats_queue):
        self.spec = spec
        self.request_fd = request_fd
        self.reply_fd = reply_fd
        self.stats_queue = stats_queue
        self.obs_keys = list(spec.obs_space.spaces.keys())
        self.obs = {k: buffers["obs"][k].numpy() for k in self.obs_keys}
        self.actions = buffers["actions"].numpy()
        self.rewards = buffers["rewards"].numpy()
        self.terminated = buffers["dones"].numpy()
        self.truncated = buffers["time_outs"].numpy()
        self.decode_action = _ActionDecoder(spec.action_space)
        self.wrap_obs = not spec.env_obs_is_dict
        self.splits: List[_SplitEnvs] = []

    def describe(self, split: int = 0, env_index: int = 0) -> str:
        env_id = self.spec.first_env_id + split * self.spec.block_rows + env_index
        return f"env {self.spec.env_name!r} (worker {self.spec.worker_index}, env_id {env_id})"

    def create_envs(self) -> None:
        from pysf.envs.create_env import create_env

        for split in range(self.spec.num_splits):
            self.splits.append(_SplitEnvs(self.spec, split, create_env))

    def _write_obs(self, obs: Any, row: int, step: int, split: int, env_index: int) -> None:
        if self.wrap_obs:
            obs = {"obs": obs}
        elif not isinstance(obs, dict):
            raise EnvOutputError(f"{self.describe(split, env_index)} returned a {type(obs).__name__} observation, expected a dict")
        for key in self.obs_keys:
            space = self.spec.obs_space[key]
            try:
                value = np.asarray(obs[key])
            except KeyError:
                raise EnvOutputError(f"{self.describe(split, env_index)} returned no observation key {key!r}") from None
            if value.shape != space.shape:
                raise EnvOutputError(
                    f"{self.describe(split, env_index)} returned an observation '{key}' of shape {value.shape}, "
                    f"expected {space.shape} (its observation_space)"
                )
            if value.dtype != space.dtype and not np.can_cast(value.dtype, space.dtype, casting="same_kind"):
                raise EnvOutputError(
                    f"{self.describe(split, env_index)} returned an observation '{key}' of dtype {value.dtype}, "
                    f"expected {space.dtype}"
                )
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise EnvOutputError(f"{self.describe(split, env_index)} returned a non-finite observation '{key}': {value}")
            self.obs[key][row, step] = value

    def reset_split(self, split: int, block: int) -> None:
        envs = self.splits[split]
        first_row = block * self.spec.block_rows
        for i, env in enumerate(envs.envs):
            seed = None if self.spec.seed is None else self.spec.seed + envs.env_ids[i]
            obs, _ = env.reset(seed=seed)
            self._write_obs(obs, first_row + i, 0, split, i)

    def step_split(self, split: int, block: int, step: int) -> None:
        envs = self.splits[split]
        first_row = block * self.spec.block_rows
        for i, env in enumerate(envs.envs):
            row = first_row + i
            action = self.decode_action(self.actions[row, step])
            obs, reward, terminated, truncated, info = env.step(action)
            reward = float(reward)
            if not np.isfinite(reward):
                raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite reward {reward}")
            envs.episode_reward[i] += reward
            envs.episode_length[i] += 1
            self.rewards[row, step] = reward
            self.terminated[row, step] = bool(terminated)
            self.truncated[row, step] = bool(truncated)
            if terminated or truncated:
                self._report_episode(envs, i, info)
                obs, _ = env.reset()
            self._write_obs(obs, row, step + 1, split, i)

    def _report_episode(self, envs: _SplitEnvs, i: int, info: Dict[str, Any]) -> None:
        extra = info.get("episode_extra_stats") if isinstance(info, dict) else None
        true_objective = info.get("true_objective") if isinstance(info, dict) else None
        self.stats_queue.put(
            (envs.env_ids[i], float(envs.episode_reward[i]), int(envs.episode_length[i]), true_objective, extra)
        )
        envs.episode_reward[i] = 0.0
        envs.episode_length[i] = 0

    def run(self) -> None:
        self.create_envs()
        while True:
            kind, split, block, step = protocol.receive(self.reply_fd)
            if kind == protocol.STOP:
                return
            if kind == protocol.ASSIGN:
                self.reset_split(split, block)
                protocol.send(self.request_fd, protocol.READY, split)
            elif kind == protocol.ACT:
                self.step_split(split, block, step)
                protocol.send(self.request_fd, protocol.STEPPED, split)

    def close(self) -> None:
        for envs in self.splits:
            for env in envs.envs:
                try:
                    env.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass


def rollout_worker_main(spec: WorkerSpec, buffers: Dict[str, Any], request_conn, reply_conn, stats_queue) -> None:
    """Entry point of an env worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and stops us
    torch.set_num_threads(1)
    set_global_context(spec.context)
    request_fd, reply_fd = request_conn.fileno(), reply_conn.fileno()
    worker = RolloutWorker(spec, buffers, request_fd, reply_fd, stats_queue)
    try:
        worker.run()
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the sampler
        if isinstance(exc, EnvOutputError):
            message = str(exc)
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            message = (
                f"env {spec.env_name!r} in worker {spec.worker_index} raised {type(exc).__name__}: {exc} "
                f"(at {os.path.basename(where.filename)}:{where.lineno})"
            )
        protocol.send_error(request_fd, message)
        worker.close()
        os._exit(1)
    worker.close()
