"""End-to-end training: learning (seeded, bounded in env steps), resume, Ctrl-C, checkpoints, enjoy."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.checkpoints import checkpoint_dir, checkpoints, load_latest_checkpoint
from pysf.algo.utils.context import reset_global_context
from pysf.algo.utils.misc import ExperimentStatus
from pysf.enjoy import enjoy
from pysf.train import parse_train_args

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def train(tmp_path, *flags: str, env: str = "CartPole-v1", experiment: str = "exp") -> Runner:
    argv = ["--env", env, "--experiment", experiment, "--train_dir", str(tmp_path), "--seed", "1", *flags]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS
    runner.status = runner.run()
    return runner


@pytest.fixture(scope="module")
def solved_cartpole(tmp_path_factory):
    """One CartPole training run shared by the learning, checkpoint and enjoy tests."""
    train_dir = tmp_path_factory.mktemp("cartpole")
    reset_global_context()
    runner = train(train_dir, "--train_for_env_steps", "1000000")
    return train_dir, runner


def test_cartpole_native_reaches_475_within_1m_env_steps(solved_cartpole):
    _, runner = solved_cartpole
    assert runner.status == ExperimentStatus.SUCCESS
    assert runner.learner.env_steps >= 1_000_000
    assert runner.threshold_reached is not None, f"best 100-episode mean {runner.best_mean_reward:.1f} < 475"
    env_steps, seconds = runner.threshold_reached
    assert env_steps <= 1_000_000


def test_result_json_reports_the_runs_figures_and_learning_curve(solved_cartpole):
    train_dir, runner = solved_cartpole
    result = json.loads((train_dir / "exp" / "result.json").read_text())
    assert result["env_steps"] == runner.learner.env_steps and result["steady_state_fps"] > 0
    assert result["threshold_env_steps"] == runner.threshold_reached[0]
    curve = result["learning_curve"]
    seconds, steps, rewards = zip(*curve)
    assert len(curve) >= 10
    assert list(seconds) == sorted(seconds) and list(steps) == sorted(steps) and steps[-1] <= result["env_steps"]
    assert max(rewards) >= 475 and min(rewards) < 100  # from a random policy to a solved one


def test_experiment_folder_has_sample_factory_outputs(solved_cartpole):
    train_dir, runner = solved_cartpole
    exp = train_dir / "exp"
    config = json.loads((exp / "config.json").read_text())
    assert config["env"] == "CartPole-v1" and config["train_for_env_steps"] == 1000000
    assert (exp / "sf_log.txt").exists() and "Fps is (10 sec:" in (exp / "sf_log.txt").read_text()
    assert glob.glob(str(exp / ".summary" / "0" / "events.out.tfevents*"))
    names = [os.path.basename(p) for p in checkpoints(checkpoint_dir(str(exp)))]
    assert names and all(n.startswith("checkpoint_") and n.endswith(".pth") for n in names)
    assert len(names) <= runner.cfg.keep_checkpoints
    state = load_latest_checkpoint(checkpoint_dir(str(exp)))
    assert {"train_step", "env_steps", "best_performance", "model", "optimizer", "curr_lr"} <= set(state)
    assert "encoder.encoders.obs.mlp_head.0.weight" in state["model"]
    assert checkpoints(checkpoint_dir(str(exp)), "best"), "a best_* checkpoint is kept"


def test_enjoy_trained_cartpole(solved_cartpole):
    train_dir, _ = solved_cartpole
    argv = ["--env", "CartPole-v1", "--experiment", "exp", "--train_dir", str(train_dir), "--no_render",
            "--max_num_episodes", "3", "--eval_deterministic", "True"]
    status, reward = enjoy(parse_train_args(argv, evaluation=True))
    assert status == ExperimentStatus.SUCCESS
    assert reward >= 450


def test_enjoy_saves_a_video(solved_cartpole):
    pytest.importorskip("pygame")
    pytest.importorskip("imageio")
    train_dir, _ = solved_cartpole
    argv = ["--env", "CartPole-v1", "--experiment", "exp", "--train_dir", str(train_dir), "--save_video",
            "--max_num_frames", "60", "--video_name", "clip.mp4"]
    status, _ = enjoy(parse_train_args(argv, evaluation=True))
    assert status == ExperimentStatus.SUCCESS
    video = train_dir / "exp" / "clip.mp4"
    assert video.exists() and video.stat().st_size > 1000


def test_resume_continues_counters(solved_cartpole, tmp_path):
    first = train(tmp_path, "--train_for_env_steps", "100000")
    steps_before = first.learner.env_steps
    sgd_before = first.learner.train_step
    reward_before = first.episodes.mean_reward()
    second = train(tmp_path, "--train_for_env_steps", "200000")
    assert second.learner.env_steps >= 200000
    assert second.resumed_from == (sgd_before, steps_before)
    assert second.learner.train_step > sgd_before
    assert second.episodes.mean_reward() >= 0.5 * reward_before  # no collapse after resume


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    runner = train(tmp_path, "--train_for_env_steps", "30000")
    directory = checkpoint_dir(runner.experiment_dir)
    good = checkpoints(directory)[-1]
    corrupt = os.path.join(directory, "checkpoint_999999999_99999999.pth")
    Path(corrupt).write_bytes(b"not a checkpoint")
    state = load_latest_checkpoint(directory)
    assert state["_path"] == good
    assert "corrupt or incomplete" in caplog.text


def test_sync_mode_has_zero_policy_lag(tmp_path):
    runner = train(
        tmp_path, "--train_for_env_steps", "40000", "--async_rl", "False", "--num_epochs", "1",
        "--num_batches_per_epoch", "1", "--batch_size", "8192",  # = 2 workers x 128 envs x 32 steps
    )
    assert runner.max_version_diff == 0


def test_train_for_seconds_stops(tmp_path):
    start = time.time()
    runner = train(tmp_path, "--train_for_seconds", "4")
    assert runner.status == ExperimentStatus.SUCCESS
    assert time.time() - start < 60
    assert runner.learner.env_steps > 0


@pytest.mark.slow
def test_gymnasium_path_learns_cartpole(tmp_path):
    runner = train(
        tmp_path, "--env_backend", "gym", "--num_workers", "2", "--num_envs_per_worker", "32",
        "--batch_size", "2048", "--train_for_env_steps", "250000",
    )
    assert not runner.env_info.native
    assert runner.best_mean_reward >= 150


def test_gru_policy_learns_cartpole(tmp_path):
    runner = train(
        tmp_path, "--use_rnn", "True", "--rnn_type", "gru", "--rnn_size", "32", "--recurrence", "8",
        "--train_for_env_steps", "400000",
    )
    assert runner.best_mean_reward >= 150


@pytest.mark.slow
def test_pendulum_improves_over_random(tmp_path):
    runner = train(tmp_path, "--train_for_env_steps", "400000", env="Pendulum-v1")
    # A random policy averages about -1200 per episode; measured: a 100-episode mean of -243 by 385k steps.
    assert runner.best_mean_reward >= -700


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_with_status_2(tmp_path):
    cmd = [sys.executable, "-m", "pysf.train", "--env", "CartPole-v1", "--experiment", "sigint", "--train_dir", str(tmp_path)]
    # preexec_fn: Ctrl-C acts even when the tests run as a script's background job (which ignores SIGINT).
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            line = process.stdout.readline()
            if "Fps is" in line:
                break
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, output
    assert checkpoints(checkpoint_dir(str(tmp_path / "sigint")))


def test_dataset_not_a_whole_number_of_blocks_trains(tmp_path):
    """Sample Factory's documented CartPole command: 20 envs per worker (blocks of 10), batch 512."""
    runner = train(
        tmp_path, "--use_rnn=False", "--num_envs_per_worker=20", "--policy_workers_per_policy=2", "--recurrence=1",
        "--with_vtrace=False", "--batch_size=512", "--reward_scale=0.1", "--train_for_env_steps", "100000",
    )
    assert runner.status == ExperimentStatus.SUCCESS
    assert runner.learner.env_steps >= 100_000 and runner.learner.env_steps % 512 == 0
    assert runner.best_mean_reward > 30


