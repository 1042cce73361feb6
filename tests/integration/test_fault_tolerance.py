"""Nothing lost, nothing hung: training processes under faults, each checked end to end.

Every test runs training as its own process (``tests/fault_train.py``, i.e. ``python -m pysf.train`` with the
test envs registered) and checks the message, the exit status, which checkpoints remain, and that no process
of the run and no shared-memory file of it survives. The run's processes are found by a marker in their
environment, which every child inherits (an orphan's parent pid says nothing any more).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import List, Optional, Set, Tuple

import pytest

from pysf.algo.utils.checkpoints import CORRUPT_SUFFIX, checkpoint_dir, checkpoints

from helpers import TESTS_DIR

FAULT_TRAIN = Path(__file__).resolve().parent / "fault_train.py"
RUN_MARKER = "PYSF_FAULT_TEST_RUN"

# Small and quick: a tiny feed-forward model, few envs.
QUICK = ["--use_rnn=False", "--encoder_mlp_layers", "32", "32", "--batch_size=256", "--rollout=16",
         "--decorrelate_envs_on_one_worker=False"]
GYM_QUICK = QUICK + ["--num_workers=2", "--num_envs_per_worker=8", "--worker_num_splits=2"]


def _shm_entries() -> Set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def _pids_with_marker(marker: str) -> List[int]:
    pids = []
    needle = f"{RUN_MARKER}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    with open(f"/proc/{entry}/stat") as stat:
                        if stat.read().rsplit(")", 1)[1].split()[0] != "Z":  # zombies hold nothing
                            pids.append(int(entry))
        except OSError:
            continue
    return pids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent_pid(pid: int) -> Optional[int]:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _default_signal_actions() -> None:
    """In the child: Ctrl-C and SIGTERM act by default even when the tests run as a script's background job
    (which ignores SIGINT; an ignored signal stays ignored in children)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


class TrainingRun:
    """``tests/fault_train.py`` as a child process, its output collected line by line."""

    def __init__(self, train_dir: Path, *flags: str, env: str = "CartPole-v1", experiment: str = "exp",
                 prefix: Tuple[str, ...] = ()):
        self.marker = uuid.uuid4().hex
        self.experiment_dir = train_dir / experiment
        environment = dict(os.environ, **{RUN_MARKER: self.marker})
        environment["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), environment.get("PYTHONPATH", "")])
        cmd = [*prefix, sys.executable, str(FAULT_TRAIN), "--env", env, "--experiment", experiment,
               "--train_dir", str(train_dir), "--seed", "1", *flags]
        self.lines: List[str] = []
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=environment, cwd=train_dir if train_dir.is_dir() else train_dir.parent,
                                        start_new_session=True, preexec_fn=_default_signal_actions)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def __str__(self) -> str:
        """The output without the periodic reports (for assertion messages)."""
        periodic = ("Fps is", "Avg episode reward", "Saving new best policy")
        return "".join(line for line in self.lines if not any(p in line for p in periodic))

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        """Read output until a line contains ``text``."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen within {timeout} s; output:\n{self.output}")

    def finish(self, timeout: float = 120.0) -> int:
        """Wait for the exit; returns the exit status."""
        try:
            rest, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            rest, _ = self.process.communicate()
            self.lines.append(rest)
            raise AssertionError(f"the run did not end within {timeout} s; output:\n{self.output}")
        self.lines.append(rest)
        return self.process.returncode

    def worker_pids(self) -> List[int]:
        """Processes the trainer started (env workers, the env-info process): the children of its forkserver,
        or spawned ones; not the forkserver itself or multiprocessing's resource tracker."""
        def forked_by_a_forkserver(pid: int) -> bool:  # a forkserver's children run its command line too
            parent = _parent_pid(pid)
            return parent is not None and b"forkserver" in _cmdline(parent)

        return [pid for pid in _pids_with_marker(self.marker)
                if forked_by_a_forkserver(pid) or b"spawn_main" in _cmdline(pid)]

    def signal_group(self, signum: int) -> None:
        """What a terminal's Ctrl-C (or `timeout`, Slurm) does: the signal to every process of the group."""
        os.killpg(self.process.pid, signum)

    def assert_nothing_survives(self, within: float = 10.0) -> None:
        deadline = time.time() + within
        while _pids_with_marker(self.marker) and time.time() < deadline:
            time.sleep(0.1)
        assert not _pids_with_marker(self.marker), f"processes of the run survive; output:\n{self.output}"


@pytest.fixture
def clean_shm():
    """No shared-memory file created during the test survives it."""
    before = _shm_entries()
    yield
    _assert_no_shm_left_since(before)


