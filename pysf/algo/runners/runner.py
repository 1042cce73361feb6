"""The training runner: sampler + learner in one loop, with Sample Factory's outputs and controls.

The runner owns the experiment folder (``config.json``, ``sf_log.txt``, ``.summary/{policy}`` TensorBoard events,
``checkpoint_p{policy}``), starts the native sampler (C++ env threads or gymnasium worker processes and the
inference threads), and trains: each iteration takes ``batch_size * num_batches_per_epoch`` samples of
completed trajectories, trains on them and publishes the weights to inference after every SGD step.
In async mode (default) the trajectory blocks are freed as soon as they are copied, so sampling goes on
during training; in sync mode they are freed after training, so every sample comes from the current policy.

With ``--num_policies`` N > 1 (async mode) each policy has its own learner, inference policy, checkpoints,
summaries and episode statistics (``PolicyState``); the sampler maps every agent to a policy
(csrc/sampler/split_assignment.h), and a policy trains whenever a batch of its own trajectories is there.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

import numpy as np
import torch

from pysf.algo.inference.policy_backends import make_inference_policy
from pysf.algo.learning.batcher import PolicyTrajectoryBatcher, TrajectoryBatcher, blocks_per_batch
from pysf.algo.learning.learner import Learner
from pysf.algo.runners.frozen_policies import FrozenPolicy, load_frozen_policies
from pysf.algo.sampling.sampler import Sampler, sampling_geometry, trajectory_blocks
from pysf.algo.sampling.training_info import TRAINING_INFO_INTERVAL_SECONDS, training_info
from pysf.algo.utils.checkpoints import checkpoint_dir, load_latest_checkpoint, milestones_dir, save_checkpoint
from pysf.algo.utils.env_info import EnvInfo, obtain_env_info
from pysf.algo.utils.misc import ExperimentStatus
from pysf.algo.utils.multiprocessing_utils import signal_name, stop_signals_handled_by
from pysf.algo.utils.torch_utils import init_torch_runtime
from pysf.model.encoder import has_conv_encoder
from pysf.model.model_utils import get_rnn_size
from pysf.utils.atomic_files import FileWriteError, write_atomically
from pysf.utils.typing import Config, PolicyID
from pysf.utils.utils import LOG_FILENAME, experiment_dir, set_main_process_niceness, setup_logging
from pysf.utils.wandb_utils import init_wandb

log = logging.getLogger("pysf")

_SUMMARY_QUEUE_EVENTS = 1000
_STATUS_NAMES = {ExperimentStatus.SUCCESS: "success", ExperimentStatus.FAILURE: "failure", ExperimentStatus.INTERRUPTED: "interrupted"}

REPORT_INTERVAL_SECONDS = 5.0
_FPS_WINDOWS = (10, 60, 300)


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and its (worker) children, in MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


@functools.lru_cache(maxsize=None)
def process_start_time() -> float:
    """When this process started (wall clock), for time-to-threshold figures."""
    try:
        import psutil

        return psutil.Process().create_time()
    except ImportError:
        return _IMPORT_TIME


_IMPORT_TIME = time.time()


class _EpisodeWindow:
    """The last ``stats_avg`` episodes' rewards, lengths and extra statistics, and in two-player games the last
    ``stats_avg`` outcomes against each opponent policy (``matchups``)."""

    def __init__(self, size: int):
        self.rewards: Deque[float] = deque(maxlen=size)
        self.lengths: Deque[int] = deque(maxlen=size)
        self.true_objectives: Deque[float] = deque(maxlen=size)
        self.extra: Dict[str, Deque[float]] = {}
        # opponent policy -> outcomes: +1 a win, 0 a draw, -1 a loss, by the sign of the episode's return (the
        # convention of two-player zero-sum games such as Connect Four and PettingZoo's classic envs)
        self.matchups: Dict[int, Deque[int]] = {}
        self.total_episodes = 0
        self.size = size

    def add(self, stats) -> None:
        for s in stats:
            self.rewards.append(s.reward)
            self.lengths.append(s.length)
            self.true_objectives.append(s.true_objective if s.true_objective is not None else s.reward)
            for key, value in (s.extra_stats or {}).items():
                try:
                    self.extra.setdefault(key, deque(maxlen=self.size)).append(float(value))
                except (TypeError, ValueError):
                    pass
            if s.opponent_policy_id is not None:
                outcome = (s.reward > 0) - (s.reward < 0)
                self.matchups.setdefault(s.opponent_policy_id, deque(maxlen=self.size)).append(outcome)
            self.total_episodes += 1

    def mean_reward(self) -> Optional[float]:
        return float(np.mean(self.rewards)) if self.rewards else None

    def matchup_rates(self) -> Dict[int, Tuple[float, float]]:
        """Opponent policy -> ``(win rate, draw rate)`` over the window's games against it."""
        return {opponent: (outcomes.count(1) / len(outcomes), outcomes.count(0) / len(outcomes))
                for opponent, outcomes in sorted(self.matchups.items())}


