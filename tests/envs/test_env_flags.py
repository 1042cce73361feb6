"""Sample Factory's env-related flags that change how pysf's env workers run envs."""

from __future__ import annotations

import pytest

from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.envs.env_utils import register_env
from pysf.train import parse_train_args

from helpers.sampler_test_envs import make_thread_reporting_env


@pytest.fixture(autouse=True)
def thread_reporting_env(fresh_context):  # tests/conftest.py
    register_env("thread_reporting", make_thread_reporting_env)


def train(tmp_path, *flags: str) -> Runner:
    argv = ["--env", "thread_reporting", "--experiment", "x", "--train_dir", str(tmp_path), "--num_workers", "1",
            "--num_envs_per_worker", "2", "--batch_size", "128", "--rollout", "16", "--use_rnn", "False",
            "--train_for_env_steps", "2048", "--decorrelate_envs_on_one_worker", "False", *flags]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS and runner.run() == ExperimentStatus.SUCCESS
    return runner


def test_force_envs_single_thread_limits_the_workers_thread_pools(tmp_path):
    pytest.importorskip("threadpoolctl")
    limited = train(tmp_path, "--force_envs_single_thread", "True")
    assert set(limited.episodes.extra["pool_threads"]) == {1.0}


def test_episode_counter_numbers_each_envs_episodes(tmp_path):
    # 2 envs, ~100 episodes of 21 steps: the sampler runs ahead of the learner, so how many episodes end before
    # the run stops varies; the window (--stats_avg) holds them all, so that every number can be checked.
    runner = train(tmp_path, "--episode_counter", "True", "--stats_avg", "1000")
    numbers = sorted(int(n) for n in runner.episodes.extra["episode_number"])
    assert len(numbers) == runner.episodes.total_episodes >= 90
    # each env numbers its own episodes 0, 1, 2, ...: every number n appears once per env that reached it
    counts = [numbers.count(n) for n in range(max(numbers) + 1)]
    assert counts[0] == 2 and all(a >= b for a, b in zip(counts, counts[1:])) and counts[-1] >= 1
    assert sum(counts) == len(numbers)


def test_without_force_envs_single_thread_pools_keep_their_threads(tmp_path):
    """The check above can fail: without the flag, some pool of a worker uses more than one thread."""
    import os

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU: every pool has one thread anyway")
    pytest.importorskip("threadpoolctl")
    assert max(train(tmp_path).episodes.extra["pool_threads"]) > 1.0
