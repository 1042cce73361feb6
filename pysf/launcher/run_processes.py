"""Run a launcher description's experiments as local subprocesses (Sample Factory's
``sample_factory.launcher.run_processes``, ``--backend=processes``).

At most ``--max_parallel`` experiments run at once, ``--pause_between`` seconds apart. With
``--experiments_per_gpu=K`` (K > 0) each experiment is given one of ``--num_gpus`` GPUs through
``CUDA_VISIBLE_DEVICES``, the one with the most free slots (at most K experiments per GPU); with the default -1
``CUDA_VISIBLE_DEVICES`` is left as it is. The experiments' output goes to the launcher's console (and, for
pysf and Sample Factory scripts, to each experiment's ``sf_log.txt``).

Differences from Sample Factory, on purpose:

- :func:`run` returns a non-zero status when an experiment failed (1) or the launch was interrupted (2), and
  ends with a summary naming the failed experiments; Sample Factory returns 0 regardless.
- Commands are split like a shell would (``shlex``): repeated spaces do not produce empty arguments, and a
  quoted value may contain spaces.
- Each experiment runs in its own process group. Ctrl-C (or SIGTERM) on the launcher stops no new
  experiments and sends every running one a single SIGINT, i.e. what Ctrl-C in its own terminal would send
  (pysf and Sample Factory save a checkpoint and exit); those still running after
  :data:`STOP_GRACE_SECONDS` are terminated, and a second Ctrl-C kills them at once.
- When ``CUDA_VISIBLE_DEVICES`` is already set for the launcher, GPU ``i`` means the ``i``-th device it lists.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from os.path import join
from typing import Any, List, Mapping, Optional

from pysf.algo.utils.misc import ExperimentStatus
from pysf.utils.utils import ensure_dir_exists, log

__all__ = ["add_os_parallelism_args", "run", "STOP_GRACE_SECONDS"]

# How long interrupted experiments get to save a checkpoint and exit before they are terminated.
STOP_GRACE_SECONDS = 60.0
_TERMINATE_GRACE_SECONDS = 10.0
_POLL_INTERVAL_SECONDS = 0.1
_FAILED_REMINDER_INTERVAL_SECONDS = 30.0


def add_os_parallelism_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``--backend=processes`` flags (Sample Factory's names and defaults)."""
    parser.add_argument("--num_gpus", default=1, type=int, help="How many local GPUs to share among experiments")
    parser.add_argument("--max_parallel", default=4, type=int, help="Maximum number of experiments running at once")
    parser.add_argument(
        "--experiments_per_gpu",
        default=-1,
        type=int,
        help="Most experiments to run on one GPU. When > 0, each experiment gets one of --num_gpus GPUs through "
        "CUDA_VISIBLE_DEVICES (the least busy one). The default -1 leaves CUDA_VISIBLE_DEVICES alone, so every "
        "experiment sees all GPUs (e.g. for one big experiment that uses several).",
    )
    return parser


@dataclass
class _Launch:
    """One experiment of the run: what to start and, once started, its process."""

    index: int
    name: str
    cmd: str
    root_dir: str
    env_vars: Optional[Mapping[str, Any]]
    process: Optional[subprocess.Popen] = None
    gpu: Optional[int] = None
    start_time: float = 0.0
    end_time: float = 0.0
    stopped_by_launcher: bool = False  # interrupted because the launch was interrupted

    @property
    def succeeded(self) -> bool:
        return self.process is not None and self.process.returncode == 0

    @property
    def label(self) -> str:
        return f"{self.root_dir}/{self.name}"


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _visible_gpu_ids(num_gpus: int) -> List[str]:
    """The device id to put in ``CUDA_VISIBLE_DEVICES`` for each of the ``num_gpus`` GPU slots."""
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is None or not inherited.strip():
        return [str(gpu) for gpu in range(num_gpus)]
    devices = [device.strip() for device in inherited.split(",") if device.strip()]
    if num_gpus > len(devices):
        raise ValueError(
            f"--num_gpus={num_gpus} but the launcher's CUDA_VISIBLE_DEVICES={inherited!r} lists {len(devices)} "
            f"device(s): lower --num_gpus or widen CUDA_VISIBLE_DEVICES"
        )
    return devices[:num_gpus]


def _command_tokens(cmd: str) -> List[str]:
    try:
        tokens = shlex.split(cmd)
    except ValueError as exc:
        raise ValueError(f"Cannot split the command line {cmd!r}: {exc}") from None
    # Run Python commands with the launcher's own interpreter (e.g. the virtual env the launcher runs in).
    if tokens and tokens[0].startswith("python"):
        tokens[0] = sys.executable
    return tokens