class AlgoObserver:
    """Hooks into the training run (Sample Factory's ``AlgoObserver``); register with ``runner.register_observer``."""

    def on_init(self, runner: "Runner") -> None:
        """After ``init()`` set everything up, before sampling starts."""

    def on_connect_components(self, runner: "Runner") -> None:
        """Right after ``on_init`` (pysf's components need no signal wiring)."""

    def on_start(self, runner: "Runner") -> None:
        """Right after sampling started."""

    def on_training_step(self, runner: "Runner", training_iteration_since_resume: int) -> None:
        """After each training iteration."""

    def extra_summaries(self, runner: "Runner", policy_id: PolicyID, env_steps: int, writer: Any) -> None:
        """Add TensorBoard summaries. Called as ``(runner, policy_id, writer, env_steps)``, the order Sample
        Factory's runner passes them in (its observers rely on it)."""

    def on_stop(self, runner: "Runner") -> None:
        """After training stopped, before the final checkpoint."""


# Sample Factory's per-policy message handler: ``fn(runner, msg, policy_id)``.
PolicyMsgHandler = Callable[["Runner", Dict[str, Any], PolicyID], None]


class PolicyState:
    """What the runner keeps for one policy: its learner, the inference policy that acts for its agents, its
    TensorBoard writer (``.summary/{policy_id}``), episode window, best reward, checkpoints and learning curve."""

    def __init__(self, policy_id: PolicyID, learner: Learner, stats_avg: int):
        self.policy_id = policy_id
        self.learner = learner
        self.policy = None  # the inference policy (pysf.algo.inference.policy_backends)
        self.writer = None
        self.episodes = _EpisodeWindow(stats_avg)
        self.best_mean_reward = -math.inf
        self.threshold_reached: Optional[Tuple[int, float]] = None  # (env steps, seconds since process start)
        self.last_checkpoint_path: Optional[str] = None
        self.last_saved_step = -1
        self.last_train_stats: Dict[str, float] = {}
        self.resumed_from: Optional[Tuple[int, int]] = None  # (train_step, env_steps) of the loaded checkpoint
        self.train_seconds_before = 0.0
        self.reward_shaping: Optional[Dict[str, Any]] = None  # what its agents' envs get (RewardShapingInterface)
        # (seconds since process start, env steps, mean reward of the episode window) after training iterations,
        # thinned out as the run gets longer (about 1000 points per decade of run time): the benchmarks' plots.
        self.learning_curve: List[Tuple[float, int, float]] = []


def _policy_zero_attribute(name: str, doc: str) -> property:
    """A Runner attribute that is policy 0's (the only policy with --num_policies=1)."""

    def get(runner: "Runner") -> Any:
        return getattr(runner.policies[0], name) if runner.policies else None

    def set_(runner: "Runner", value: Any) -> None:
        setattr(runner.policies[0], name, value)

    return property(get, set_, doc=doc)


