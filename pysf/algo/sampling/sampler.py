"""The Python face of the native sampling engine (``pysf._C.Sampler``).

``Sampler`` allocates the trajectory buffers, starts native env threads (pysf's C++ envs) or Python env
worker processes (gymnasium envs), and the inference threads, then hands out completed trajectory
blocks. Settings come from Sample Factory's flags: ``--num_workers``, ``--num_envs_per_worker``,
``--worker_num_splits``, ``--rollout``, ``--policy_workers_per_policy``, ``--reward_scale``,
``--reward_clip``, ``--seed``, ``--async_rl``, ``--decorrelate_envs_on_one_worker``, and the stall check of env
worker processes, ``--heartbeat_reporting_interval`` / ``--heartbeat_interval`` (csrc/sampler/remote_worker.h).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.multiprocessing  # noqa: F401 - registers tensor pickling through shared memory

from pysf.algo.inference.policy_backends import NativePolicy, PythonPolicy
from pysf.algo.sampling import protocol
from pysf.algo.sampling.buffers import allocate_trajectory_buffers, block_row_index, env_worker_fields, native_buffers_dict
from pysf.algo.sampling.rollout_worker import WorkerSpec, rollout_worker_main, rollout_worker_thread_main
from pysf.algo.sampling.training_info import SharedTrainingInfo
from pysf.algo.utils.context import sf_global_context
from pysf.algo.utils.env_info import EnvInfo
from pysf.algo.utils.multiprocessing_utils import get_mp_ctx, new_child_process, start_child_process
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.utils.typing import Config

log = logging.getLogger(__name__)

# Worker processes get this long to exit after STOP before they are terminated.
_WORKER_JOIN_SECONDS = 3.0
# Sample Factory's AgentPolicyMapping: in async mode an env's agents are mapped to random policies anew every
# 10 episodes (per agent); its sync mode keeps the fixed mapping (env index % num_policies).
POLICY_RESAMPLE_EPISODES = 10


@dataclass
class EpisodeStats:
    """One finished episode, the record that carries it from the env runner (C++ ``EpisodeStat``, or a worker's
    stats-queue message for episodes with extra info) to the runner: the env and the policy that acted (from the
    split's assignment), the raw (unscaled) return, the length in frames (env steps x --env_frameskip when
    --summaries_use_frameskip, as Sample Factory counts it), what the env reported in ``info``, and in an env of
    exactly two agents (a two-player game) the policy of the other agent."""

    env_id: int
    reward: float
    length: int
    true_objective: Optional[float] = None
    extra_stats: Optional[Dict[str, Any]] = None
    policy_id: int = 0
    opponent_policy_id: Optional[int] = None


def sampling_geometry(cfg: Config, num_agents: int = 1) -> tuple:
    """``(block_rows, num_splits)``: trajectory rows per split (its envs' agents: ``num_agents`` per env) and
    splits in total; validates the flags."""
    envs, splits = int(cfg.num_envs_per_worker), int(cfg.worker_num_splits)
    if envs < 1 or cfg.num_workers < 1 or splits < 1:
        raise ValueError("--num_workers, --num_envs_per_worker and --worker_num_splits must be >= 1")
    if envs % splits != 0:
        raise ValueError(
            f"--num_envs_per_worker={envs} must be a multiple of --worker_num_splits={splits} "
            f"(each split steps the same number of envs)"
        )
    return envs // splits * int(num_agents), int(cfg.num_workers) * splits


def trajectory_blocks(num_splits: int, blocks_held: int, async_rl: bool) -> int:
    """How many trajectory blocks to allocate when the consumer holds up to ``blocks_held`` blocks at a time.

    Async: every split keeps one block to fill while the consumer holds its own, so sampling never waits for
    training. Sync: the blocks the consumer takes are all there are, and every split needs one.
    """
    return num_splits + blocks_held if async_rl else max(blocks_held, num_splits)


InferencePolicy = Union[NativePolicy, PythonPolicy]


class Sampler:
    """Native sampling; see the module docstring. Use as a context manager or call stop().

    ``policy`` is one inference policy, or a list of them: policy ``p`` acts for the agents mapped to it
    (``--pbt_mix_policies_in_one_env``; redrawn every ``POLICY_RESAMPLE_EPISODES`` episodes in async mode;
    csrc/sampler/split_assignment.h has the mapping)."""

    def __init__(
        self,
        cfg: Config,
        env_info: EnvInfo,
        policy: Union[InferencePolicy, Sequence[InferencePolicy]],
        rnn_state_size: int,
        num_blocks: Optional[int] = None,
        deterministic_actions: bool = False,
        serial_inference_order: bool = False,
    ):
        from pysf import _C

        self.cfg = cfg
        self.env_info = env_info
        self.policy = policy
        self.block_rows, self.num_splits = sampling_geometry(cfg, env_info.num_agents)
        if num_blocks is None:  # a consumer that takes one block per split at a time (SyncSamplingAPI)
            num_blocks = trajectory_blocks(self.num_splits, self.num_splits, bool(cfg.async_rl))
        if num_blocks < self.num_splits:
            raise ValueError(f"num_blocks={num_blocks} is less than the number of splits ({self.num_splits})")
        self.num_blocks = num_blocks
        self.rollout = int(cfg.rollout)
        # Episode lengths are reported in frames, as Sample Factory reports them.
        self._frames_per_step = int(cfg.env_frameskip) if cfg.summaries_use_frameskip else 1
        self.native_envs = bool(env_info.native)
        self.buffers = allocate_trajectory_buffers(
            env_info.obs_space,
            env_info.action_space,
            rnn_state_size,
            self.rollout,
            num_blocks,
            self.block_rows,
            shared_memory=not self.native_envs,
        )
        config = dict(
            worker_num_splits=int(cfg.worker_num_splits),
            agents_per_env=int(env_info.num_agents),
            seed=int(cfg.seed) if cfg.seed is not None else 0,
            decorrelate_envs_on_one_worker=bool(cfg.decorrelate_envs_on_one_worker),
            mix_policies_in_one_env=bool(cfg.pbt_mix_policies_in_one_env),
            policy_resample_episodes=POLICY_RESAMPLE_EPISODES if cfg.async_rl else 0,
            reward_scale=float(cfg.reward_scale),
            reward_clip=float(cfg.reward_clip),
            num_inference_threads=int(cfg.policy_workers_per_policy),
            deterministic_actions=deterministic_actions,
            serial_inference_order=serial_inference_order,
            # Sample Factory's heartbeat flags: a worker process stuck this long is reported (csrc/sampler/remote_worker.h)
            stall_timeout_seconds=float(cfg.heartbeat_reporting_interval),
            stall_check_seconds=float(cfg.heartbeat_interval),
        )
        if self.native_envs:
            config.update(
                native_env_name=cfg.env,
                num_native_workers=int(cfg.num_workers),
                envs_per_native_worker=int(cfg.num_envs_per_worker),
            )
        policies = list(policy) if isinstance(policy, (list, tuple)) else [policy]
        native_policies = [p.native if isinstance(p, NativePolicy) else p.forward for p in policies]
        self._sampler = _C.Sampler(config, native_buffers_dict(self.buffers, self.block_rows), native_policies)
        self._processes: List[multiprocessing.process.BaseProcess] = []
        self._mailboxes: List[torch.Tensor] = []  # per process, its mailbox (protocol.py)
        self._stack_files: List[Any] = []  # per process, where it dumps its Python stacks on SIGUSR1
        self._stats_queue = None
        self.training_info = SharedTrainingInfo()
        self._started = False
        self._stopped = False

    # ---- life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start env workers and inference threads."""
        if not self.native_envs:
            self._start_worker_processes()
        try:
            self._sampler.start()
        except ValueError as exc:  # e.g. a native env that cannot be made with the split's number of envs
            raise RuntimeError(f"the sampler could not start: {exc}") from exc
        self._started = True

    def set_training_info(self, info: Sequence[Dict[str, Any]]) -> None:
        """Newest training info for the envs' ``TrainingInfoInterface`` / ``RewardShapingInterface`` hooks, one dict
        per policy (an agent's env gets its policy's; before ``start``: what every env gets when it is created).
        Native envs have no hooks."""
        self.training_info.publish(list(info))

    def _start_worker_processes(self) -> None:
        self._stats_queue = get_mp_ctx(False).Queue()
        shared = {k: self.buffers[k] for k in env_worker_fields()}
        shared["obs"] = dict(self.buffers["obs"])
        splits_per_worker = int(self.cfg.worker_num_splits)
        for worker_index in range(int(self.cfg.num_workers)):
            assignments = self._sampler.next_remote_assignments(splits_per_worker)
            spec = WorkerSpec(
                worker_index=worker_index,
                env_name=self.cfg.env,
                cfg=self.cfg,
                obs_space=self.env_info.obs_space,
                action_space=self.env_info.action_space,
                block_rows=self.block_rows,
                splits=assignments,
                parent_pid=os.getpid(),
                context=sf_global_context(),
                env_obs_is_dict=self.env_info.obs_is_dict,
                env_info=self.env_info,
                training_info=self.training_info,
            )
            mailbox = protocol.allocate_mailbox(splits_per_worker, self.block_rows)
            stack_file = tempfile.TemporaryFile()
            self._stack_files.append(stack_file)
            spec.stack_dump = protocol.InheritedFd(stack_file.fileno())  # the pickled child gets its own duplicate
            wake_worker, reports_posted = protocol.new_eventfd(), protocol.new_eventfd()
            lifeline_sampler, lifeline_worker = protocol.new_lifeline()
            endpoint = protocol.WorkerEndpoint(mailbox, wake_worker, reports_posted, lifeline_worker)
            if self.cfg.serial_mode:
                # Debugging: the worker runs as a thread of this process. It gets its own descriptors for
                # the eventfds (what pickling gives a child process), since both ends take theirs over.
                endpoint = protocol.WorkerEndpoint(
                    mailbox,
                    protocol.InheritedFd(os.dup(wake_worker.fd)),
                    protocol.InheritedFd(os.dup(reports_posted.fd)),
                    lifeline_worker,
                )
                process = threading.Thread(
                    target=rollout_worker_thread_main,
                    args=(spec, shared, endpoint, self._stats_queue),
                    name=f"pysf-env-worker-{worker_index}",
                    daemon=True,
                )
                process.start()
                process.pid = "this process, thread"
            else:
                process = new_child_process(rollout_worker_main, (spec, shared, endpoint, self._stats_queue),
                                            name=f"pysf-env-worker-{worker_index}")
                try:
                    start_child_process(process)
                except BaseException:
                    for fd in (wake_worker, reports_posted, lifeline_sampler):
                        fd.close()
                    raise
                finally:
                    # The parent must not keep the child's end of the lifeline: a dead child must read as a hang-up.
                    lifeline_worker.close()
            self._processes.append(process)
            self._mailboxes.append(mailbox)
            # The sampler takes over our ends (and closes them even if it rejects them).
            registered = self._sampler.add_remote_worker(
                mailbox,
                wake_worker.detach(),
                reports_posted.detach(),
                lifeline_sampler.detach(),
                splits_per_worker,
                f"env worker {worker_index} (pid {process.pid}, env {self.cfg.env!r})",
            )
            assert registered == assignments, "the sampler assigned the worker other splits than announced"

    def stop(self) -> None:
        """Stop sampling and join every thread and process (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        stalled = self._sampler.stalled_remote_workers()
        self._sampler.stop()  # every worker that runs its loop sees STOP and exits within milliseconds
        for index in stalled:  # stuck in an env call: it cannot see STOP
            self._kill_stuck_worker(index)
        for process, mailbox in zip(self._processes, self._mailboxes):
            # One still importing torch (seconds on a busy machine) holds no envs yet: no need to wait.
            if protocol.abandon_if_starting(mailbox) and not isinstance(process, threading.Thread):
                process.kill()  # workers ignore SIGTERM (the parent handles it for the process tree)
        for process in self._processes:
            process.join(timeout=_WORKER_JOIN_SECONDS)
        for index, process in enumerate(self._processes):
            if isinstance(process, threading.Thread):  # --serial_mode: a thread cannot be killed
                if process.is_alive():
                    log.warning("env worker thread %s did not exit after stop (a hung env?); leaving it", process.name)
                continue
            if process.is_alive():
                log.warning("env worker %s did not exit after stop (a hung env?)", process.name)
                self._kill_stuck_worker(index)
        for stack_file in self._stack_files:
            stack_file.close()
        if self._stats_queue is not None:
            self._stats_queue.close()
            self._stats_queue.join_thread()

    def _kill_stuck_worker(self, index: int) -> None:
        """Log where worker ``index`` is stuck (its Python stacks, dumped by faulthandler on SIGUSR1), then kill it."""
        process = self._processes[index]
        if isinstance(process, threading.Thread) or not process.is_alive():
            return
        stacks = ""
        try:
            os.kill(process.pid, signal.SIGUSR1)
            stack_file = self._stack_files[index]
            for _ in range(10):  # the dump takes milliseconds; a frozen (SIGSTOPped) process never writes it
                time.sleep(0.05)
                stack_file.seek(0)
                dumped = stack_file.read().decode(errors="replace").strip()
                if dumped and dumped == stacks:  # complete once it stopped growing
                    break
                stacks = dumped
        except OSError:
            pass
        where = f"; its Python stacks (most recent call first):\n{stacks}" if stacks else " (it dumped no stack: frozen?)"
        log.error("Killing stuck %s%s", process.name, where)
        process.kill()
        process.join()

    def __enter__(self) -> "Sampler":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- trajectories -----------------------------------------------------------------------------------

    def get_trajectories(self, num_blocks: int, timeout: float = 60.0) -> List[int]:
        """Completed blocks (fewer if ``timeout`` passes first). Raises RuntimeError if sampling failed."""
        try:
            return list(self._sampler.get_trajectories(num_blocks, timeout))
        except RuntimeError as exc:
            raise RuntimeError(self._describe_failure(str(exc))) from None

    def release(self, blocks: Sequence[int]) -> None:
        """Give consumed blocks back to the samplers."""
        self._sampler.release(list(blocks))

    def copy_blocks(self, blocks: Sequence[int]) -> TensorDict:
        """A copy of the blocks' data, ``[len(blocks) * block_rows, T(+1), ...]`` each, in block order.

        Blocks complete in a racy order; block order makes the rows reproducible where the block of each split
        is fixed (synchronous sampling: split i always fills its home block i, see block_pool.h).
        """
        rows = block_row_index(sorted(blocks), self.block_rows)
        return self.buffers.apply(lambda t: t.index_select(0, rows))

    def episode_stats(self) -> List[EpisodeStats]:
        """Episodes finished since the last call."""
        frames = self._frames_per_step
        stats = [
            EpisodeStats(env_id, reward, length * frames, policy_id=policy_id,
                         opponent_policy_id=None if opponent < 0 else opponent)
            for env_id, policy_id, opponent, reward, length in self._sampler.drain_episode_stats()
        ]
        if self._stats_queue is not None:
            while True:
                try:
                    env_id, policy_id, opponent, reward, length, true_objective, extra = self._stats_queue.get_nowait()
                except (queue.Empty, OSError, ValueError):
                    break
                stats.append(EpisodeStats(env_id, reward, length * frames, true_objective, extra, policy_id, opponent))
        return stats

    @property
    def samples_collected(self) -> int:
        """Env steps the inference threads have acted on so far."""
        return int(self._sampler.rows_served)

    @property
    def samples_collected_by_policy(self) -> List[int]:
        """``samples_collected`` by the policy that acted (policy p at index p)."""
        return [int(rows) for rows in self._sampler.rows_served_by_policy]

    @property
    def error(self) -> Optional[str]:
        """Why sampling failed, or None."""
        return self._sampler.error

    def check(self) -> None:
        """Raise RuntimeError if sampling failed."""
        error = self.error
        if error is not None:
            raise RuntimeError(self._describe_failure(f"sampling failed: {error}"))

    def _describe_failure(self, message: str) -> str:
        exits = []
        for process in self._processes:
            if getattr(process, "exitcode", None) not in (None, 0):  # exitcode polls without blocking
                exits.append(f"{process.name} exit code {process.exitcode}")
        return message + (f" [{'; '.join(exits)}]" if exits else "")
