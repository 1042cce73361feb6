"""enjoy follows Sample Factory's frame accounting and return value."""

from __future__ import annotations

import pytest

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.context import reset_global_context
from pysf.algo.utils.misc import ExperimentStatus
from pysf.enjoy import enjoy
from pysf.envs.env_utils import register_env
from pysf.train import parse_train_args

from helpers.sampler_test_envs import make_fixed_length_env

ENV = "fixed_length_1000"  # episodes of 1001 steps


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    reset_global_context()
    register_env(ENV, make_fixed_length_env)
    train_dir = tmp_path_factory.mktemp("enjoy")
    argv = ["--env", ENV, "--experiment", "fixed", "--train_dir", str(train_dir), "--train_for_env_steps", "1024",
            "--num_workers", "1", "--num_envs_per_worker", "2", "--batch_size", "256", "--use_rnn", "False",
            "--serial_mode", "True", "--decorrelate_envs_on_one_worker", "False"]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS and runner.run() == ExperimentStatus.SUCCESS
    yield train_dir
    reset_global_context()


def run_enjoy(train_dir, *flags):
    register_env(ENV, make_fixed_length_env)
    argv = ["--env", ENV, "--experiment", "fixed", "--train_dir", str(train_dir), "--no_render", *flags]
    return enjoy(parse_train_args(argv, evaluation=True))


def test_the_episode_running_at_max_num_frames_is_finished(experiment):
    status, reward = run_enjoy(experiment, "--max_num_frames", "1000")
    assert status == ExperimentStatus.SUCCESS and reward == 1001.0


def test_max_num_episodes_stops_after_that_many(experiment, caplog):
    status, reward = run_enjoy(experiment, "--max_num_episodes", "2")
    assert reward == 1001.0
    assert "Num frames 2002..." in caplog.text


def test_no_finished_episode_gives_nan(experiment):
    import math

    status, reward = run_enjoy(experiment, "--max_num_frames", "10")
    assert status == ExperimentStatus.SUCCESS and math.isnan(reward)


def test_eval_frameskip_must_divide_the_training_frameskip(experiment):
    with pytest.raises(ValueError, match="multiple of --eval_env_frameskip"):
        run_enjoy(experiment, "--env_frameskip", "4", "--eval_env_frameskip", "3")


def test_push_to_hub_says_it_is_not_available(experiment):
    with pytest.raises(NotImplementedError, match="--push_to_hub is not available"):
        run_enjoy(experiment, "--push_to_hub", "--hf_repository", "me/repo")


def test_fast_eval_flags_say_they_are_not_available(experiment):
    with pytest.raises(NotImplementedError, match="fast parallel evaluation"):
        run_enjoy(experiment, "--sample_env_episodes", "16")


def test_best_kind_without_a_readable_best_points_to_the_regular_checkpoints(experiment, caplog):
    import os

    from pysf.algo.utils.checkpoints import checkpoint_dir, checkpoints

    directory = checkpoint_dir(str(experiment / "fixed"))
    regular = checkpoints(directory)[-1]
    status, _ = run_enjoy(experiment, "--load_checkpoint_kind", "best")  # none saved (too short a run)
    assert status == ExperimentStatus.FAILURE
    assert "No best checkpoint" in caplog.text and "--load_checkpoint_kind=latest" in caplog.text
    corrupt_best = os.path.join(directory, "best_000000001_256_reward_1.000.pth")
    with open(corrupt_best, "wb") as f:
        f.write(b"truncated")
    caplog.clear()
    status, _ = run_enjoy(experiment, "--load_checkpoint_kind", "best")
    assert status == ExperimentStatus.FAILURE
    assert f"{os.path.basename(regular)}: use --load_checkpoint_kind=latest" in caplog.text
    assert checkpoints(directory) == [regular]  # the regular one is untouched
    status, _ = run_enjoy(experiment, "--max_num_frames", "10")
    assert status == ExperimentStatus.SUCCESS


def test_a_native_two_player_game_is_evaluated_in_its_python_twin(tmp_path, caplog):
    """ConnectFour-v0 has no gymnasium env of its own: enjoy plays policy --policy_index of a two-policy self-play
    run in both seats of the Python reference (pysf.envs.connect_four), one episode per seat and game."""
    reset_global_context()
    argv = ["--env", "ConnectFour-v0", "--experiment", "c4", "--train_dir", str(tmp_path), "--num_policies", "2",
            "--train_for_env_steps", "20000", "--seed", "0"]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS and runner.run() == ExperimentStatus.SUCCESS
    caplog.set_level("INFO", logger="pysf")
    status, _ = enjoy(parse_train_args(argv[:6] + ["--no_render", "--policy_index", "1", "--max_num_episodes", "10"],
                                       evaluation=True))
    assert status == ExperimentStatus.SUCCESS
    assert "checkpoint_p1" in caplog.text and "Avg episode rewards: #0: " in caplog.text