def _shm_in_use() -> Set[str]:
    """The /dev/shm entries some live process maps or holds open (this run's or another's: other tests of a
    parallel session create their own). Matched by inode: a POSIX semaphore is mapped under the temporary name
    glibc created it with (shown as deleted), then linked to its final name."""
    inodes = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/maps") as maps:
                inodes.update(int(line.split()[4]) for line in maps if "/dev/shm/" in line)
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}").startswith("/dev/shm/"):
                    inodes.add(os.stat(f"/proc/{entry}/fd/{fd}").st_ino)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    in_use = set()
    for name in _shm_entries():
        try:
            if os.stat(f"/dev/shm/{name}").st_ino in inodes:
                in_use.add(name)
        except OSError:
            continue
    return in_use


def _assert_no_shm_left_since(before: Set[str]) -> None:
    """Every shared-memory file created since ``before`` is gone, or still used by a live process (which then
    owns its removal). One that nothing uses must disappear within a few seconds (a resource tracker's clean-up)."""
    deadline = time.time() + 5
    while True:
        new = {name for name in _shm_entries() - before if name.startswith(("torch_", "sem.mp", "psm_", "mp-"))}
        leaked = new - _shm_in_use() if new else set()
        if not leaked:
            return
        if time.time() > deadline:
            raise AssertionError(f"shared memory left behind: {sorted(leaked)}")
        time.sleep(0.2)