def _check_args(args: argparse.Namespace) -> None:
    if args.max_parallel < 1:
        raise ValueError(f"--max_parallel must be at least 1, got {args.max_parallel}")
    if args.pause_between < 0:
        raise ValueError(f"--pause_between must be >= 0 seconds, got {args.pause_between}")
    if args.experiments_per_gpu > 0 and args.num_gpus < 1:
        raise ValueError(
            f"--experiments_per_gpu={args.experiments_per_gpu} assigns experiments to GPUs, so --num_gpus must be "
            f"at least 1 (got {args.num_gpus}); use --experiments_per_gpu=-1 to leave CUDA_VISIBLE_DEVICES alone"
        )


class _ProcessLauncher:
    """The scheduling loop of :func:`run`."""

    def __init__(self, launches: List[_Launch], args: argparse.Namespace):
        self.args = args
        self.pending = list(launches)
        self.running: List[_Launch] = []
        self.finished: List[_Launch] = []
        self.total = len(launches)
        self.assign_gpus = args.experiments_per_gpu > 0
        self.gpu_ids = _visible_gpu_ids(args.num_gpus) if self.assign_gpus else []
        self.next_start_time = 0.0

    # ---- GPU slots --------------------------------------------------------------------------------------

    def _least_busy_gpu(self) -> Optional[int]:
        """The GPU with the most free slots (the lowest index among equals), or None when all are full."""
        best_gpu, best_free = None, 0
        for gpu in range(len(self.gpu_ids)):
            free = self.args.experiments_per_gpu - sum(1 for launch in self.running if launch.gpu == gpu)
            if free > best_free:
                best_gpu, best_free = gpu, free
        return best_gpu

    def _can_start_another(self) -> bool:
        if not self.pending or len(self.running) >= self.args.max_parallel:
            return False
        if time.monotonic() < self.next_start_time:
            return False
        return not self.assign_gpus or self._least_busy_gpu() is not None

    # ---- starting and reaping ---------------------------------------------------------------------------

    def _start(self, launch: _Launch) -> None:
        ensure_dir_exists(join(self.args.train_dir, launch.root_dir))
        env = os.environ.copy()
        if self.assign_gpus:
            launch.gpu = self._least_busy_gpu()
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_ids[launch.gpu]
        for key, value in (launch.env_vars or {}).items():
            env[str(key)] = str(value)

        tokens = _command_tokens(launch.cmd)
        gpu_note = f" on GPU {self.gpu_ids[launch.gpu]}" if launch.gpu is not None else ""
        log.info("Starting experiment %d/%d %s%s: %s", launch.index + 1, self.total, launch.name, gpu_note, launch.cmd)
        if launch.env_vars:
            log.info("  with environment variables %r", dict(launch.env_vars))
        launch.start_time = time.monotonic()
        try:
            # Own process group: a terminal Ctrl-C reaches the launcher only, which forwards one SIGINT.
            launch.process = subprocess.Popen(tokens, env=env, start_new_session=True)
        except OSError as exc:
            log.error("Could not start experiment %s (%s): %s", launch.name, tokens[0] if tokens else "", exc)
            launch.end_time = launch.start_time
            self.finished.append(launch)
            return
        self.running.append(launch)
        self.next_start_time = time.monotonic() + self.args.pause_between

    def _reap(self) -> None:
        still_running = []
        for launch in self.running:
            if launch.process.poll() is None:
                still_running.append(launch)
                continue
            launch.end_time = time.monotonic()
            self.finished.append(launch)
            code = launch.process.returncode
            seconds = launch.end_time - launch.start_time
            if code == 0:
                log.info("Experiment %s finished (exit code 0) after %.1f s", launch.name, seconds)
            elif launch.stopped_by_launcher:
                log.warning("Experiment %s stopped: %s after %.1f s", launch.name, _exit_description(code), seconds)
            else:
                log.error("Experiment %s FAILED: %s after %.1f s", launch.name, _exit_description(code), seconds)
        self.running = still_running

    def failed(self) -> List[_Launch]:
        """Experiments that did not start or ended with a non-zero status on their own."""
        return [launch for launch in self.finished if not launch.succeeded and not launch.stopped_by_launcher]

    def loop(self) -> None:
        last_reminder = time.monotonic()
        while self.pending or self.running:
            while self._can_start_another():
                self._start(self.pending.pop(0))
            self._reap()
            failed = self.failed()
            if failed and time.monotonic() - last_reminder > _FAILED_REMINDER_INTERVAL_SECONDS:
                log.error("Failed so far: %s", ", ".join(launch.name for launch in failed))
                last_reminder = time.monotonic()
            time.sleep(_POLL_INTERVAL_SECONDS)

    # ---- stopping ---------------------------------------------------------------------------------------

    def _signal_running(self, sig: signal.Signals) -> None:
        for launch in self.running:
            launch.stopped_by_launcher = True
            try:
                os.killpg(launch.process.pid, sig)
            except ProcessLookupError:  # exited in the meantime
                pass

    def _wait_running(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            self._reap()
            time.sleep(_POLL_INTERVAL_SECONDS)
        self._reap()

    def stop(self) -> None:
        """Interrupt the running experiments, then terminate or kill those that do not exit in time."""
        if self.pending:
            log.warning("Not starting the %d remaining experiment(s)", len(self.pending))
            self.pending = []
        if not self.running:
            return
        log.warning(
            "Interrupting %d running experiment(s) (they get %.0f s to save and exit; Ctrl-C again kills them)",
            len(self.running), STOP_GRACE_SECONDS,
        )
        try:
            self._signal_running(signal.SIGINT)
            self._wait_running(STOP_GRACE_SECONDS)
            if self.running:
                log.warning("Terminating %d experiment(s) that did not exit in time", len(self.running))
                self._signal_running(signal.SIGTERM)
                self._wait_running(_TERMINATE_GRACE_SECONDS)
        except KeyboardInterrupt:
            pass
        if self.running:
            log.warning("Killing %d experiment(s)", len(self.running))
            self._signal_running(signal.SIGKILL)
            for launch in self.running:
                launch.process.wait()
            self._reap()

    def report(self, interrupted: bool) -> int:
        failed = self.failed()
        succeeded = sum(1 for launch in self.finished if launch.succeeded)
        stopped = [launch for launch in self.finished if launch.stopped_by_launcher and not launch.succeeded]
        not_started = self.total - len(self.finished)
        summary = f"{self.total} experiment(s): {succeeded} succeeded, {len(failed)} failed"
        if stopped:
            summary += f", {len(stopped)} interrupted"
        if not_started:
            summary += f", {not_started} not started"
        if failed:
            details = ", ".join(
                f"{launch.label} ({'did not start' if launch.process is None else _exit_description(launch.process.returncode)})"
                for launch in failed
            )
            log.error("%s. Failed: %s", summary, details)
        else:
            log.info("%s", summary)
        if interrupted:
            return ExperimentStatus.INTERRUPTED
        return ExperimentStatus.FAILURE if failed else ExperimentStatus.SUCCESS


class _TerminateRequest(Exception):
    """SIGTERM on the launcher: stop the experiments the way Ctrl-C does."""


def run(run_description: Any, args: argparse.Namespace) -> int:
    """Run every experiment of ``run_description`` (a ``RunDescription``) as a subprocess.

    ``args`` needs ``train_dir``, ``pause_between`` and the flags of :func:`add_os_parallelism_args` (see
    :func:`pysf.launcher.run.launcher_argparser`). Blocks until all experiments have ended.

    Returns:
        0 when every experiment exited with status 0, 1 when one failed (the summary names them), 2 when the
        launch was interrupted (Ctrl-C / SIGTERM).

    Raises:
        ValueError: inconsistent flags (e.g. ``--max_parallel=0``) or a command line that cannot be split.
    """
    _check_args(args)
    launches = [
        _Launch(index, name, cmd, root_dir, env_vars)
        for index, (cmd, name, root_dir, env_vars) in enumerate(run_description.generate_experiments(args.train_dir))
    ]
    for launch in launches:
        _command_tokens(launch.cmd)  # a malformed command fails before anything starts
    if not launches:
        log.error("Run %r has no experiments: nothing to launch", run_description.run_name)
        return ExperimentStatus.FAILURE
    launcher = _ProcessLauncher(launches, args)

    log.info("Base commands: %r", [experiment.cmd for experiment in run_description.experiments])
    log.info("%d experiment(s), at most %d at once", len(launches), args.max_parallel)
    log.info(
        "Follow the experiments' logs with\n\n\ttail -f %s\n",
        join(args.train_dir, run_description.run_name, "*", "*", "sf_log.txt"),
    )

    def on_sigterm(signum: int, frame: Any) -> None:
        raise _TerminateRequest()

    # Signal handlers can only be installed from the main thread; elsewhere SIGTERM keeps its handler.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm) if in_main_thread else None
    interrupted = False
    try:
        launcher.loop()
    except (KeyboardInterrupt, _TerminateRequest) as exc:
        interrupted = True
        log.warning("%s: stopping the launch", "Interrupted" if isinstance(exc, KeyboardInterrupt) else "SIGTERM")
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # already stopping
        launcher.stop()
    except BaseException:
        launcher.stop()  # never leave experiments running behind an error
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return launcher.report(interrupted)