class Runner:
    """Trains Sample Factory's APPO: one policy, or ``--num_policies`` of them (``PolicyState``)."""

    learner = _policy_zero_attribute("learner", "Policy 0's learner.")
    policy = _policy_zero_attribute("policy", "Policy 0's inference policy.")
    writer = _policy_zero_attribute("writer", "Policy 0's TensorBoard writer.")
    episodes = _policy_zero_attribute("episodes", "Policy 0's episode window.")
    best_mean_reward = _policy_zero_attribute("best_mean_reward", "Policy 0's best windowed mean reward.")
    threshold_reached = _policy_zero_attribute("threshold_reached", "When policy 0 reached the reward threshold.")
    last_checkpoint_path = _policy_zero_attribute("last_checkpoint_path", "Policy 0's newest checkpoint.")
    learning_curve = _policy_zero_attribute("learning_curve", "Policy 0's learning curve.")
    resumed_from = _policy_zero_attribute("resumed_from", "(train_step, env_steps) policy 0 resumed from.")

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.env_info: Optional[EnvInfo] = None
        self.policies: List[PolicyState] = []
        self.frozen_policies: List[FrozenPolicy] = []  # --frozen_policies: they act after the learning ones
        self._learner_threads: Optional[ThreadPoolExecutor] = None  # several policies ready at once train in parallel
        self.sampler: Optional[Sampler] = None
        self.experiment_dir = ""
        self._stop_requested = False
        self._interrupted = False
        self._fps_history: Deque[Tuple[float, int]] = deque()
        # (time, env steps) after the first and the latest training iteration: the steady-state FPS window
        # (excludes start-up: process start, compilation, the first batch).
        self._first_iteration: Optional[Tuple[float, int]] = None
        self._last_iteration: Tuple[float, int] = (0.0, 0)
        self._run_start = time.time()
        self._last_report = 0.0
        self._last_summary = 0.0
        self._last_save = 0.0
        self._last_best_check = 0.0
        self._last_training_info = 0.0
        self._last_milestone = time.time()
        self._last_throughput: Tuple[float, List[int]] = (time.time(), [])
        self._progress_line = sys.stdout.isatty()
        # What the run achieved (read by tests and benchmarks, reported in the log).
        self.status: Optional[int] = None
        self.max_version_diff = 0.0
        self.observers: List[AlgoObserver] = []
        self._episodic_stats_handlers: List[PolicyMsgHandler] = []
        self.training_iteration_since_resume = 0
        self._last_reported_steps = -1
        self._experiment_lock = None  # held from init() until the run ends (pysf.cfg.experiment.ExperimentLock)
        self._checkpoint_write_failed = False

    # ---- set-up ------------------------------------------------------------------------------------------

    def init(self) -> int:
        """Experiment folder, config, env info, model, checkpoint, inference, sampler. Returns a status."""
        from pysf.cfg.arguments import cfg_str
        from pysf.cfg.experiment import ExperimentLock, prepare_experiment_dir, save_config
        from pysf.cfg.verify import check_env_name, preprocess_cfg, verify_cfg

        cfg = self.cfg
        setup_logging()  # the console first: start-up errors below are logged in the usual format
        # Before anything in the folder is read or written: a second run in the same folder stops here.
        self._experiment_lock = ExperimentLock(experiment_dir(cfg, mkdir=False))
        self.cfg = cfg = prepare_experiment_dir(cfg, lock=self._experiment_lock)
        self.experiment_dir = self._experiment_lock.exp_dir
        setup_logging(os.path.join(self.experiment_dir, LOG_FILENAME) if cfg.log_to_file else None)
        check_env_name(cfg.env)  # an unknown --env fails with the closest registered/native/gymnasium names
        self.env_info = obtain_env_info(cfg)
        cfg = self.cfg = preprocess_cfg(cfg, self.env_info)
        verify_cfg(cfg, self.env_info)
        # Before the config is saved (a new run id is saved; a resumed run continues the same W&B run) and
        # before the SummaryWriter exists (W&B mirrors writers created after it starts).
        init_wandb(cfg)
        save_config(cfg)
        log.info("Starting experiment with the following configuration:\n%s", cfg_str(cfg))

        if cfg.device == "gpu":  # Sample Factory's default; on a machine with a GPU verify_cfg stopped already
            log.info("--device=gpu: this machine has no CUDA device; the learner and inference run on the CPU")
        threads = init_torch_runtime(cfg, conv_model=has_conv_encoder(self.env_info.obs_space))
        log.debug("PyTorch uses %d thread(s) in this process (--torch_threads=%d)", threads, cfg.torch_threads)
        set_main_process_niceness(cfg)
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
            np.random.seed(cfg.seed)

        rnn_size = get_rnn_size(cfg)
        for policy_id in range(int(cfg.num_policies)):
            state = PolicyState(policy_id, Learner(cfg, self.env_info, policy_id=policy_id), int(cfg.stats_avg))
            self.policies.append(state)
            checkpoint = load_latest_checkpoint(checkpoint_dir(self.experiment_dir, policy_id), cfg.load_checkpoint_kind)
            if checkpoint is not None:
                state.learner.load_checkpoint_state(checkpoint)
                state.train_seconds_before = float(checkpoint.get("train_seconds", 0.0))
                state.last_checkpoint_path = checkpoint.get("_path")
                state.resumed_from = (state.learner.train_step, state.learner.env_steps)
            state.policy = make_inference_policy(state.learner.actor_critic, self.env_info.obs_space, rnn_size,
                                                 backend=cfg.inference_backend)
            state.policy.update_weights(state.learner.actor_critic, state.learner.train_step)
            state.reward_shaping = self.env_info.reward_shaping_scheme

        self.frozen_policies = load_frozen_policies(cfg, self.env_info, rnn_size)
        acting = [state.policy for state in self.policies] + [frozen.policy for frozen in self.frozen_policies]

        block_rows, num_splits = sampling_geometry(cfg, self.env_info.num_agents)
        trajectories_per_batch = int(cfg.batch_size) * int(cfg.num_batches_per_epoch) // int(cfg.rollout)
        # Async mode may hold --num_batches_to_accumulate batches of blocks while training.
        batches_held = max(1, int(cfg.num_batches_to_accumulate)) if cfg.async_rl else 1
        held = blocks_per_batch(trajectories_per_batch, block_rows) * batches_held
        num_blocks = trajectory_blocks(num_splits, held, bool(cfg.async_rl))
        self.sampler = Sampler(cfg, self.env_info, acting, rnn_size, num_blocks=num_blocks)
        if len(acting) == 1:
            self.batcher = TrajectoryBatcher(self.sampler, trajectories_per_batch, free_blocks_when_copied=bool(cfg.async_rl))
        else:
            self.batcher = PolicyTrajectoryBatcher(self.sampler, trajectories_per_batch, len(acting),
                                                   free_blocks_when_copied=bool(cfg.async_rl),
                                                   learning_policies=len(self.policies))

        try:
            from tensorboardX import SummaryWriter

            for state in self.policies:
                # A roomy queue: one round of summaries never fills it, so a dead writer thread (see
                # _summaries_usable) is noticed before a put could block.
                state.writer = SummaryWriter(os.path.join(self.experiment_dir, ".summary", str(state.policy_id)),
                                             flush_secs=int(cfg.flush_summaries_interval), max_queue=_SUMMARY_QUEUE_EVENTS)
        except ImportError:
            log.warning("tensorboardX is not installed: no TensorBoard summaries")
        if cfg.with_pbt:
            from pysf.pbt.population_based_training import PopulationBasedTraining

            self.register_observer(PopulationBasedTraining(cfg, self))
        self._observers_call(AlgoObserver.on_init, self)
        self._observers_call(AlgoObserver.on_connect_components, self)
        return ExperimentStatus.SUCCESS

    # ---- extension points (Sample Factory's) -------------------------------------------------------------

    def register_observer(self, observer: AlgoObserver) -> None:
        """Call ``observer``'s hooks during the run (register before ``init()``)."""
        self.observers.append(observer)

    def register_episodic_stats_handler(self, func: PolicyMsgHandler) -> None:
        """``func(runner, msg, policy_id)`` for every finished episode; ``msg["episodic"]`` holds its ``reward``,
        ``len``, ``true_objective`` and ``episode_extra_stats`` (Sample Factory's message)."""
        self._episodic_stats_handlers.append(func)

    def register_msg_handler(self, key: str, func: Callable) -> None:
        """Sample Factory routes its components' messages to such handlers; pysf's components send none."""
        raise NotImplementedError(
            f"register_msg_handler({key!r}, ...): pysf's sampler and learner do not send Sample Factory's component "
            f"messages. Use register_episodic_stats_handler for episode statistics or an AlgoObserver."
        )

    def register_policy_msg_handler(self, key: str, func: Callable) -> None:
        """See ``register_msg_handler``."""
        self.register_msg_handler(key, func)

    def _observers_call(self, hook: Callable, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, hook.__name__)(*args)

    def _handle_episodes(self, stats: List[Any]) -> None:
        for state in self.policies:
            state.episodes.add([s for s in stats if s.policy_id == state.policy_id])
        if not self._episodic_stats_handlers:
            return
        for s in stats:
            episodic = dict(reward=s.reward, len=s.length,
                            true_objective=s.reward if s.true_objective is None else s.true_objective)
            if s.extra_stats:
                episodic["episode_extra_stats"] = s.extra_stats
            for handler in self._episodic_stats_handlers:
                handler(self, {"episodic": episodic, "policy_id": s.policy_id}, s.policy_id)

    # ---- the loop ----------------------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGINT, frame: Any = None) -> None:
        """Stop after the current iteration, save a checkpoint and end with INTERRUPTED (the SIGINT and SIGTERM
        handler during ``run()``; a second signal aborts the wait with KeyboardInterrupt)."""
        if self._stop_requested and self._interrupted:
            raise KeyboardInterrupt
        log.info("%s: saving a checkpoint and stopping (Ctrl-C again to abort)", signal_name(signum))
        self._interrupted = True
        self._stop_requested = True

    def _train_seconds(self) -> float:
        return self.policies[0].train_seconds_before + (time.time() - self._run_start)

    @property
    def env_steps(self) -> int:
        """Env steps trained on, all policies together (Sample Factory's "Total num frames")."""
        return sum(state.learner.env_steps for state in self.policies)

    def _should_stop(self) -> bool:
        # As Sample Factory: the env-step budget is each policy's, and the run ends once every policy has spent it.
        return (
            self._stop_requested
            or all(state.learner.env_steps >= self.cfg.train_for_env_steps for state in self.policies)
            or self._train_seconds() >= self.cfg.train_for_seconds
        )

    def run(self) -> int:
        """Train until a stop condition; returns SUCCESS, FAILURE or INTERRUPTED.

        SIGINT (Ctrl-C) and SIGTERM (``timeout``, ``docker stop``, a cluster's preemption) stop the run the same
        way: the current iteration ends, a checkpoint is saved, the status is INTERRUPTED. Whatever ends the run
        (a stop condition, a signal, a failed env worker, a failed write), the shutdown path runs: workers are
        stopped, the final checkpoint, summaries and ``result.json`` are written where the disk allows, and every
        failure is reported in one line.
        """
        with stop_signals_handled_by(self.request_stop):
            status = self._run()
        return status

    def _run(self) -> int:
        status = ExperimentStatus.SUCCESS
        self._run_start = time.time()
        self._last_throughput = (self._run_start, [])
        self._last_save = self._last_report = self._last_summary = self._last_best_check = self._last_milestone = time.time()
        self._fps_history.append((time.time(), self.env_steps))
        try:
            self.publish_training_info()
            self.sampler.start()
            self._observers_call(AlgoObserver.on_start, self)
            while not self._should_stop():
                # Short waits so that reports, checkpoints and Ctrl-C are handled while sampling runs.
                self.batcher.add(self.sampler.get_trajectories(self.batcher.blocks_missing(), timeout=0.5))
                if not self._train_ready_policies():
                    self._periodic()
                    continue
                self._last_iteration = (time.time(), self.env_steps)
                if self._first_iteration is None:
                    self._first_iteration = self._last_iteration
                self._handle_episodes(self.sampler.episode_stats())
                self.training_iteration_since_resume += 1
                self._observers_call(AlgoObserver.on_training_step, self, self.training_iteration_since_resume)
                self._track_progress()
                self._periodic()
        except KeyboardInterrupt:
            self._interrupted = True
        except (RuntimeError, OSError) as exc:  # a failed env worker or inference (RuntimeError), a failed write
            log.error("Training failed: %s", exc)
            status = ExperimentStatus.FAILURE
        except Exception:  # noqa: BLE001 - a bug (pysf's or a hook's): its traceback, then the shutdown path
            log.exception("Training failed")
            status = ExperimentStatus.FAILURE
        finally:
            self._stop_everything()
        if self._progress_line:
            sys.stdout.write("\n")
        if self._interrupted and status == ExperimentStatus.SUCCESS:
            status = ExperimentStatus.INTERRUPTED
        self.status = status = self._shutdown(status)
        return status

    def _train_ready_policies(self) -> bool:
        """Train every policy that has a whole batch; returns whether any trained."""
        if isinstance(self.batcher, TrajectoryBatcher):  # one policy acts
            if not self.batcher.ready():
                return False
            batch, held_blocks = self.batcher.take()
            self._train(self.policies[0], batch)
            self._note_policy_lag([0])
            self.sampler.release(held_blocks)  # sync mode: the policy they were collected with is trained
            return True
        batches, held_blocks = self.batcher.take_ready()
        if len(batches) > 1:
            # Learners that are ready together train at once, one thread each: PyTorch's kernels run without the
            # GIL, and each learner publishes to its own inference policy (benchmarks/learner_threads.py).
            if self._learner_threads is None:
                self._learner_threads = ThreadPoolExecutor(len(self.policies), thread_name_prefix="pysf-learner")
            trainings = [self._learner_threads.submit(self._train, self.policies[policy_id], batch)
                         for policy_id, batch in batches]
            for training in trainings:
                training.result()  # a learner's exception is raised here, after the others finished theirs
        else:
            for policy_id, batch in batches:
                self._train(self.policies[policy_id], batch)
        self._note_policy_lag([policy_id for policy_id, _ in batches])
        self.sampler.release(held_blocks)  # sync mode: every policy that acted in them is trained
        return bool(batches)

    def _note_policy_lag(self, trained: List[int]) -> None:
        for policy_id in trained:
            stats = self.policies[policy_id].last_train_stats
            self.max_version_diff = max(self.max_version_diff, stats.get("version_diff_max", 0.0))

    def _train(self, state: PolicyState, batch: Any) -> None:
        """One training iteration of ``state``'s learner; touches that policy's state only (it may run in a learner
        thread, next to other policies' iterations)."""
        learner, policy = state.learner, state.policy
        state.last_train_stats = learner.train(batch, on_sgd_step=lambda step: policy.update_weights(learner.actor_critic, step))

    def _shutdown(self, status: int) -> int:
        """The end of every run: final figures, checkpoint, ``result.json``; each step guarded (a full disk must
        not keep the others from running). Returns the status, FAILURE if a step failed."""

        def step(name: str, action: Callable[[], Any]) -> bool:
            nonlocal status
            try:
                action()
                return True
            except Exception as exc:  # noqa: BLE001 - reported in one line; the remaining steps still run
                log.error("%s failed: %s", name, exc)
                status = ExperimentStatus.FAILURE
                return False

        step("on_stop observer", lambda: self._observers_call(AlgoObserver.on_stop, self))
        if self.env_steps > 0:
            if self._last_reported_steps != self.env_steps:
                step("The final report", self._report)  # also for runs shorter than one report interval
            step("Writing the final summaries", self._write_summaries)
            if not self._checkpoint_write_failed:
                step("Saving the best checkpoint", self._maybe_save_best)
        unsaved = any(state.last_saved_step != state.learner.train_step or state.last_checkpoint_path is None
                      for state in self.policies)
        if unsaved and not self._checkpoint_write_failed:  # after a failed write the disk is full: one line is enough
            step("Saving the final checkpoint", self._save_checkpoint)
        elapsed = time.time() - self._run_start
        steps_this_run = self.env_steps - sum(state.resumed_from[1] for state in self.policies if state.resumed_from)
        collected = ", ".join(f"{state.policy_id}: {state.learner.env_steps}" for state in self.policies)
        log.info("Collected {%s}, FPS: %.1f", collected, steps_this_run / max(elapsed, 1e-9))
        step("Writing result.json", lambda: self._log_result(elapsed, steps_this_run, status))
        step("Closing the summaries", self._close_summaries)
        self._release_experiment()
        return status

    def _policy_result(self, state: PolicyState) -> Dict[str, Any]:
        """One policy's figures in ``result.json``."""
        return dict(
            env_steps=state.learner.env_steps,
            train_step=state.learner.train_step,
            final_reward=state.episodes.mean_reward(),
            best_reward=None if state.best_mean_reward == -math.inf else state.best_mean_reward,
            threshold_env_steps=state.threshold_reached[0] if state.threshold_reached else None,
            threshold_seconds_since_process_start=state.threshold_reached[1] if state.threshold_reached else None,
            checkpoint=state.last_checkpoint_path,
            # two-player games: {opponent policy: {"win": rate, "draw": rate}} over the last episodes
            matchups={str(opponent): dict(win=win, draw=draw)
                      for opponent, (win, draw) in state.episodes.matchup_rates().items()},
            learning_curve=state.learning_curve,
        )

    def _log_result(self, elapsed: float, steps_this_run: int, status: int = ExperimentStatus.SUCCESS) -> None:
        """The run's figures: in the log, and in ``result.json`` for scripts (benchmarks parse it). The top level
        holds policy 0's figures (the only policy's, usually) with the run's totals; with several policies,
        ``policies`` lists each one's."""
        final = self.episodes.mean_reward()
        steady_fps = None
        if self._first_iteration is not None:
            t_first, steps_first = self._first_iteration
            if self._last_iteration[0] > t_first:
                steady_fps = (self._last_iteration[1] - steps_first) / (self._last_iteration[0] - t_first)
        result = dict(
            status=_STATUS_NAMES.get(status, str(status)),
            **self._policy_result(self.policies[0]),
            seconds=elapsed,
            fps=steps_this_run / max(elapsed, 1e-9),
            steady_state_fps=steady_fps,
            reward_threshold=self.env_info.reward_threshold if self.env_info else None,
            peak_rss_mb=_peak_rss_mb(),
        )
        result["env_steps"] = self.env_steps
        if len(self.policies) > 1:
            result["policies"] = [self._policy_result(state) for state in self.policies]
        import json

        result_error = None
        try:
            write_atomically(os.path.join(self.experiment_dir, "result.json"), json.dumps(result, indent=2).encode(), "the run's result")
        except FileWriteError as exc:
            result_error = exc
        threshold = self.env_info.reward_threshold if self.env_info else None
        reached = (
            f"reached at {self.threshold_reached[0]:,} env steps, {self.threshold_reached[1]:.1f} s after process start"
            if self.threshold_reached
            else "not reached"
        )
        outcome = {ExperimentStatus.SUCCESS: "", ExperimentStatus.INTERRUPTED: " (interrupted)"}.get(status, " (training FAILED, see above)")
        log.info(
            "Result%s: %s env steps in %.1f s (%.0f env frames/s); final %d-episode mean reward %s (best %s); "
            "reward threshold %s %s; checkpoint %s",
            outcome, f"{self.env_steps:,}", elapsed, steps_this_run / max(elapsed, 1e-9), self.episodes.size,
            "n/a" if final is None else f"{final:.1f}",
            "n/a" if self.best_mean_reward == -math.inf else f"{self.best_mean_reward:.1f}",
            "n/a" if threshold is None else f"{threshold:g}", reached if threshold is not None else "",
            self.last_checkpoint_path,
        )
        for state in self.policies[1:]:
            reward = state.episodes.mean_reward()
            log.info("Result of policy %d: %s env steps; final %d-episode mean reward %s (best %s); checkpoint %s",
                     state.policy_id, f"{state.learner.env_steps:,}", state.episodes.size,
                     "n/a" if reward is None else f"{reward:.1f}",
                     "n/a" if state.best_mean_reward == -math.inf else f"{state.best_mean_reward:.1f}",
                     state.last_checkpoint_path)
        if result_error is not None:
            raise result_error

    def _track_progress(self) -> None:
        for state in self.policies:
            self._track_policy_progress(state)

    def _track_policy_progress(self, state: PolicyState) -> None:
        episodes, env_steps = state.episodes, state.learner.env_steps
        mean = episodes.mean_reward()
        if mean is not None:
            seconds = time.time() - process_start_time()
            # Thinned by the run's own age (not the process's: a run late in a long-lived process keeps its points).
            run_seconds = time.time() - self._run_start
            if not state.learning_curve or seconds - state.learning_curve[-1][0] >= run_seconds / 1000:
                state.learning_curve.append((round(seconds, 3), env_steps, mean))
        if len(episodes.rewards) < episodes.size:
            return
        state.best_mean_reward = max(state.best_mean_reward, mean)
        threshold = self.env_info.reward_threshold
        if threshold is not None and state.threshold_reached is None and mean >= threshold:
            seconds = time.time() - process_start_time()
            state.threshold_reached = (env_steps, seconds)
            which = f" (policy {state.policy_id})" if len(self.policies) > 1 else ""
            log.info(
                "Reached the reward threshold %.1f%s: %d-episode mean reward %.1f at %d env steps, %.1f s after process start",
                threshold, which, episodes.size, mean, env_steps, seconds,
            )

    def close(self) -> None:
        """Release what init() created when run() will not be called (e.g. init failed half-way)."""
        try:
            self._stop_everything()
            self._close_summaries()
        finally:
            self._release_experiment()

    def _release_experiment(self) -> None:
        if self._experiment_lock is not None:
            self._experiment_lock.release()

    def _summaries_usable(self, state: Optional[PolicyState] = None) -> bool:
        """Whether a policy's (default: policy 0's) TensorBoard writer can take events. tensorboardX writes them
        from a thread through a bounded queue; when a write fails (a full disk) the thread dies, and once the queue
        is full the next add (or close) would block forever. Such a writer is dropped with one error line; training
        goes on without summaries."""
        state = self.policies[0] if state is None else state
        if state.writer is None:
            return False
        worker = getattr(getattr(getattr(state.writer, "file_writer", None), "event_writer", None), "_worker", None)
        if isinstance(worker, threading.Thread) and not worker.is_alive():
            log.error("TensorBoard summaries stopped: their writer thread failed (a full disk?); training goes on without them")
            state.writer = None
            return False
        return True

    def _close_summaries(self) -> None:
        """Close the TensorBoard writers, then the W&B run that mirrors them (so its last rows are synced)."""
        from pysf.utils.wandb_utils import finish_wandb

        for state in self.policies:
            if self._summaries_usable(state):
                state.writer.close()
                state.writer = None
        finish_wandb(self.cfg)

    def publish_training_info(self) -> None:
        """What the envs' TrainingInfoInterface / RewardShapingInterface receive (Sample Factory's dict), per policy:
        an agent's env gets its policy's step count and reward shaping (a frozen policy's: its checkpoint's steps
        and the env's default shaping)."""
        self._last_training_info = time.time()
        self.sampler.set_training_info(
            [training_info(state.policy_id, state.learner.env_steps, state.reward_shaping) for state in self.policies]
            + [training_info(frozen.policy_id, frozen.env_steps, self.env_info.reward_shaping_scheme)
               for frozen in self.frozen_policies]
        )

    def _stop_everything(self) -> None:
        if self._learner_threads is not None:
            self._learner_threads.shutdown(wait=True)
            self._learner_threads = None
        if self.sampler is not None:
            try:
                self.sampler.stop()
            except Exception as exc:  # noqa: BLE001 - shutting down regardless
                log.error("Error while stopping the sampler: %s", exc)

    # ---- periodic work -----------------------------------------------------------------------------------

    def _periodic(self) -> None:
        now = time.time()
        self.sampler.check()
        if now - self._last_report >= REPORT_INTERVAL_SECONDS:
            self._report()
            self._last_report = now
        elif self._progress_line:
            self._print_progress()
        if now - self._last_summary >= self.cfg.experiment_summaries_interval:
            self._write_summaries()
            self._last_summary = now
        if now - self._last_save >= self.cfg.save_every_sec:
            self._save_checkpoint()
            self._last_save = now
        if now - self._last_best_check >= self.cfg.save_best_every_sec:
            self._maybe_save_best()
            self._last_best_check = now
        if now - self._last_training_info >= TRAINING_INFO_INTERVAL_SECONDS:
            self.publish_training_info()
        if self.cfg.save_milestones_sec > 0 and now - self._last_milestone >= self.cfg.save_milestones_sec:
            self._last_milestone = now
            for state in self.policies:
                path = self._write_checkpoint(state, milestones_dir(checkpoint_dir(self.experiment_dir, state.policy_id)),
                                              keep=None)
                log.info("Saving milestone %s", path)

    def _fps(self) -> List[float]:
        now = time.time()
        self._fps_history.append((now, self.env_steps))
        while self._fps_history and now - self._fps_history[0][0] > max(_FPS_WINDOWS) + 5:
            self._fps_history.popleft()
        result = []
        for window in _FPS_WINDOWS:
            past = [entry for entry in self._fps_history if now - entry[0] <= window]
            if len(past) >= 2 and past[-1][0] > past[0][0]:
                result.append((past[-1][1] - past[0][1]) / (past[-1][0] - past[0][0]))
            else:
                result.append(math.nan)
        return result

    def _sample_throughput(self) -> List[float]:
        """Env steps/s each policy's inference acted on since the previous report (Sample Factory's "Throughput")."""
        now, samples = time.time(), self.sampler.samples_collected_by_policy
        last_time, last_samples = self._last_throughput
        last_samples = last_samples or [0] * len(samples)
        self._last_throughput = (now, samples)
        if now <= last_time:
            return [math.nan] * len(samples)
        return [(new - old) / (now - last_time) for new, old in zip(samples, last_samples)]

    def _report(self) -> None:
        self._last_reported_steps = self.env_steps
        fps = self._fps()
        stats = self.policies[0].last_train_stats
        lag = (stats.get("version_diff_min", 0.0), stats.get("version_diff_avg", 0.0), stats.get("version_diff_max", 0.0))
        if self._progress_line:
            sys.stdout.write("\r\033[K")
        throughput = ", ".join(f"{p}: {value:.1f}" for p, value in enumerate(self._sample_throughput()))
        log.info(
            "Fps is (10 sec: %.1f, 60 sec: %.1f, 300 sec: %.1f). Total num frames: %d. Throughput: %s. "
            "Samples: %d. Policy #0 lag: (min: %.1f, avg: %.1f, max: %.1f)",
            fps[0], fps[1], fps[2], self.env_steps, throughput, self.sampler.samples_collected, *lag,
        )
        rewards = [(state.policy_id, f"{reward:.3f}") for state in self.policies
                   if (reward := state.episodes.mean_reward()) is not None]
        if rewards:
            log.info("Avg episode reward: %r", rewards)
        win_rates = [(state.policy_id, opponent, f"{win:.3f}") for state in self.policies
                     for opponent, (win, _) in state.episodes.matchup_rates().items()]
        if win_rates:
            log.info("Win rate (policy, opponent policy, rate): %r", win_rates)

    def _print_progress(self) -> None:
        cfg = self.cfg
        fps = self._fps()[0]
        steps = self.env_steps
        reward = self.episodes.mean_reward()
        eta = (cfg.train_for_env_steps * len(self.policies) - steps) / fps if fps and fps > 0 and not math.isnan(fps) else math.nan
        line = (
            f"\r\033[K[pysf] {steps:,}/{int(cfg.train_for_env_steps) * len(self.policies):,} env steps | {fps:,.0f} FPS | "
            f"reward {reward if reward is not None else float('nan'):.2f} | ETA {eta:.0f}s"
        )
        sys.stdout.write(line)
        sys.stdout.flush()

    def _write_summaries(self) -> None:
        usable = [state for state in self.policies if self._summaries_usable(state)]
        if usable:
            fps = self._fps()
            for state in usable:
                self._write_policy_summaries(state, fps)

    def _write_policy_summaries(self, state: PolicyState, fps: List[float]) -> None:
        """Policy ``state``'s summaries in its own writer, at its own env steps (as Sample Factory writes them)."""
        step = state.learner.env_steps
        w = state.writer
        episodes = state.episodes
        if len(episodes.rewards) >= min(episodes.size, 10):
            w.add_scalar("reward/reward", float(np.mean(episodes.rewards)), step)
            w.add_scalar("reward/reward_min", float(np.min(episodes.rewards)), step)
            w.add_scalar("reward/reward_max", float(np.max(episodes.rewards)), step)
            w.add_scalar("len/len", float(np.mean(episodes.lengths)), step)
            w.add_scalar("len/len_min", float(np.min(episodes.lengths)), step)
            w.add_scalar("len/len_max", float(np.max(episodes.lengths)), step)
            w.add_scalar("policy_stats/avg_true_objective", float(np.mean(episodes.true_objectives)), step)
            for key, values in episodes.extra.items():
                name = key if "/" in key else f"policy_stats/avg_{key}"
                w.add_scalar(name, float(np.mean(values)), step)
        for opponent, (win, draw) in episodes.matchup_rates().items():
            w.add_scalar(f"matchups/win_rate_vs_p{opponent}", win, step)
            w.add_scalar(f"matchups/draw_rate_vs_p{opponent}", draw, step)
        if not math.isnan(fps[0]):
            w.add_scalar("perf/_fps", fps[0], step)
            w.add_scalar("perf/_sample_throughput", fps[0], step)
        for key, value in state.last_train_stats.items():
            if key != "train_seconds":
                w.add_scalar(f"train/{key}", value, step)
        w.add_scalar("train/env_steps", step, step)
        self._observers_call(AlgoObserver.extra_summaries, self, state.policy_id, w, step)
        try:
            import psutil

            w.add_scalar("stats/master_process_memory_mb", psutil.Process().memory_info().rss / 2**20, step)
        except ImportError:
            pass

    def _write_checkpoint(self, state: PolicyState, directory: str, keep: Optional[int], **naming: str) -> str:
        """``save_checkpoint`` of a policy's current state; a failed write says which checkpoint survives."""
        try:
            return save_checkpoint(self._checkpoint_state(state), directory, keep=keep, **naming)
        except FileWriteError as exc:
            self._checkpoint_write_failed = True
            previous = state.last_checkpoint_path
            intact = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
            raise exc.with_consequence(intact) from exc

    def _checkpoint_state(self, state: PolicyState) -> Dict:
        checkpoint = state.learner.checkpoint_state()
        checkpoint["train_seconds"] = self._train_seconds()
        return checkpoint

    def _save_checkpoint(self) -> None:
        for state in self.policies:
            path = self._write_checkpoint(state, checkpoint_dir(self.experiment_dir, state.policy_id),
                                          keep=int(self.cfg.keep_checkpoints))
            state.last_checkpoint_path = path
            state.last_saved_step = state.learner.train_step
            log.info("Saving %s...", path)

    def _maybe_save_best(self) -> None:
        for state in self.policies:
            self._maybe_save_policy_best(state)

    def _maybe_save_policy_best(self, state: PolicyState) -> None:
        cfg, episodes, learner = self.cfg, state.episodes, state.learner
        reward = episodes.mean_reward()
        if reward is None or learner.env_steps < cfg.save_best_after or len(episodes.rewards) < episodes.size:
            return
        if cfg.save_best_metric != "reward":
            values = episodes.extra.get(cfg.save_best_metric)
            if not values:
                return
            reward = float(np.mean(values))
        if reward > learner.best_performance + 1e-3:
            learner.best_performance = reward
            suffix = f"_{cfg.save_best_metric}_{reward:.3f}"
            self._write_checkpoint(state, checkpoint_dir(self.experiment_dir, state.policy_id), keep=1,
                                   name_prefix="best", suffix=suffix)
            log.info("Saving new best policy, %s=%.3f!", cfg.save_best_metric, reward)