def test_with_wandb_offline_records_the_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    runner = train(
        tmp_path, "--with_wandb", "True", "--wandb_dir", str(tmp_path / "wb"), "--train_for_env_steps", "20000",
        "--experiment_summaries_interval", "1",
    )
    assert runner.status == ExperimentStatus.SUCCESS
    runs = glob.glob(str(tmp_path / "wb" / "wandb" / "offline-run-*" / "*.wandb"))
    assert runs and os.path.getsize(runs[0]) > 0
    saved = json.loads((tmp_path / "exp" / "config.json").read_text())
    assert saved["wandb_unique_id"].startswith("exp_")


def test_milestones_are_saved_and_kept(tmp_path):
    runner = train(tmp_path, "--save_milestones_sec", "1", "--train_for_seconds", "4", "--train_for_env_steps", "10000000000")
    assert runner.status == ExperimentStatus.SUCCESS
    milestones = glob.glob(str(tmp_path / "exp" / "checkpoint_p0" / "milestones" / "checkpoint_*.pth"))
    assert len(milestones) >= 2  # none pruned (--keep_checkpoints applies to regular checkpoints only)


def test_algo_observer_and_episodic_stats_handler_are_called(tmp_path):
    from pysf.algo.runners.runner import AlgoObserver
    from pysf.train import make_runner

    calls = []

    class Recorder(AlgoObserver):
        def on_init(self, runner):
            calls.append("init")

        def on_start(self, runner):
            calls.append("start")

        def on_training_step(self, runner, training_iteration_since_resume):
            calls.append(("step", training_iteration_since_resume))

        def extra_summaries(self, runner, policy_id, writer, env_steps):  # Sample Factory's call order
            writer.add_scalar("custom/steps", env_steps, env_steps)
            calls.append("summaries")

        def on_stop(self, runner):
            calls.append("stop")

    episodes = []
    argv = ["--env", "CartPole-v1", "--experiment", "obs", "--train_dir", str(tmp_path), "--train_for_env_steps", "20000"]
    cfg, runner = make_runner(parse_train_args(argv))
    runner.register_observer(Recorder())
    runner.register_episodic_stats_handler(lambda r, msg, policy_id: episodes.append((msg["episodic"], policy_id)))
    with pytest.raises(NotImplementedError, match="register_episodic_stats_handler"):
        runner.register_msg_handler("my_key", lambda r, msg: None)
    assert runner.init() == ExperimentStatus.SUCCESS and runner.run() == ExperimentStatus.SUCCESS
    assert calls[:3] == ["init", "start", ("step", 1)] and calls[-1] == "summaries" and "stop" in calls
    assert episodes and all(policy_id == 0 and ep["len"] >= 1 and "reward" in ep for ep, policy_id in episodes)
