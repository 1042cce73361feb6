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
    """Float32 action rows of one split from the buffers -> one ``env.step`` argument per env."""

    def __init__(self, action_space: spaces.Space):
        self.action_space = action_space
        if isinstance(action_space, spaces.Tuple):
            from pysf.algo.utils.action_distributions import calc_num_actions

            self.splits = np.cumsum([calc_num_actions(s) for s in action_space.spaces])[:-1]
            self.parts = [_ActionDecoder(s) for s in action_space.spaces]

    def one(self, row: np.ndarray) -> Any:
        """Decode the action row of one env."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return int(row[0]) + int(space.start)
        if isinstance(space, (spaces.MultiDiscrete, spaces.Box)):
            return row.astype(space.dtype).reshape(space.shape)
        if isinstance(space, spaces.Tuple):
            return tuple(part.one(chunk) for part, chunk in zip(self.parts, np.split(row, self.splits)))
        raise NotImplementedError(f"action space {space}")

    def rows(self, rows: np.ndarray) -> List[Any]:
        """Decode ``[n, num_actions]`` action rows (vectorized for the common Discrete case)."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            return (rows[:, 0].astype(np.int64) + int(space.start)).tolist()
        return [self.one(row) for row in rows]


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
        self.obs_shapes = [(k, tuple(spec.obs_space[k].shape)) for k in self.obs_keys]
        self.actions = buffers["actions"].numpy()
        self.rewards = buffers["rewards"].numpy()
        self.terminated = buffers["dones"].numpy()
        self.truncated = buffers["time_outs"].numpy()
        self.decode_action = _ActionDecoder(spec.action_space)
        self.wrap_obs = not spec.env_obs_is_dict
        self.splits: List[_SplitEnvs] = []

    def describe(self, split: int = 0, env_index: Optional[int] = None) -> str:
        if env_index is None:
            return f"env {self.spec.env_name!r} (worker {self.spec.worker_index}, split {split})"
        env_id = self.spec.first_env_id + split * self.spec.block_rows + env_index
        return f"env {self.spec.env_name!r} (worker {self.spec.worker_index}, env_id {env_id})"

    def create_envs(self) -> None:
        from pysf.envs.create_env import create_env

        for split in range(self.spec.num_splits):
            self.splits.append(_SplitEnvs(self.spec, split, create_env))

    def _store_observations(self, observations: List[Any], first_row: int, step: int, split: int) -> None:
        """Write one split's observations (one per env) at ``step``: one numpy copy per key, validated."""
        rows = slice(first_row, first_row + self.spec.block_rows)
        for key, shape in self.obs_shapes:
            if self.wrap_obs:
                values = observations
            else:
                values = []
                for i, obs in enumerate(observations):
                    if not isinstance(obs, dict) or key not in obs:
                        raise EnvOutputError(
                            f"{self.describe(split, i)} returned {type(obs).__name__} observation without key {key!r}"
                        )
                    values.append(obs[key])
            try:
                block = np.asarray(values)
            except ValueError:  # ragged: some env returned another shape
                block = None
            if block is None or block.shape[1:] != shape or block.dtype == object:
                for i, value in enumerate(values):
                    if np.shape(value) != shape:
                        raise EnvOutputError(
                            f"{self.describe(split, i)} returned an observation '{key}' of shape {np.shape(value)}, "
                            f"expected {shape} (its observation_space)"
                        )
                raise EnvOutputError(f"{self.describe(split)} returned observations '{key}' that are not numeric arrays")
            if block.dtype.kind == "f" and not np.isfinite(block).all():
                i = int(np.argwhere(~np.isfinite(block.reshape(len(values), -1)))[0, 0])
                raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite observation '{key}': {block[i]}")
            try:
                self.obs[key][rows, step] = block
            except (TypeError, ValueError) as exc:
                raise EnvOutputError(
                    f"{self.describe(split)} returned observations '{key}' of dtype {block.dtype} that do not convert "
                    f"to {self.obs[key].dtype}: {exc}"
                ) from None

    def reset_split(self, split: int, block: int) -> None:
        envs = self.splits[split]
        observations = []
        for i, env in enumerate(envs.envs):
            seed = None if self.spec.seed is None else self.spec.seed + envs.env_ids[i]
            observations.append(env.reset(seed=seed)[0])
        self._store_observations(observations, block * self.spec.block_rows, 0, split)

    def step_split(self, split: int, block: int, step: int) -> bytes:
        """Step one split; returns the finished episodes as the binary payload of the STEPPED message."""
        envs = self.splits[split]
        first_row = block * self.spec.block_rows
        rows = slice(first_row, first_row + self.spec.block_rows)
        actions = self.decode_action.rows(self.actions[rows, step])
        observations, rewards, terminated, truncated, finished = [], [], [], [], []
        for i, env in enumerate(envs.envs):
            obs, reward, term, trunc, info = env.step(actions[i])
            if term or trunc:
                finished.append((i, info))
                obs, _ = env.reset()
            observations.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
        self._store_observations(observations, first_row, step + 1, split)
        rewards = np.asarray(rewards, dtype=np.float64)
        if not np.isfinite(rewards).all():
            i = int(np.argwhere(~np.isfinite(rewards))[0, 0])
            raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite reward {rewards[i]}")
        self.rewards[rows, step] = rewards
        self.terminated[rows, step] = terminated
        self.truncated[rows, step] = truncated
        envs.episode_reward += rewards
        envs.episode_length += 1
        return self._finished_episodes(envs, finished)

    def _finished_episodes(self, envs: _SplitEnvs, finished: List[Any]) -> bytes:
        """Episodes with extra info go through the stats queue; plain ones become the binary payload."""
        plain = []
        for i, info in finished:
            reward, length = float(envs.episode_reward[i]), int(envs.episode_length[i])
            envs.episode_reward[i] = 0.0
            envs.episode_length[i] = 0
            extra = info.get("episode_extra_stats") if isinstance(info, dict) else None
            true_objective = info.get("true_objective") if isinstance(info, dict) else None
            if extra is None and true_objective is None:
                plain.append((i, reward, length))
            else:
                self.stats_queue.put((envs.env_ids[i], reward, length, true_objective, extra))
        return protocol.pack_episodes(plain)

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
                episodes = self.step_split(split, block, step)
                protocol.send(self.request_fd, protocol.STEPPED, split, episodes)

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
    stats_queue.cancel_join_thread()  # never block exit on stats nobody will read any more
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