def _wait_for_workers(run: TrainingRun, count: int, timeout: float = 60.0) -> List[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = run.worker_pids()
        if len(pids) >= count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{count} worker processes did not appear; output:\n{run.output}")


def _corrupt(path: str) -> None:
    Path(path).write_bytes(Path(path).read_bytes()[:100])  # truncated, as by a crash or a full disk


# ---- 1. checkpoints ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A train_dir holding one finished run's experiment ``exp`` (several checkpoints); tests resume copies."""
    train_dir = tmp_path_factory.mktemp("finished")
    shm_before = _shm_entries()
    run = TrainingRun(train_dir, *QUICK, "--train_for_env_steps=20000", "--save_every_sec=1")
    assert run.finish() == 0, str(run)
    run.assert_nothing_survives()
    _assert_no_shm_left_since(shm_before)
    return train_dir


def _copy_of(finished_run: Path, tmp_path: Path) -> Path:
    """The finished run's experiment folder copied to ``tmp_path/exp``, to be resumed there."""
    shutil.copytree(finished_run / "exp", tmp_path / "exp")
    return tmp_path / "exp"


def test_unreadable_checkpoints_are_kept_and_stop_the_resume(finished_run, tmp_path, clean_shm):
    directory = checkpoint_dir(str(_copy_of(finished_run, tmp_path)))
    written = checkpoints(directory)
    assert written
    for path in written:
        _corrupt(path)

    resumed = TrainingRun(tmp_path, *QUICK, "--train_for_env_steps=40000")
    assert resumed.finish() == 1, str(resumed)
    assert "No readable checkpoint in" in resumed.output and "--restart_behavior=restart" in resumed.output
    assert "Traceback" not in resumed.output
    # Nothing deleted, nothing trained over: the unreadable files are kept aside.
    assert checkpoints(directory) == []
    assert sorted(glob.glob(os.path.join(directory, f"*{CORRUPT_SUFFIX}"))) == [p + CORRUPT_SUFFIX for p in written]
    again = TrainingRun(tmp_path, *QUICK, "--train_for_env_steps=40000")  # the next attempt does not start over either
    assert again.finish() == 1 and "No readable checkpoint in" in again.output
    again.assert_nothing_survives()


def test_a_corrupt_newer_checkpoint_does_not_delete_the_new_one(finished_run, tmp_path, clean_shm):
    experiment_dir = _copy_of(finished_run, tmp_path)
    directory = checkpoint_dir(str(experiment_dir))
    good = checkpoints(directory)[-1]
    bogus = os.path.join(directory, "checkpoint_999999999_99999999999.pth")
    Path(bogus).write_bytes(b"not a checkpoint")

    resumed = TrainingRun(tmp_path, *QUICK, "--train_for_env_steps=40000", "--keep_checkpoints=1")
    assert resumed.finish() == 0, str(resumed)
    assert f"Loading checkpoint {good}" in resumed.output
    assert "is corrupt or incomplete" in resumed.output
    remaining = checkpoints(directory)
    result = json.loads((experiment_dir / "result.json").read_text())
    assert remaining == [result["checkpoint"]] and os.path.exists(result["checkpoint"])  # the Result: file exists
    assert os.path.exists(bogus + CORRUPT_SUFFIX)
    resumed.assert_nothing_survives()


# ---- 2. one run per experiment folder; SIGTERM -------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_in_the_same_folder_stops_and_sigterm_saves(tmp_path, clean_shm):
    running = TrainingRun(tmp_path, *QUICK, "--train_for_seconds=120", "--train_for_env_steps=10000000000",
                          "--save_every_sec=1000")
    running.wait_for("Fps is")
    config_before = (running.experiment_dir / "config.json").read_bytes()
    # Suspended (as by Ctrl-Z) while the others try: it still holds the folder, and leaves them the CPU.
    running.signal_group(signal.SIGSTOP)
    try:
        for behavior in ("resume", "overwrite", "restart"):
            second = TrainingRun(tmp_path, *QUICK, f"--restart_behavior={behavior}", "--train_for_env_steps=20000")
            assert second.finish(timeout=60) == 1, str(second)
            assert f"is in use by another run (pid {running.process.pid} on" in second.output
            assert "Traceback" not in second.output
    finally:
        running.signal_group(signal.SIGCONT)
    assert (running.experiment_dir / "config.json").read_bytes() == config_before
    assert not glob.glob(str(tmp_path / "exp_old*"))

    running.process.send_signal(signal.SIGTERM)  # as `timeout`, `docker stop` or a cluster's preemption
    assert running.finish(timeout=60) == 2, str(running)
    assert "SIGTERM: saving a checkpoint and stopping" in running.output
    saved = checkpoints(checkpoint_dir(str(running.experiment_dir)))
    assert saved and "Result (interrupted)" in running.output
    result = json.loads((running.experiment_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["checkpoint"] == saved[-1]
    running.assert_nothing_survives()


# ---- 3. disk full -----------------------------------------------------------------------------------------


def _small_filesystem_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _small_filesystem_available(), reason="needs unshare with user namespaces (a small tmpfs)")
def test_a_full_disk_ends_the_run_with_one_line_and_keeps_the_last_checkpoint(tmp_path, clean_shm):
    train_dir = tmp_path / "small_disk"
    train_dir.mkdir()
    # A private 1 MiB filesystem (user + mount namespace) with room for the config, the logs and a checkpoint;
    # once the first checkpoint is there, a file fills it while the run goes on.
    fill_when_saved = (f"while ! ls {train_dir}/exp/checkpoint_p0/*.pth >/dev/null 2>&1; do sleep 0.1; done; "
                       f"cat /dev/zero > {train_dir}/filler 2>/dev/null")
    script = f"mount -t tmpfs -o size=1m tmpfs {train_dir} && ( {fill_when_saved} ) & exec \"$@\""
    run = TrainingRun(train_dir, *QUICK, "--train_for_seconds=60", "--train_for_env_steps=10000000000",
                      "--save_every_sec=1", "--keep_checkpoints=1", prefix=("unshare", "-rm", "sh", "-c", script, "sh"))
    assert run.finish(timeout=60) == 1, str(run)
    output = run.output
    assert "Training failed: No space left on device (the disk or quota is full) while writing checkpoint" in output
    assert "the previous checkpoint" in output and "is intact" in output
    assert "Traceback" not in output and "enforce fail" not in output
    assert "Result (training FAILED" in output
    run.assert_nothing_survives()


# ---- 4. stuck env workers ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", ["hung_env", "frozen_process"])
def test_a_stuck_env_worker_is_named_killed_and_the_run_ends(tmp_path, clean_shm, how):
    env = "faulty_env_hang" if how == "hung_env" else "counting_env"
    run = TrainingRun(tmp_path, *GYM_QUICK, "--heartbeat_interval=1", "--heartbeat_reporting_interval=3",
                      "--train_for_seconds=120", "--train_for_env_steps=10000000000", env=env)
    run.wait_for("Fps is")
    if how == "frozen_process":
        os.kill(run.worker_pids()[0], signal.SIGSTOP)
    start = time.time()
    assert run.finish(timeout=60) == 1, str(run)
    output = run.output
    assert time.time() - start < 30
    # Frozen while still starting (a loaded machine: "Fps is" comes before every worker is up) is caught too.
    detected = "made no progress for" in output or "did not finish starting within" in output
    assert detected and "--heartbeat_reporting_interval=3" in output, output[-3000:]
    assert "Killing stuck pysf-env-worker-" in output, output[-3000:]
    if how == "hung_env":
        assert "sampler_test_envs.py" in output and "in _fail" in output  # where it hangs: the env's own code
    assert checkpoints(checkpoint_dir(str(run.experiment_dir)))  # the final checkpoint of the run
    run.assert_nothing_survives()


# ---- 5. workers die with the trainer ------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["warm_up", "hung_env"])
def test_killing_the_trainer_leaves_no_worker_behind(tmp_path, clean_shm, phase):
    if phase == "warm_up":  # a long decorrelation warm-up: rollout * (64 envs) random steps per env
        flags = [*QUICK[:-1], "--num_workers=2", "--num_envs_per_worker=64", "--rollout=256",
                 "--decorrelate_envs_on_one_worker=True"]
        env = "counting_env"
    else:
        flags = GYM_QUICK
        env = "faulty_env_hang"
    run = TrainingRun(tmp_path, *flags, "--train_for_seconds=120", "--heartbeat_reporting_interval=0", env=env)
    _wait_for_workers(run, 2)
    time.sleep(3.0)  # inside the warm-up, or with env 5 hung
    run.process.kill()
    run.finish()
    run.assert_nothing_survives(within=3.0)


# ---- 6. Ctrl-C during start-up -------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["env_info", "workers_starting"])
def test_ctrl_c_during_start_up_is_an_interruption(tmp_path, clean_shm, moment):
    run = TrainingRun(tmp_path, *GYM_QUICK, "--train_for_seconds=120", env="counting_env")
    _wait_for_workers(run, 1 if moment == "env_info" else 2)  # the env-info process, then the env workers
    # Past the milliseconds of Process.start() itself, during which a Ctrl-C that another thread of the trainer
    # takes is lost (multiprocessing_utils.start_child_process); the child is still importing torch for seconds.
    time.sleep(0.3)
    run.signal_group(signal.SIGINT)  # a terminal sends Ctrl-C to every process of the group
    assert run.finish(timeout=60) == 2, str(run)
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output
    assert "Interrupted" in run.output or "SIGINT (Ctrl-C): saving a checkpoint" in run.output
    run.assert_nothing_survives()


# ---- 7. env outputs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("none_reward", "returned a reward of type NoneType; rewards must be real scalars"),
        ("complex_obs", "returned an observation 'obs' of dtype complex64; observations must hold real numbers"),
        ("raise", "RuntimeError: FaultyOutputEnv 1: velocity diverged at dt=0.1"),
    ],
)
def test_a_bad_env_output_ends_the_run_with_a_message_naming_the_env(tmp_path, clean_shm, fault, expected):
    run = TrainingRun(tmp_path, *GYM_QUICK, "--train_for_seconds=120", env=f"faulty_output__{fault}")
    assert run.finish(timeout=90) == 1, str(run)
    assert "Training failed: " in run.output and expected in run.output, str(run)
    assert "(worker 0, env_id 1)" in run.output
    if fault == "raise":  # the env's own frames, not the worker's
        assert "in _integrate_velocity" in run.output and "rollout_worker.py" not in run.output
    assert "ComplexWarning" not in run.output
    assert checkpoints(checkpoint_dir(str(run.experiment_dir)))  # what was trained is saved
    run.assert_nothing_survives()


