"""Env worker processes for Python (gymnasium) envs.

Each process owns ``num_splits`` splits of ``block_rows`` envs created with the registered
``make_env_func(full_env_name, cfg, env_config, render_mode)`` (or ``gymnasium.make``). The native sampler
tells it, per split, which trajectory block and step to act on; the process reads the actions from the
shared trajectory buffers, steps its envs, writes observations, raw rewards and termination/truncation
flags back into the buffers and reports "stepped" through its mailbox (pysf/algo/sampling/protocol.py).
Nothing is pickled per step: finished episodes travel as records in the mailbox, except those whose info
carries extra statistics, which go through a multiprocessing queue (one message per episode).

Outputs are validated: an observation of the wrong shape, of a non-real dtype (complex, string, object) or
with NaN/inf values, a reward that is not a real finite scalar, a step() that does not return gymnasium's
five values, or an exception in the env stops sampling with a message naming the env, the worker and the
cause (for an exception: the env's own traceback, without the worker's frames). Observations outside their
Box bounds are warned about once per env, and training goes on. Worker processes log to the console (and to
sf_log.txt with --log_to_file).

With ``--decorrelate_envs_on_one_worker`` (Sample Factory's default), each env takes ``rollout * k``
random steps right after its first reset, ``k`` being its index in the worker (over all its splits), so
that envs with fixed-length episodes do not all end their episodes in the same rollout. These warm-up
steps are not env frames: they never reach the trajectory buffers, and episodes that end during them are
not reported (the episode still running when the warm-up ends is reported whole when it ends).
"""

from __future__ import annotations

import copy
import faulthandler
import logging
import math
import numbers
import os
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from pysf.algo.sampling import protocol
from pysf.algo.sampling.training_info import EnvTrainingHooks, SharedTrainingInfo
from pysf.algo.utils.context import SampleFactoryContext, set_global_context
from pysf.algo.utils.env_info import EnvInfo, check_env_info
from pysf.algo.utils.multiprocessing_utils import die_with_parent
from pysf.envs.env_wrappers import EpisodeCounterWrapper
from pysf.utils.attr_dict import AttrDict
from pysf.utils.typing import Config
from pysf.utils.utils import LOG_FILENAME, experiment_dir, set_worker_process_affinity_and_niceness, setup_logging


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
    # Per split, what the C++ Sampler assigned it (csrc/sampler/split_assignment.h): first_env_id, index_in_worker,
    # agents_per_env, per env env_seeds, warm_up_steps, warm_up_seeds, and per row (agent) policy_ids.
    splits: List[Dict[str, Any]]
    parent_pid: int  # the trainer: the worker dies with it
    context: SampleFactoryContext
    env_obs_is_dict: bool  # False: the env returns bare observations, stored under key "obs"
    env_info: Optional[EnvInfo] = None  # what training was set up for: every new env is checked against it
    training_info: Optional[SharedTrainingInfo] = None  # newest training info from the runner
    stack_dump: Optional[protocol.InheritedFd] = None  # file for faulthandler's dump on SIGUSR1 (a stuck worker)

    @property
    def num_splits(self) -> int:
        return len(self.splits)