# ---- 8. start-up errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, expected",
    [
        ("train_dir_is_a_file", "Cannot create the experiment folder"),
        ("text_action_space", "Text"),
    ],
)
def test_start_up_errors_are_one_message_and_status_1(tmp_path, clean_shm, case, expected):
    if case == "train_dir_is_a_file":
        blocker = tmp_path / "file"
        blocker.write_text("")
        run = TrainingRun(blocker, *QUICK)  # --train_dir=<a file>
        run.process.wait()
    else:
        run = TrainingRun(tmp_path, *QUICK, env="text_action_env")
    assert run.finish() == 1, str(run)
    errors = [line for line in run.lines if "[" in line and expected in line]
    assert errors, str(run)
    assert "Traceback" not in run.output
    assert "Result:" not in run.output
    run.assert_nothing_survives()


def test_summaries_whose_writer_thread_died_are_dropped_not_waited_for(caplog):
    """tensorboardX's writer thread dies when a write fails; its bounded queue would then block the run."""
    import threading
    from types import SimpleNamespace

    from pysf.algo.runners.runner import PolicyState, Runner
    from pysf.train import parse_train_args

    runner = Runner(parse_train_args(["--env=CartPole-v1", "--experiment=unused"]))
    runner.policies.append(PolicyState(0, learner=None, stats_avg=10))  # what init() would have set up
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    runner.writer = SimpleNamespace(file_writer=SimpleNamespace(event_writer=SimpleNamespace(_worker=dead)))
    runner._write_summaries()  # would call add_scalar on the fake writer (AttributeError) if it were still used
    assert runner.writer is None and "TensorBoard summaries stopped" in caplog.text