class ActionDecoder:
    """Float32 action rows of one split from the buffers -> one ``env.step`` argument per env."""

    def __init__(self, action_space: spaces.Space):
        self.action_space = action_space
        if isinstance(action_space, spaces.Tuple):
            from pysf.algo.utils.action_distributions import calc_num_actions

            self.splits = np.cumsum([calc_num_actions(s) for s in action_space.spaces])[:-1]
            self.parts = [ActionDecoder(s) for s in action_space.spaces]

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

    def batch_decoder(self) -> Callable[[np.ndarray], Any]:
        """A function turning ``[n, num_actions]`` action rows into one batched env's action argument, as Sample
        Factory's batched sampling passes it: discrete actions as int32 (``[n]`` when there is one per agent,
        offset by the space's start), continuous ones as ``[n, ...]`` arrays of the space's dtype, and a Tuple
        space as a tuple with one such batch per component (a 1-agent wrapper takes each component's first)."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            start = int(space.start)
            return lambda rows: rows[:, 0].astype(np.int32) + np.int32(start)
        if isinstance(space, spaces.MultiDiscrete):
            return lambda rows: rows.astype(np.int32).reshape((len(rows), *space.shape))
        if isinstance(space, spaces.Box):
            return lambda rows: rows.astype(space.dtype).reshape((len(rows), *space.shape))
        if isinstance(space, spaces.Tuple):
            parts = [part.batch_decoder() for part in self.parts]
            return lambda rows: tuple(part(chunk) for part, chunk in zip(parts, np.split(rows, self.splits, axis=1)))
        raise NotImplementedError(f"action space {space}")

    def rows_decoder(self, numpy_scalars: bool = False) -> Callable[[np.ndarray], List[Any]]:
        """A function decoding ``[n, num_actions]`` action rows, specialised once for this action space
        (vectorized for the common Discrete case).

        Discrete actions are Python ints, as Sample Factory passes them. With ``numpy_scalars`` they are
        numpy integers of the space's dtype instead, as gymnasium's own vector envs pass them: gymnasium's
        ``Discrete.contains`` (asserted in every classic-control step) checks those ~1 µs faster, 9% of a
        CartPole step. Only for envs made by ``gymnasium.make``, which must accept them.
        """
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            start = int(space.start)
            if numpy_scalars:
                dtype = space.dtype
                return lambda rows: list((rows[:, 0].astype(np.int64) + start).astype(dtype))
            if start == 0:
                return lambda rows: rows[:, 0].astype(np.int64).tolist()
            return lambda rows: (rows[:, 0].astype(np.int64) + start).tolist()
        return lambda rows: [self.one(row) for row in rows]


class _SplitEnvs:
    """The envs of one split and their running episode statistics (one trajectory row per agent).

    A multi-agent env (Sample Factory's contract: ``num_agents`` and/or ``is_multiagent``) takes one action per
    agent, returns one observation, reward, terminated, truncated and info per agent, and resets itself when an
    episode ends. Its agents are consecutive rows.
    """

    def __init__(self, spec: WorkerSpec, split: int, make_env, stop_requested: Callable[[], bool]):
        self.assignment = spec.splits[split]
        self.agents = int(self.assignment["agents_per_env"])
        # --batched_sampling: envs made by make_env_func_batched, whose outputs are batches (a dict of
        # [num_agents, ...] tensors, [num_agents] rewards and flags), written into the rows without a per-agent loop.
        self.batched = bool(getattr(spec.cfg, "batched_sampling", False))
        if self.batched:
            from pysf.algo.utils.make_env import make_env_func_batched

            make_env = lambda name, cfg, env_config, render_mode: make_env_func_batched(cfg, env_config, render_mode)  # noqa: E731
        self.multi_agent = self.batched or self.agents > 1 or bool(spec.env_info is not None and spec.env_info.is_multiagent)
        num_envs = spec.block_rows // self.agents
        self.envs = []
        self.env_ids = []
        for i in range(num_envs):
            if stop_requested():  # env creation can be slow: stop() must not wait for all of it
                break
            vector_index = self.assignment["index_in_worker"] * num_envs + i
            env_id = self.assignment["first_env_id"] + i
            env_config = AttrDict(worker_index=spec.worker_index, vector_index=vector_index, env_id=env_id)
            env = make_env(spec.env_name, spec.cfg, env_config, None)
            if spec.env_info is not None:
                check_env_info(env, spec.env_info, spec.cfg)
            if getattr(spec.cfg, "episode_counter", False):
                env = EpisodeCounterWrapper(env)
            self.envs.append(env)
            self.env_ids.append(env_id)
        # Bound once: an attribute lookup per env step is measurable next to CartPole's ~6 µs step.
        if self.multi_agent:  # its own wrappers (a time limit included) are its business
            self.step_fns, self.time_limit = [env.step for env in self.envs], None
        else:
            self.step_fns, self.time_limit = _step_functions(self.envs)
        # Rows whose agent the env reported inactive (info["is_active"] False) after the last step: their next
        # step's data is marked as no policy's (policy_id -1), as Sample Factory does.
        self.inactive = np.zeros(spec.block_rows, dtype=bool)
        self.any_inactive = False
        # Rows whose episode ended at the last step: their env gets the newest training info of the policy that
        # acts for them next, known once the sampler wrote the next step's policy_id (the mapping may be redrawn
        # at an episode end).
        self.training_info_due: List[int] = []
        # Envs stepped bare (made by gymnasium.make) take numpy integer actions, as in gymnasium's vector envs.
        decoder = ActionDecoder(spec.action_space)
        self.decode_actions = decoder.batch_decoder() if self.batched else decoder.rows_decoder(numpy_scalars=self.time_limit is not None)
        self.episode_reward = np.zeros(spec.block_rows, dtype=np.float64)
        # Episode lengths without a per-step vector update: steps taken by the split so far, and that
        # count when each env's current episode began.
        self.steps_taken = 0
        self.episode_start = np.zeros(spec.block_rows, dtype=np.int64)

    def new_episodes(self) -> None:
        """Every env starts an episode now (after a reset)."""
        self.episode_reward[:] = 0.0
        self.episode_start[:] = self.steps_taken

    def end_episode(self, i: int) -> tuple:
        """``(raw return, length)`` of env ``i``'s finished episode; its next one starts now."""
        result = float(self.episode_reward[i]), self.steps_taken - int(self.episode_start[i])
        self.episode_reward[i] = 0.0
        self.episode_start[i] = self.steps_taken
        return result


def _step_functions(envs: Sequence[Any]) -> tuple:
    """``(step function per env, time limit or None)``.

    ``gymnasium.make`` wraps an env in PassiveEnvChecker, OrderEnforcing and TimeLimit; on CartPole the three
    wrapper calls cost ~15% of a step. When every env of the split has exactly that stack, with one time
    limit, the split steps the bare envs and applies the time limit itself (truncated once an episode is
    ``max_episode_steps`` long, as TimeLimit does). The checks those two wrappers make are redundant here:
    the worker always resets before stepping and validates every output itself. Resets still go through
    the whole stack. Any other wrapper (or a registered ``make_env_func``'s own env) keeps the full stack.
    """
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

    bare, limits = [], set()
    for env in envs:
        if type(env) is not TimeLimit:
            break
        inner = env.env
        while type(inner) in (OrderEnforcing, PassiveEnvChecker):
            inner = inner.env
        if isinstance(inner, gymnasium.Wrapper):
            break
        bare.append(inner.step)
        limits.add(env._max_episode_steps)
    if envs and len(bare) == len(envs) and len(limits) == 1:
        return bare, limits.pop()
    return [env.step for env in envs], None


class RolloutWorker:
    """The loop of one env worker process."""

    def __init__(self, spec: WorkerSpec, buffers: Dict[str, Any], mailbox, stats_queue):
        self.spec = spec
        self.mailbox = mailbox  # pysf._C.WorkerMailbox
        record_dtype = protocol.episode_record_dtype()
        self.episode_records = [
            mailbox.episode_records(split).numpy().view(record_dtype)[:, 0] for split in range(spec.num_splits)
        ]
        self.stats_queue = stats_queue
        self.obs_keys = list(spec.obs_space.spaces.keys())
        self.obs = {k: buffers["obs"][k].numpy() for k in self.obs_keys}
        # (key, expected shape of one env's observation, destination buffer)
        self.obs_targets = [(k, tuple(spec.obs_space[k].shape), self.obs[k]) for k in self.obs_keys]
        self.block_rows = spec.block_rows
        self.actions = buffers["actions"].numpy()
        self.rewards = buffers["rewards"].numpy()
        self.terminated = buffers["dones"].numpy()
        self.truncated = buffers["time_outs"].numpy()
        self.policy_ids = buffers["policy_id"].numpy()
        self.wrap_obs = not spec.env_obs_is_dict
        self.splits: List[_SplitEnvs] = []
        self.training_hooks: Optional[EnvTrainingHooks] = None
        # What to check of each key's observations, worked out once (bounds, dtypes).
        self._observation_checks = _ObservationChecks(spec.obs_space, self.obs_targets)

    def describe(self, split: int = 0, row: Optional[int] = None) -> str:
        """The env (and for a multi-agent env, the agent) of block row ``row`` of ``split``, for messages."""
        if row is None:
            return f"env {self.spec.env_name!r} (worker {self.spec.worker_index}, split {split})"
        assignment = self.spec.splits[split]
        agents = assignment["agents_per_env"]
        env_id = assignment["first_env_id"] + row // agents
        agent = f", agent {row % agents}" if agents > 1 else ""
        return f"env {self.spec.env_name!r} (worker {self.spec.worker_index}, env_id {env_id}{agent})"

    def create_envs(self) -> None:
        from pysf.envs.create_env import create_env

        for split in range(self.spec.num_splits):
            self.splits.append(_SplitEnvs(self.spec, split, create_env, self.mailbox.stop_requested))
        all_envs = [env for split in self.splits for env in split.envs]
        agents = self.splits[0].agents if self.splits else 1
        policy_ids = [policy for split in self.splits for policy in split.assignment["policy_ids"]]
        self.training_hooks = EnvTrainingHooks(all_envs, self.spec.training_info, agents, policy_ids)

    def _store_observations(self, observations: Any, rows: slice, step: int, split: int, by_key: bool = False) -> None:
        """Write one split's observations (one per row) at ``step``: per key, one stack of the rows' values,
        checked as a whole (shape, real dtype, finite values, observation-space bounds), then one copy.
        ``by_key``: ``observations`` is already a dict of per-key batches (batched envs)."""
        for check in self._observation_checks.keys:
            key, destination = check.key, check.destination
            if by_key:
                values = self._batch_of_key(observations, key, split)
            else:
                values = observations if self.wrap_obs else self._values_of_key(observations, key, split)
            try:
                block = np.asarray(values)
            except ValueError:  # ragged: some env returned another shape
                block = None
            if (
                block is None
                or block.shape[1:] != check.shape
                or len(block) != rows.stop - rows.start
                or block.dtype.kind not in _REAL_KINDS
            ):
                self._raise_malformed(values, check, split)
            if block.dtype.kind == "f" and np.count_nonzero(np.isfinite(block)) != block.size:
                i = int(np.argwhere(~np.isfinite(block.reshape(len(values), -1)))[0, 0])
                raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite observation '{key}': {block[i]}")
            if (
                check.bounds_checked(block.dtype)
                and split not in self._observation_checks.quiet_splits
                and check.any_out_of_bounds(block)
            ):
                self._observation_checks.warn_out_of_bounds(check, block, split, self.describe)
            try:
                destination[rows, step] = block
            except (TypeError, ValueError) as exc:
                raise EnvOutputError(
                    f"{self.describe(split)} returned observations '{key}' of dtype {block.dtype} that do not convert "
                    f"to {destination.dtype}: {exc}"
                ) from None

    def _raise_malformed_step(self, results: Sequence[Any], split: int, first_row: int = 0) -> None:
        """Names the env whose step() did not return (obs, reward, terminated, truncated, info); ``results[i]`` is
        the step result of the env of row ``first_row + i``."""
        for i, result in enumerate(results):
            if not isinstance(result, tuple) or len(result) != 5:
                got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
                legacy = " (the legacy gym API's 4: split `done` into terminated and truncated)" if got == "4 values" else ""
                raise EnvOutputError(
                    f"{self.describe(split, first_row + i)}'s step() returned {got}{legacy}; gymnasium envs return 5: "
                    f"(observation, reward, terminated, truncated, info)"
                )
        raise EnvOutputError(f"{self.describe(split)}'s step() results cannot be read: {results[:1]!r}")

    def _values_of_key(self, observations: Sequence[Any], key: str, split: int) -> List[Any]:
        """``obs[key]`` of every dict observation (an env without the key is an error)."""
        values = []
        for i, obs in enumerate(observations):
            if not isinstance(obs, dict) or key not in obs:
                raise EnvOutputError(f"{self.describe(split, i)} returned {type(obs).__name__} observation without key {key!r}")
            values.append(obs[key])
        return values

    def _batch_of_key(self, observations: Dict[str, Any], key: str, split: int) -> Any:
        """``observations[key]`` of a batched env's dict observation (its absence is an error)."""
        if not isinstance(observations, dict) or key not in observations:
            raise EnvOutputError(f"{self.describe(split)} returned a {type(observations).__name__} observation without "
                                 f"key {key!r}; a batched env returns a dict of [num_agents, ...] batches")
        return observations[key]

    def _raise_malformed(self, values: Sequence[Any], check: "_KeyCheck", split: int) -> None:
        """Names the env whose observation does not fit the observation space (dtype first, then shape)."""
        key, shape = check.key, check.shape
        for i, value in enumerate(values):
            try:
                array = np.asarray(value)
            except ValueError:  # nested sequences of different lengths
                raise EnvOutputError(
                    f"{self.describe(split, i)} returned an observation '{key}' that is not a rectangular array "
                    f"(nested sequences of different lengths), expected shape {shape} (its observation_space)"
                ) from None
            if array.dtype.kind not in _REAL_KINDS:
                raise EnvOutputError(
                    f"{self.describe(split, i)} returned an observation '{key}' of dtype {array.dtype}"
                    f"{_non_real_element_note(array)}; observations must hold real numbers (bool, int or float): "
                    f"its observation_space has dtype {check.space_dtype}"
                )
            if array.shape != shape:
                raise EnvOutputError(
                    f"{self.describe(split, i)} returned an observation '{key}' of shape {array.shape}, "
                    f"expected {shape} (its observation_space)"
                )
        raise EnvOutputError(
            f"{self.describe(split)} returned observations '{key}' that do not stack into one array of real numbers "
            f"of shape {shape}, one per agent ({self.block_rows} in a split)"
        )

    def _rows(self, block: int) -> slice:
        first_row = block * self.block_rows
        return slice(first_row, first_row + self.block_rows)

    def reset_split(self, split: int, block: int) -> bool:
        """The first reset of a split's envs (and their decorrelation warm-up), then its first observations.

        Returns False if stop() came during the warm-up (nothing was written then).
        """
        envs = self.splits[split]
        assignment = envs.assignment
        envs.new_episodes()
        if envs.batched:
            return self._reset_batched_split(split, block)
        observations = []
        for i, env in enumerate(envs.envs):
            obs = env.reset(seed=assignment["env_seeds"][i])[0]
            agent_obs = self._agents_values(split, i, "observations from reset()", obs) if envs.multi_agent else [obs]
            warm_up_steps = assignment["warm_up_steps"][i]
            if warm_up_steps > 0:
                if envs.multi_agent:
                    warmed_up = self._decorrelate_agents(split, i, env, agent_obs, warm_up_steps)
                else:
                    warmed_up = self._decorrelate(split, i, env, obs, warm_up_steps)
                    warmed_up = None if warmed_up is None else ([warmed_up[0]], *warmed_up[1:])
                if warmed_up is None:
                    return False
                agent_obs, returns, lengths = warmed_up
                # The episodes running now started before sampling did: they are reported whole.
                rows = slice(i * envs.agents, (i + 1) * envs.agents)
                envs.episode_reward[rows] = returns
                envs.episode_start[rows] = envs.steps_taken - lengths
            observations.extend(agent_obs)
        envs.inactive[:] = False
        envs.any_inactive = False
        self._store_observations(observations, self._rows(block), 0, split)
        return True

    def _reset_batched_split(self, split: int, block: int) -> bool:
        """reset_split for batched envs: each env's batch of observations goes straight into its rows; the
        warm-up steps all of an env's agents with random actions."""
        envs = self.splits[split]
        assignment = envs.assignment
        rows = self._rows(block)
        for i, env in enumerate(envs.envs):
            obs = env.reset(seed=assignment["env_seeds"][i])[0]
            warm_up_steps = assignment["warm_up_steps"][i]
            if warm_up_steps > 0:
                warmed_up = self._decorrelate_batched(split, i, env, obs, warm_up_steps)
                if warmed_up is None:
                    return False
                obs, returns, lengths = warmed_up
                # The episodes running now started before sampling did: they are reported whole.
                agents = slice(i * envs.agents, (i + 1) * envs.agents)
                envs.episode_reward[agents] = returns
                envs.episode_start[agents] = envs.steps_taken - lengths
            env_rows = slice(rows.start + i * envs.agents, rows.start + (i + 1) * envs.agents)
            self._store_observations(obs, env_rows, 0, split, by_key=True)
        return True

    def _decorrelate_batched(self, split: int, i: int, env, obs: Any, num_steps: int) -> Optional[tuple]:
        """The decorrelation warm-up of a batched env: ``num_steps`` steps with random actions for all its agents
        (it resets itself). Returns ``(last observations, per-agent return and length of the episodes running at
        the end)``, or None if stop() was requested meanwhile.

        The actions come from the env's warm-up stream as in :meth:`_decorrelate` (for a Discrete space the same
        draws, agent after agent within a step), so a batched 1-agent env warms up exactly as the per-env path."""
        envs = self.splits[split]
        agents = envs.agents
        space = copy.deepcopy(env.action_space)
        space.seed(envs.assignment["warm_up_seeds"][i])
        if type(space) is spaces.Discrete:  # exactly: a subclass may sample differently
            draws = space.np_random.integers(int(space.n), size=(num_steps, agents)).astype(np.float32)[:, :, None]
            rows_at = lambda t: draws[t]  # noqa: E731 - the buffer's encoding: the index from the space's start
        else:
            def rows_at(t: int) -> np.ndarray:
                return np.stack([np.concatenate([np.ravel(np.asarray(a, dtype=np.float32))
                                                 for a in _flat_action(space.sample(), space)]) for _ in range(agents)])

        def read_step(result: tuple) -> tuple:
            obs, rewards, terminated, truncated, _ = result
            done = np.logical_or(np.asarray(terminated), np.asarray(truncated)).reshape(agents)
            return obs, np.asarray(rewards, dtype=np.float64).reshape(agents), done

        return self._warm_up_agents(split, i, env, obs, num_steps, lambda t: envs.decode_actions(rows_at(t)), read_step)

    def _warm_up_agents(self, split: int, i: int, env, obs: Any, num_steps: int,
                        actions_at: Callable[[int], Any], read_step: Callable[[tuple], tuple]) -> Optional[tuple]:
        """The warm-up loop of env ``i`` of ``split`` with one row per agent (batched or multi-agent; it resets
        itself): ``num_steps`` steps of ``env.step(actions_at(t))``, each result read by ``read_step`` as
        ``(observations, per-agent rewards, per-agent done flags)``. Returns ``(last observations, per-agent
        return and length of the episodes running at the end)``, or None if stop() was requested meanwhile."""
        agents = self.splits[split].agents
        stop_requested = self.mailbox.stop_requested
        returns, lengths = np.zeros(agents), np.zeros(agents, dtype=np.int64)
        try:
            for t in range(num_steps):
                if t % 64 == 0 and stop_requested():
                    return None
                obs, rewards, done = read_step(env.step(actions_at(t)))
                returns += rewards
                lengths += 1
                returns[done], lengths[done] = 0.0, 0
        except EnvOutputError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported like a fault during sampling, naming the env
            raise EnvOutputError(
                _error_report(f"{self.describe(split, i * agents)} raised {_exception_line(exc)} {_DURING_WARM_UP}", exc)
            ) from exc
        if not np.isfinite(returns).all():
            raise EnvOutputError(f"{self.describe(split, i * agents)} returned a non-finite reward {_DURING_WARM_UP}")
        return obs, returns, lengths

    def _agents_values(self, split: int, i: int, what: str, values: Any) -> list:
        """``values`` (one per agent of env ``i`` of ``split``: a list, tuple, array or tensor) as a list."""
        agents = self.splits[split].agents
        try:
            listed = list(values)
        except TypeError:
            listed = None
        if listed is None or len(listed) != agents:
            got = f"{len(listed)}" if listed is not None else f"a {type(values).__name__}"
            raise EnvOutputError(
                f"{self.describe(split, i * agents)} returned {got} {what} for its {agents} agents; a multi-agent env "
                f"returns one per agent"
            )
        return listed

    def _decorrelate_agents(self, split: int, i: int, env, agent_obs: list, num_steps: int) -> Optional[tuple]:
        """The decorrelation warm-up of a multi-agent env: ``num_steps`` steps with random actions for every
        agent (the env resets itself). Returns ``(observations, per-agent return and length of the episode
        running at the end)``, or None if stop() was requested meanwhile."""
        agents = self.splits[split].agents
        space = copy.deepcopy(env.action_space)
        space.seed(self.splits[split].assignment["warm_up_seeds"][i])

        def read_step(result: tuple) -> tuple:
            obs, rewards, terminated, truncated, _ = result
            done = np.logical_or(self._agents_values(split, i, "terminated flags", terminated),
                                 self._agents_values(split, i, "truncated flags", truncated))
            rewards = _real_rewards(self._agents_values(split, i, "rewards", rewards),
                                    lambda agent: self.describe(split, i * agents + agent))
            return self._agents_values(split, i, "observations", obs), rewards, done

        return self._warm_up_agents(split, i, env, agent_obs, num_steps,
                                    lambda t: [space.sample() for _ in range(agents)], read_step)

    def _decorrelate(self, split: int, i: int, env, obs: Any, num_steps: int) -> Optional[tuple]:
        """Sample Factory's decorrelation warm-up of one env (``NonBatchedVectorEnvRunner._reset`` in
        sample_factory/algo/sampling/non_batched_sampling.py): ``num_steps`` steps with actions drawn from
        the env's action space, resetting where an episode ends. Returns ``(last observation, return and
        length of the episode running at the end)``, or None if stop() was requested meanwhile.

        Actions come from a copy of the env's action space, seeded with the env's warm-up seed from its split's
        assignment (Sample Factory samples the env's own, unseeded space), so runs repeat.
        """
        if num_steps <= 0:
            return obs, 0.0, 0
        space = copy.deepcopy(env.action_space)
        space.seed(self.splits[split].assignment["warm_up_seeds"][i])
        if type(space) is spaces.Discrete:  # exactly: a subclass may sample differently
            # One vectorized draw: the same distribution as space.sample(), a fifth of an env step cheaper.
            actions = (int(space.start) + space.np_random.integers(int(space.n), size=num_steps)).tolist()
        else:
            actions = None
        stop_requested = self.mailbox.stop_requested
        step = env.step
        episode_return, episode_length = 0.0, 0
        try:
            for t in range(num_steps):
                if t % 64 == 0 and stop_requested():
                    return None
                action = actions[t] if actions is not None else space.sample()
                obs, reward, terminated, truncated, _ = step(action)
                reward = float(reward)
                if not math.isfinite(reward):
                    raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite reward {reward} {_DURING_WARM_UP}")
                episode_return += reward
                episode_length += 1
                if terminated or truncated:
                    obs, _ = env.reset()
                    episode_return, episode_length = 0.0, 0
        except EnvOutputError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported like a fault during sampling, naming the env
            if exc.__traceback__.tb_next is None:
                # Raised by this function's own code, not the env's: its step result did not convert (float()
                # of the reward, or the unpacking, which leaves the last step's float in ``reward``).
                try:
                    problem = _reward_problem(reward)
                except NameError:  # the first step's result did not unpack
                    problem = None
                if problem is not None:
                    raise EnvOutputError(f"{self.describe(split, i)} returned {problem}; this was {_DURING_WARM_UP}") from None
            raise EnvOutputError(
                _error_report(f"{self.describe(split, i)} raised {_exception_line(exc)} {_DURING_WARM_UP}", exc)
            ) from exc
        return obs, episode_return, episode_length

    def step_split(self, split: int, block: int, step: int) -> int:
        """Step one split; returns the number of finished episodes written to the split's records.

        The hot path of the Python envs: one list comprehension over the envs, then a handful of numpy
        calls per split (not per env) for conversion, validation and the buffer writes.
        """
        envs = self.splits[split]
        rows = self._rows(block)
        if envs.training_info_due:
            self._hand_out_training_info(split, envs, rows, step)
        if envs.batched:
            rewards, terminated, truncated, infos = self._step_batched(split, rows, step)
            envs.steps_taken += 1
            finished = np.flatnonzero(np.logical_or(terminated, truncated)).tolist() or None
            return self._record_step(split, envs, rows, step, rewards, terminated, truncated, infos, finished)
        actions = envs.decode_actions(self.actions[rows, step])
        if envs.multi_agent:
            observations, rewards, terminated, truncated, infos = self._step_agents(split, rows, step, actions)
            envs.steps_taken += 1
            finished = None  # multi-agent envs reset themselves
            if any(terminated) or any(truncated):
                finished = [i for i, (term, trunc) in enumerate(zip(terminated, truncated)) if term or trunc]
        else:
            results = [env_step(action) for env_step, action in zip(envs.step_fns, actions)]
            try:
                observations, rewards, terminated, truncated, infos = zip(*results)
            except (TypeError, ValueError):
                self._raise_malformed_step(results, split)
            envs.steps_taken += 1
            if envs.time_limit is not None:
                at_limit = envs.steps_taken - envs.episode_start >= envs.time_limit
                if at_limit.any():
                    truncated = tuple(np.logical_or(truncated, at_limit).tolist())
            finished = None
            if any(terminated) or any(truncated):
                finished = [i for i, (term, trunc) in enumerate(zip(terminated, truncated)) if term or trunc]
                observations = list(observations)
                for i in finished:
                    observations[i], _ = envs.envs[i].reset()
        self._store_observations(observations, rows, step + 1, split)
        return self._record_step(split, envs, rows, step, rewards, terminated, truncated, infos, finished)

    def _record_step(self, split: int, envs: _SplitEnvs, rows: slice, step: int, rewards: Sequence[Any],
                     terminated: Sequence[bool], truncated: Sequence[bool], infos: Any, finished: Optional[List[int]]) -> int:
        """Validate and write one split step's rewards and flags; report the finished episodes."""
        # The sum doubles as the type check: it is a real scalar only when every reward is one (None, strings
        # and arrays of another shape raise, a complex reward makes it complex); anything else is diagnosed env
        # by env. It also checks finiteness ~20x cheaper than np.isfinite(...).all(): it is non-finite whenever
        # one reward is (or on overflow, where the exact check below finds nothing).
        reward_block, finite = None, False
        try:
            total = sum(rewards)
            if type(total) in _REAL_SCALAR_TYPES:
                finite = math.isfinite(total)
                reward_block = np.array(rewards, dtype=np.float64)
        except Exception:  # noqa: BLE001 - whatever an env's reward does, it is diagnosed below
            pass
        if reward_block is None or reward_block.shape != envs.episode_reward.shape:
            reward_block, finite = _real_rewards(rewards, lambda i: self.describe(split, i)), False
        if not finite and not np.isfinite(reward_block).all():
            i = int(np.argwhere(~np.isfinite(reward_block))[0, 0])
            raise EnvOutputError(f"{self.describe(split, i)} returned a non-finite reward {reward_block[i]}")
        self.rewards[rows, step] = reward_block
        self.terminated[rows, step] = terminated
        self.truncated[rows, step] = truncated
        envs.episode_reward += reward_block
        return 0 if finished is None else self._finished_episodes(split, envs, rows, step, finished, infos)

    def _step_batched(self, split: int, rows: slice, step: int) -> tuple:
        """Step every batched env of ``split`` with its agents' actions as one batch; the observations go straight
        into the rows. Returns the split's ``(rewards, terminated, truncated, infos)``, one entry per row (infos
        per env: a list with one dict per agent, or the env's dict of batches)."""
        envs = self.splits[split]
        agents = envs.agents
        rewards, terminated, truncated, infos = [], [], [], []
        for i, env_step in enumerate(envs.step_fns):
            env_rows = slice(rows.start + i * agents, rows.start + (i + 1) * agents)
            result = env_step(envs.decode_actions(self.actions[env_rows, step]))
            if not isinstance(result, tuple) or len(result) != 5:
                self._raise_malformed_step([result], split, first_row=i * agents)
            obs, reward, term, trunc, info = result
            self._store_observations(obs, env_rows, step + 1, split, by_key=True)
            for values, out, what in ((reward, rewards, "rewards"), (term, terminated, "terminated flags"),
                                      (trunc, truncated, "truncated flags")):
                batch = np.asarray(values)
                if batch.shape != (agents,):
                    raise EnvOutputError(f"{self.describe(split, i * agents)} returned {what} of shape {batch.shape}; "
                                         f"a batched env returns one per agent ({agents})")
                out.append(batch)
            infos.extend(per_agent_infos(info, agents))
        flags = lambda parts: np.concatenate(parts).astype(bool)  # noqa: E731
        return np.concatenate(rewards), flags(terminated), flags(truncated), infos

    def _step_agents(self, split: int, rows: slice, step: int, actions: List[Any]) -> tuple:
        """Step every multi-agent env of ``split`` (one action per agent); the results flattened to one entry per
        row. Marks the steps of inactive agents as no policy's, and records which agents the infos deactivate."""
        envs = self.splits[split]
        agents = envs.agents
        if envs.any_inactive:
            self.policy_ids[rows.start + np.flatnonzero(envs.inactive), step] = -1
        results = [env_step(actions[i * agents:(i + 1) * agents]) for i, env_step in enumerate(envs.step_fns)]
        observations, rewards, terminated, truncated, infos = [], [], [], [], []
        for i, result in enumerate(results):
            if not isinstance(result, tuple) or len(result) != 5:
                self._raise_malformed_step([result], split, first_row=i * agents)
            for values, out, what in zip(result, (observations, rewards, terminated, truncated, infos),
                                         ("observations", "rewards", "terminated flags", "truncated flags", "infos")):
                out.extend(self._agents_values(split, i, what, values))
        active = [info.get("is_active", True) if isinstance(info, dict) else True for info in infos]
        np.logical_not(active, out=envs.inactive)
        envs.any_inactive = bool(envs.inactive.any())
        return observations, rewards, tuple(bool(t) for t in terminated), tuple(bool(t) for t in truncated), infos

    def _hand_out_training_info(self, split: int, envs: _SplitEnvs, rows: slice, step: int) -> None:
        """The envs whose episode ended at the last step get the training info of the policy acting for them now."""
        for i in envs.training_info_due:
            self.training_hooks.apply(split * len(envs.envs) + i // envs.agents, i % envs.agents,
                                      int(self.policy_ids[rows.start + i, step]))
        envs.training_info_due = []

    def _acting_policy(self, envs: _SplitEnvs, rows: slice, i: int, step: int) -> int:
        """The policy that acted for row ``i`` of the split at its last active step of this block up to ``step``
        (steps of an inactive agent are marked -1); the agent's first policy when it acted in none of them."""
        for policy in self.policy_ids[rows.start + i, : step + 1][::-1]:
            if policy >= 0:
                return int(policy)
        return int(envs.assignment["policy_ids"][i])

    def _finished_episodes(self, split: int, envs: _SplitEnvs, rows: slice, step: int, finished: List[int],
                           infos: Sequence[Any]) -> int:
        """Episodes with extra info go through the stats queue; plain ones become mailbox records (the sampler
        knows their policy)."""
        records = self.episode_records[split]
        plain = 0
        if self.training_hooks.active:
            envs.training_info_due.extend(finished)
        for i in finished:
            reward, length = envs.end_episode(i)
            info = infos[i]
            extra = info.get("episode_extra_stats") if isinstance(info, dict) else None
            true_objective = info.get("true_objective") if isinstance(info, dict) else None
            wrapper_stats = _record_episode_statistics(info)
            if wrapper_stats is not None:
                extra = {**(extra or {}), **wrapper_stats}
            if extra is None and true_objective is None:
                records[plain] = (i, reward, length)
                plain += 1
            else:
                policy_id = self._acting_policy(envs, rows, i, step)
                # A two-agent env's agents are rows 2k and 2k + 1 (csrc/sampler/episode_stats.h opponent_row).
                opponent = self._acting_policy(envs, rows, i ^ 1, step) if envs.agents == 2 else None
                self.stats_queue.put((envs.env_ids[i // envs.agents], policy_id, opponent, reward, length,
                                      true_objective, extra))
        return plain

    def run(self) -> None:
        self.create_envs()
        mailbox = self.mailbox
        ASSIGN, ACT = mailbox.ASSIGN, mailbox.ACT
        while True:
            kind, split, block, step = mailbox.wait()
            if kind == ACT:
                mailbox.post_stepped(split, self.step_split(split, block, step))
            elif kind == ASSIGN:
                if not self.reset_split(split, block):
                    return  # stop() came during the decorrelation warm-up
                mailbox.post_ready(split)
            else:
                return

    def close(self) -> None:
        for envs in self.splits:
            for env in envs.envs:
                try:
                    env.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass


def run_worker(spec: WorkerSpec, buffers: Dict[str, Any], endpoint: protocol.WorkerEndpoint, stats_queue) -> int:
    """The worker loop until STOP; returns the exit status (failures are reported to the sampler first)."""
    mailbox = endpoint.open(spec.num_splits, spec.block_rows)
    if not mailbox.attach():  # the sampler stopped while we were starting
        return 0
    worker = RolloutWorker(spec, buffers, mailbox, stats_queue)
    try:
        worker.run()
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the sampler
        if isinstance(exc, EnvOutputError):
            message = _fit_error_report(str(exc))
        else:
            message = _error_report(f"{_failing_env(worker, exc)} raised {_exception_line(exc)}", exc)
        mailbox.report_error(message)
        worker.close()
        return 1
    worker.close()
    return 0


def _log_file(cfg: Config) -> Optional[str]:
    """The experiment's sf_log.txt when the run logs to a file (workers append to it like the trainer); None when
    there is no experiment folder (a sampler used without a runner, e.g. Sample Factory's sampling API)."""
    if not getattr(cfg, "log_to_file", False) or not getattr(cfg, "train_dir", None) or not getattr(cfg, "experiment", None):
        return None
    directory = experiment_dir(cfg, mkdir=False)
    return os.path.join(directory, LOG_FILENAME) if os.path.isdir(directory) else None


def _limit_env_threads(cfg: Config) -> None:
    """``--force_envs_single_thread``: OpenMP/BLAS thread pools in this process use one thread from now on."""
    if getattr(cfg, "force_envs_single_thread", False):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # applies at once and stays (nothing restores it)


def rollout_worker_main(spec: WorkerSpec, buffers: Dict[str, Any], endpoint: protocol.WorkerEndpoint, stats_queue) -> None:
    """Entry point of an env worker process."""
    die_with_parent(spec.parent_pid)  # also ignores Ctrl-C and SIGTERM: the trainer handles them and stops us
    setup_logging(_log_file(spec.cfg))  # the env's warnings and log lines in the trainer's format
    if spec.stack_dump is not None:  # the sampler asks for our stacks (SIGUSR1) before it kills us as stuck
        faulthandler.register(signal.SIGUSR1, file=spec.stack_dump.detach(), all_threads=True)
    torch.set_num_threads(1)
    _limit_env_threads(spec.cfg)
    set_worker_process_affinity_and_niceness(spec.cfg, spec.worker_index)
    stats_queue.cancel_join_thread()  # never block exit on stats nobody will read any more
    set_global_context(spec.context)
    _exit_now(run_worker(spec, buffers, endpoint, stats_queue))


def rollout_worker_thread_main(spec: WorkerSpec, buffers: Dict[str, Any], endpoint: protocol.WorkerEndpoint, stats_queue) -> None:
    """Entry point of an env worker thread (``--serial_mode``: everything in one process, for debugging)."""
    _limit_env_threads(spec.cfg)
    run_worker(spec, buffers, endpoint, stats_queue)
    # Dropping the mailbox (inside run_worker) closed our lifeline end: the sampler sees the worker gone
    # unless it asked us to stop.


def _exit_now(status: int) -> None:
    """Exit without interpreter finalization, which takes seconds with torch loaded on a busy machine and
    would make the sampler's stop() wait or terminate us. Nothing is lost: the envs are closed, the stats
    queue's feeder was told not to be waited for, and nobody reads the mailbox any more."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream must not keep us alive
            pass
    os._exit(status)


# ---- validation of env outputs (observations, rewards) and error reports ---------------------------------------

_DURING_WARM_UP = "during its decorrelation warm-up (--decorrelate_envs_on_one_worker)"

_log = logging.getLogger(__name__)

# numpy dtype kinds of real numbers: bool, signed and unsigned integers, floats (not complex, object, str, ...).
_REAL_KINDS = "biuf"

# Types of sum(rewards) when every reward is a real scalar (Python or numpy): the fast path of step_split.
_REAL_SCALAR_TYPES = frozenset(
    {bool, int, float, np.bool_}
    | {np.dtype(code).type for code in np.typecodes["AllInteger"] + np.typecodes["Float"]}
)

_REWARD_RULE = "rewards must be real scalars (int, float or a numpy real scalar)"



class _KeyCheck:
    """What is checked of one observation key beyond its shape, worked out once from its space."""

    def __init__(self, key: str, shape: tuple, destination: np.ndarray, space: spaces.Space):
        self.key, self.shape, self.destination = key, shape, destination
        space_dtype = getattr(space, "dtype", None)
        self.space_dtype = destination.dtype if space_dtype is None else np.dtype(space_dtype)
        self.low = self.high = None  # the bounds, broadcast to ``shape``; None: nothing to check
        self.uniform = False  # one low and one high for every element: min()/max() of the block suffice
        self.in_range_dtype = None  # a block of this dtype cannot leave the bounds (uint8 images in [0, 255])
        if not isinstance(space, spaces.Box) or int(np.prod(shape)) == 0:
            return
        low, high = np.broadcast_to(space.low, shape), np.broadcast_to(space.high, shape)
        if not (np.isfinite(low).any() or np.isfinite(high).any()):
            return  # unbounded (the common float Box): no cost per step
        self.low, self.high = low, high
        self.uniform = bool((low == low.flat[0]).all() and (high == high.flat[0]).all())
        if self.uniform:
            self.low_value, self.high_value = low.flat[0], high.flat[0]
        self.symmetric = bool((low == -high).all())  # CartPole's: |value| <= high is one comparison
        dtype = self.space_dtype
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if low.min() <= info.min and high.max() >= info.max:
                self.in_range_dtype = dtype

    def bounds_checked(self, dtype: np.dtype) -> bool:
        """Whether a block of ``dtype`` may hold values outside the bounds."""
        return self.low is not None and dtype != self.in_range_dtype

    def any_out_of_bounds(self, block: np.ndarray) -> bool:
        """The per-step check: whether any value of the split's block may be outside the bounds (vectorized)."""
        # np.count_nonzero is ~3x cheaper than ndarray.any() on a few thousand booleans.
        if self.uniform:
            return bool(block.min() < self.low_value or block.max() > self.high_value)
        if self.symmetric and block.dtype.kind == "f":  # (abs() of the most negative integer overflows)
            return np.count_nonzero(np.abs(block) > self.high) > 0
        return np.count_nonzero(block < self.low) > 0 or np.count_nonzero(block > self.high) > 0

    def outside(self, block: np.ndarray) -> np.ndarray:
        """Which values of ``block`` are outside the bounds. Floats are compared as the buffer holds them (a
        float64 0.7 is inside a float32 Box whose high is float32(0.7)); other values as the env returned them
        (an int64 300 is outside a uint8 Box, whatever it wraps to in the buffer)."""
        if block.dtype.kind == "f" and self.destination.dtype.kind == "f":
            block = block.astype(self.destination.dtype, copy=False)
        return (block < self.low) | (block > self.high)

    def out_of_bounds_message(self, where: str, value: np.ndarray, outside: np.ndarray) -> str:
        index = tuple(int(j) for j in np.argwhere(outside)[0])
        bad = value[outside]
        if self.uniform:
            bounds = f"its bounds are [{self.low_value}, {self.high_value}]"
        else:
            bounds = f"the bounds there are [{self.low[index]}, {self.high[index]}] (low/high differ per element)"
        return (
            f"{where} returned an observation '{self.key}' outside its observation_space bounds: {int(outside.sum())} "
            f"of {outside.size} values outside, from {bad.min()} to {bad.max()}; the first at index {index} is "
            f"{value[index]}, {bounds}. Training continues; this env's further out-of-bounds observations are not "
            f"reported."
        )


class _ObservationChecks:
    """The checks of every observation key, and which envs were warned about out-of-bounds observations
    (once per env: an env that leaves its bounds usually does so all the time)."""

    def __init__(self, obs_space: spaces.Dict, obs_targets: Sequence[tuple]):
        self.keys = [_KeyCheck(key, shape, destination, obs_space[key]) for key, shape, destination in obs_targets]
        self.warned: Dict[int, np.ndarray] = {}  # split -> per env: warned already
        self.quiet_splits = set()  # splits whose envs were all warned: not checked any more

    def warn_out_of_bounds(self, check: _KeyCheck, block: np.ndarray, split: int, describe: Callable) -> None:
        outside = check.outside(block)
        rows = outside.reshape(len(block), -1).any(axis=1)
        warned = self.warned.setdefault(split, np.zeros(len(block), dtype=bool))
        for i in np.flatnonzero(rows & ~warned).tolist():
            _log.warning("%s", check.out_of_bounds_message(describe(split, i), block[i], outside[i]))
        warned |= rows
        if warned.all():
            self.quiet_splits.add(split)


def _non_real_element_note(array: np.ndarray) -> str:
    """`` (holding NoneType)`` for an object array with something other than real numbers in it."""
    if array.dtype != object:
        return ""
    for element in array.flat:
        if not isinstance(element, numbers.Real):
            return f" (holding {type(element).__name__})"
    return ""


def _record_episode_statistics(info: Any) -> Optional[Dict[str, float]]:
    """What gymnasium's RecordEpisodeStatistics put in ``info["episode"]`` (the whole game's return and length,
    before reward clipping and across EpisodicLifeEnv's lives), under Sample Factory's stat names."""
    episode = info.get("episode") if isinstance(info, dict) else None
    if not isinstance(episode, dict) or "r" not in episode or "l" not in episode:
        return None
    return {"RecordEpisodeStatistics_reward": float(np.asarray(episode["r"]).sum()),
            "RecordEpisodeStatistics_len": float(np.asarray(episode["l"]).sum())}


def _flat_action(action: Any, space: spaces.Space) -> List[Any]:
    """A sampled action as the buffer's flat components (Tuple spaces: one per component, in order)."""
    if isinstance(space, spaces.Tuple):
        return [part for sub, sub_space in zip(action, space.spaces) for part in _flat_action(sub, sub_space)]
    if isinstance(space, spaces.Discrete):
        return [int(action) - int(space.start)]
    return [action]


def per_agent_infos(info: Any, agents: int) -> List[Any]:
    """A batched env's infos as one dict per agent. A list or tuple is that already. A dict of batches (vectorized
    infos) is read as Sample Factory's batched sampling reads it: every number in it, and every entry of an array or
    tensor with one value per agent, is an episode statistic of the agents that finish an episode (nested keys
    joined with "/"); ``true_objective`` stays the agent's objective."""
    if isinstance(info, (list, tuple)):
        if len(info) != agents:
            raise EnvOutputError(f"a batched env returned {len(info)} infos for its {agents} agents")
        return list(info)
    if not isinstance(info, dict) or not info:
        return [{}] * agents
    stats: List[Dict[str, Any]] = [{} for _ in range(agents)]

    def collect(entries: Dict[str, Any], prefix: str) -> None:
        for key, value in entries.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                collect(value, f"{name}/")
            elif isinstance(value, numbers.Number):
                for agent_stats in stats:
                    agent_stats[name] = value
            elif getattr(value, "shape", None) is not None and len(value.shape) >= 1 and value.shape[0] == agents:
                column = np.asarray(value)
                if column.ndim == 1 and column.dtype.kind in "biuf":
                    for agent, agent_stats in enumerate(stats):
                        agent_stats[name] = column[agent].item()

    collect(info, "")
    per_agent = []
    for agent_stats in stats:
        agent_info: Dict[str, Any] = {}
        if "true_objective" in agent_stats:
            agent_info["true_objective"] = agent_stats.pop("true_objective")
        if agent_stats:
            agent_info["episode_extra_stats"] = agent_stats
        per_agent.append(agent_info)
    return per_agent


def _reward_problem(reward: Any) -> Optional[str]:
    """What is wrong with one env's reward (``"a reward of type NoneType; ..."``), or None for a real scalar
    (a 0-d or 1-element array of real numbers counts as one)."""
    if isinstance(reward, numbers.Real):
        return None
    if reward is None:
        return f"a reward of type NoneType; {_REWARD_RULE}"
    if isinstance(reward, (str, bytes)):
        return f"a reward of type {type(reward).__name__} ({reward[:40]!r}); {_REWARD_RULE}"
    try:
        array = np.asarray(reward)
    except Exception:  # noqa: BLE001 - not even array-like
        return f"a reward of type {type(reward).__name__}; {_REWARD_RULE}"
    if array.size != 1:
        return (
            f"a reward of shape {array.shape} ({type(reward).__name__}); {_REWARD_RULE}. One reward per agent is "
            f"what a multi-agent env returns: multi-agent envs are not supported by pysf yet (README.md, 'What "
            f"differs')"
        )
    kind, element = array.dtype.kind, array.reshape(-1)[0]
    if kind in _REAL_KINDS or (kind == "O" and isinstance(element, numbers.Real)):
        return None
    if kind == "c":
        return f"a complex reward {element}; {_REWARD_RULE}"
    return f"a reward of type {type(element).__name__} (in a {type(reward).__name__}); {_REWARD_RULE}"


def _real_rewards(rewards: Sequence[Any], describe: Callable[[int], str]) -> np.ndarray:
    """The rewards of a split as float64, checked env by env (the slow path of step_split: only when the
    fast one did not give a vector of real numbers). Raises EnvOutputError naming the first bad env."""
    values = []
    for i, reward in enumerate(rewards):
        problem = _reward_problem(reward)
        if problem is not None:
            raise EnvOutputError(f"{describe(i)} returned {problem}")
        value = np.asarray(reward).reshape(-1)[0]
        try:
            values.append(float(value))
        except OverflowError:  # a Python int beyond float range: reported as the non-finite reward it becomes
            values.append(math.copysign(math.inf, value))
    return np.array(values, dtype=np.float64)


def _exception_line(exc: BaseException, max_chars: int = 300) -> str:
    """``RuntimeError: text`` (the text cut short: the traceback's last line has it whole)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an env's exception with a broken __str__ is still reported
        text = "<str() of the exception failed>"
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _worker_files() -> frozenset:
    """Source files of the worker machinery that calls into the envs (this module, and create_env, which calls
    the registered make_env function): their frames are left out of the tracebacks of env errors."""
    from pysf.envs import create_env as create_env_module

    return frozenset(os.path.abspath(module.__file__) for module in (sys.modules[__name__], create_env_module))


def _error_report(head: str, exc: BaseException) -> str:
    """``head`` and the traceback of ``exc`` from the env's own code inward (from its ``step``/``reset``, or the
    registered make_env function), in Python's format, within the lifeline's size limit. An exception raised
    by the worker's own code keeps all its frames."""
    report = traceback.TracebackException.from_exception(exc)
    files = _worker_files()
    frames = list(report.stack)
    first_env_frame = next((n for n, frame in enumerate(frames) if os.path.abspath(frame.filename) not in files), 0)
    report.stack = traceback.StackSummary.from_list(frames[first_env_frame:])
    return _fit_error_report(head + "\n" + "".join(report.format()).rstrip("\n"))


def _failing_env(worker: RolloutWorker, exc: BaseException) -> str:
    """``describe()`` of the env whose code raised ``exc`` (found from the traceback: the env object its first
    frame runs on, or the env_config of the env being created), else the worker's env name and index."""
    fallback = f"env {worker.spec.env_name!r} in worker {worker.spec.worker_index}"
    try:
        return _env_of_traceback(worker, exc) or fallback
    except Exception:  # noqa: BLE001 - naming the env is a courtesy; the report must go out
        return fallback


def _env_of_traceback(worker: RolloutWorker, exc: BaseException) -> Optional[str]:
    """The ``describe()`` for ``_failing_env``, or None."""
    files = _worker_files()
    tb, caller = exc.__traceback__, None
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in files:
        caller, tb = tb.tb_frame, tb.tb_next
    if tb is None or caller is None:
        return None  # raised by the worker itself
    env_config = caller.f_locals.get("env_config")
    if isinstance(env_config, dict) and isinstance(env_config.get("vector_index"), int):  # creating an env
        return worker.describe(*divmod(env_config["vector_index"], worker.block_rows))
    owner = tb.tb_frame.f_locals.get("self")
    if owner is None:
        return None
    for split, envs in enumerate(worker.splits):
        for i, env in enumerate(envs.envs):
            for _ in range(64):  # down the wrapper stack: bare stepping runs on the innermost env
                if env is owner:
                    return worker.describe(split, i)
                env = getattr(env, "env", None)
                if env is None:
                    break
    return None


def _fit_error_report(text: str, limit: Optional[int] = None) -> str:
    """``text`` in at most ``limit`` bytes of UTF-8: when longer, its first lines (what failed, where the
    traceback starts) and as many of its last lines (the innermost frames and the exception) as fit, with a
    line saying what was left out of the middle. ``limit`` defaults to what the lifeline carries."""
    limit = protocol.max_error_report_bytes() if limit is None else limit
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates would not encode

    def size(line: str) -> int:
        return len(line.encode("utf-8"))

    def cut(line: str, max_bytes: int) -> str:
        return line.encode("utf-8")[: max(max_bytes - 4, 0)].decode("utf-8", "ignore") + "...\n"

    if size(text) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    budget = limit - 120  # the note on what was left out
    head = [cut(lines[0], budget // 4) if size(lines[0]) > budget // 4 else lines[0]]
    used = size(head[0])
    for line in lines[1:]:  # the traceback header and the outermost frame (up to the next frame's File line)
        if (line.startswith("  File ") and any(kept.startswith("  File ") for kept in head)) or (
            used + size(line) > budget // 3
        ):
            break
        head.append(line)
        used += size(line)
    tail: List[str] = []
    for line in reversed(lines[len(head):]):
        if used + size(line) > budget:
            break
        tail.insert(0, line)
        used += size(line)
    if any(line.startswith("  File ") for line in tail):  # start at a frame, not inside one
        while not tail[0].startswith("  File "):
            tail.pop(0)
    if not tail:  # the last line alone is too long: its beginning
        tail = [cut(lines[-1], budget - used)]
    left_out = len(lines) - len(head) - len(tail)
    note = f"  ... ({left_out} lines left out here: an env worker's error report is limited to {limit} bytes) ...\n"
    fitted = "".join(head) + note + "".join(tail)
    return fitted.encode("utf-8")[:limit].decode("utf-8", "ignore").rstrip("\n")
