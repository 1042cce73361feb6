"""The native sampling engine: exactly-once trajectories, reproducibility, faults and shutdown."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest
import torch

from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.env_utils import register_env

from helpers import sampler_test_envs
from helpers.sampling import alive_env_workers, check_counting_trajectories, collect_from_every_env, small_cfg

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def test_python_path_every_transition_exactly_once():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env")
    with SyncSamplingAPI(cfg) as sampling:
        assert not sampling.env_info.native
        batches = collect_from_every_env(sampling, 8)
        time.sleep(0.2)
        stats = sampling.episode_stats()
    check_counting_trajectories(batches, cfg)
    assert stats and all(s.length == 4 + s.env_id % 5 for s in stats)
    assert all(s.reward == float(s.length) for s in stats)
    assert all("last_counter" in s.extra_stats for s in stats)


@pytest.mark.parametrize("num_workers", [1, 2])
def test_python_path_synchronous_sampling_does_not_deadlock(num_workers):
    """One block per split (``--async_rl False``): a worker's split that completed its block must not stop
    the sampler from finishing the worker's other splits, whose blocks the consumer waits for."""
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", async_rl=False, num_workers=num_workers, decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        batches = [sampling.get_trajectories_sync(timeout=20) for _ in range(4)]
    check_counting_trajectories(batches, cfg)
    counters = np.concatenate([b["obs"]["obs"].numpy()[:, :-1, 1].ravel() for b in batches])
    assert len(counters) == 4 * num_workers * cfg.num_envs_per_worker * cfg.rollout


def test_python_path_with_eager_python_inference():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", inference_backend="python", num_workers=1)
    with SyncSamplingAPI(cfg) as sampling:
        batches = collect_from_every_env(sampling, cfg.num_envs_per_worker)
    check_counting_trajectories(batches, cfg)


def test_native_cartpole_trajectories_are_consistent():
    cfg = small_cfg("CartPole-v1", num_envs_per_worker=64, num_workers=2, rollout=16)
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.native
        batches = [sampling.get_trajectories_sync() for _ in range(5)]
        stats = sampling.episode_stats()
    for batch in batches:
        obs = batch["obs"]["obs"]
        assert obs.shape == (2 * 64, 17, 4)  # one block per split: all 128 envs
        assert bool((batch["policy_id"] == 0).all())
        assert torch.isfinite(obs).all()
        assert set(batch["actions"].unique().tolist()) <= {0.0, 1.0}
        assert bool((batch["policy_version"] == 0).all())
        # CartPole's reward is 1 every step; dones only where the pole fell or time ran out
        assert bool((batch["rewards"] == 1.0).all())
    assert stats and all(1 <= s.length <= 500 and s.reward == s.length for s in stats)


def native_run(seed: int):
    cfg = small_cfg("CartPole-v1", num_envs_per_worker=32, num_workers=2, async_rl=False, seed=seed)
    torch.manual_seed(seed)
    with SyncSamplingAPI(cfg, serial_inference_order=True) as sampling:
        return [sampling.get_trajectories_sync() for _ in range(3)]


def test_native_sync_sampling_is_reproducible():
    first, second, other = native_run(5), native_run(5), native_run(6)
    for a, b in zip(first, second):
        assert torch.equal(a["obs"]["obs"], b["obs"]["obs"])
        assert torch.equal(a["actions"], b["actions"])
        assert torch.equal(a["dones"], b["dones"])
    assert not torch.equal(first[0]["obs"]["obs"], other[0]["obs"]["obs"])


@pytest.mark.parametrize(
    "failure, expected",
    [
        ("raise", "raised RuntimeError: CountingEnv 5 exploded on purpose"),
        ("shape", "returned an observation 'obs' of shape (5,), expected (3,)"),
        ("nan", "returned a non-finite observation"),
        ("crash", "exited unexpectedly"),
    ],
)
def test_env_faults_end_with_a_clear_error(failure, expected):
    env_name = f"faulty_env_{failure}"
    register_env(env_name, sampler_test_envs.make_faulty_env)
    cfg = small_cfg(env_name)
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    start = time.monotonic()
    try:
        with pytest.raises(RuntimeError) as info:
            # The healthy worker may deliver blocks for a while before the faulty one has even started.
            while time.monotonic() - start < 30:  # generous: the spawned workers start slowly on a busy machine
                sampling.get_trajectories_sync(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        stop_start = time.monotonic()
        sampling.stop()
        stop_seconds = time.monotonic() - stop_start
    message = str(info.value)
    assert expected in message
    assert "worker 1" in message  # env_id 5 lives in worker 1 (4 envs per worker)
    if failure != "crash":
        assert env_name in message
    assert elapsed < 30 and stop_seconds < 5
    assert not alive_env_workers()


def test_stop_while_everything_is_blocked():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", async_rl=False)
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    # Nobody consumes: every split fills its only block and waits for a free one.
    time.sleep(1.5)
    start = time.monotonic()
    sampling.stop()
    assert time.monotonic() - start < 3
    assert not alive_env_workers()


@pytest.mark.parametrize("num_workers, pinned", [(2, True), (2, False), (1, True)])
def test_worker_processes_get_sample_factorys_cores_and_niceness(num_workers, pinned):
    import psutil

    from pysf.utils.utils import cores_for_worker_process

    all_cores = psutil.Process().cpu_affinity()
    cfg = small_cfg("CartPole-v1", env_backend="gym", num_workers=num_workers, set_workers_cpu_affinity=pinned, async_rl=False)
    with SyncSamplingAPI(cfg) as sampling:
        # With one block per split every worker has stepped its envs once a batch of all splits arrived.
        sampling.get_trajectories_sync(num_blocks=sampling.sampler.num_splits, timeout=30)
        workers = sorted(alive_env_workers(), key=lambda p: p.name)
        assert len(workers) == num_workers
        for index, worker in enumerate(workers):
            process = psutil.Process(worker.pid)
            cores = cores_for_worker_process(index, num_workers, len(all_cores)) if pinned else None
            expected = all_cores if cores is None else [all_cores[c] for c in cores]
            assert (process.cpu_affinity(), process.nice()) == (expected, 10 if num_workers > 1 else 0), worker.name
    assert psutil.Process().cpu_affinity() == all_cores and psutil.Process().nice() == 0


def test_cores_for_worker_process_follows_sample_factory():
    from pysf.utils.utils import cores_for_worker_process

    assert [cores_for_worker_process(i, 2, 2) for i in range(2)] == [[0], [1]]
    assert cores_for_worker_process(0, 1, 2) == [0, 1]  # one worker: both cores
    assert cores_for_worker_process(0, 3, 2) == [0] and cores_for_worker_process(2, 3, 2) == [0, 1]
    assert [cores_for_worker_process(i, 44, 20) for i in (0, 39)] == [[0], [19]]
    assert [cores_for_worker_process(i, 44, 20) for i in (40, 43)] == [[0, 1, 2, 3, 4], [15, 16, 17, 18, 19]]
    assert cores_for_worker_process(3, 3, 4) is None  # 3 workers do not divide 4 cores evenly


def test_hung_env_does_not_hang_shutdown():
    register_env("faulty_env_hang", sampler_test_envs.make_faulty_env)
    cfg = small_cfg("faulty_env_hang")
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    time.sleep(1.5)
    start = time.monotonic()
    sampling.stop()
    assert time.monotonic() - start < 10
    assert not alive_env_workers()


def test_release_twice_is_rejected():
    cfg = small_cfg("CartPole-v1")
    with SyncSamplingAPI(cfg) as sampling:
        blocks = sampling.sampler.get_trajectories(2, 30)
        sampling.sampler.release(blocks)
        with pytest.raises(ValueError, match="released twice"):
            sampling.sampler.release(blocks)


def test_invalid_geometry_is_explained():
    cfg = small_cfg("CartPole-v1", num_envs_per_worker=5, worker_num_splits=2)
    with pytest.raises(ValueError, match="multiple of --worker_num_splits"):
        SyncSamplingAPI(cfg)


def test_python_path_reports_plain_episodes_through_the_mailbox():
    # gymnasium's CartPole has no extra episode info: its episodes travel as mailbox records.
    cfg = small_cfg("CartPole-v1", env_backend="gym", num_envs_per_worker=8, rollout=16)
    with SyncSamplingAPI(cfg) as sampling:
        assert not sampling.env_info.native
        stats = []
        for _ in range(20):
            batch = sampling.get_trajectories_sync()
            assert bool((batch["policy_id"] == 0).all())
            stats += sampling.episode_stats()
            if len(stats) >= 10:
                break
    assert len(stats) >= 10
    num_envs = cfg.num_workers * cfg.num_envs_per_worker
    for s in stats:
        assert 0 <= s.env_id < num_envs
        assert 1 <= s.length <= 500 and s.reward == float(s.length)  # CartPole pays 1 per step
        assert s.extra_stats is None and s.true_objective is None


def test_killed_worker_is_detected_within_milliseconds():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env")
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    try:
        sampling.get_trajectories_sync(timeout=60)  # the workers run their loops
        # Nobody consumes now: the splits fill every block and their proxies wait for a free one, which
        # must not keep a death from being noticed.
        time.sleep(0.5)
        victim = sampling.sampler._processes[1]
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        while sampling.sampler._sampler.error is None and time.monotonic() - killed < 5:
            time.sleep(0.001)
        detected = time.monotonic() - killed
        with pytest.raises(RuntimeError, match="env worker 1 .*exited unexpectedly"):
            sampling.sampler.check()
    finally:
        sampling.stop()
    assert detected < 0.5, f"a dead worker was noticed after {detected:.3f} s"
    assert not alive_env_workers()


def test_stop_while_workers_are_still_starting():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env")
    sampling = SyncSamplingAPI(cfg)
    sampling.start()  # spawned interpreters need seconds to import torch: stop before they attach
    start = time.monotonic()
    sampling.stop()
    assert time.monotonic() - start < 2
    assert not alive_env_workers()


def test_serial_mode_runs_env_workers_as_threads():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", serial_mode=True)
    before = len(multiprocessing.active_children())
    with SyncSamplingAPI(cfg) as sampling:
        batches = collect_from_every_env(sampling, 8)
        assert len(multiprocessing.active_children()) == before  # no worker processes
    check_counting_trajectories(batches, cfg)


def test_native_sampler_config_rejects_unknown_settings():
    """A misspelt setting must not be ignored silently (missing ones keep the C++ defaults)."""
    from gymnasium import spaces

    from pysf import _C
    from pysf.algo.sampling.buffers import allocate_trajectory_buffers, native_buffers_dict

    buffers = allocate_trajectory_buffers(
        spaces.Dict(obs=spaces.Box(-1, 1, (2,))), spaces.Discrete(2), 4, rollout=4, num_blocks=2, block_rows=2,
        shared_memory=False,
    )
    with pytest.raises(KeyError, match="unknown setting 'worker_num_split'"):
        _C.Sampler({"worker_num_split": 1}, native_buffers_dict(buffers, 2), lambda *args: None)
    _C.Sampler({"worker_num_splits": 1}, native_buffers_dict(buffers, 2), lambda *args: None)


def test_native_sampler_runs_each_rows_policy():
    """Several policies (a list): env e acts for policy e % 2, through the eager Python runner; each row's actions,
    policy id and weights version are its own policy's, also where one split holds rows of both."""
    from gymnasium import spaces

    from pysf import _C
    from pysf.algo.sampling.buffers import allocate_trajectory_buffers, block_row_index, native_buffers_dict

    def constant_policy(action: int, version: int):
        def forward(obs, rnn_states, deterministic):
            rows = rnn_states.shape[0]
            outputs = dict(actions=torch.full((rows,), action, dtype=torch.int64), action_logits=torch.zeros(rows, 2),
                           log_prob_actions=torch.zeros(rows), values=torch.zeros(rows), new_rnn_states=rnn_states)
            return outputs, version
        return forward

    block_rows, rollout = 2, 8
    buffers = allocate_trajectory_buffers(spaces.Dict(obs=spaces.Box(-np.inf, np.inf, (4,))), spaces.Discrete(2), 1,
                                          rollout=rollout, num_blocks=4, block_rows=block_rows, shared_memory=False)
    config = dict(native_env_name="CartPole-v1", num_native_workers=1, envs_per_native_worker=4, worker_num_splits=2)
    sampler = _C.Sampler(config, native_buffers_dict(buffers, block_rows), [constant_policy(0, 10), constant_policy(1, 11)])
    sampler.start()
    try:
        blocks = sampler.get_trajectories(2, 30.0)
        assert len(blocks) == 2
        rows = block_row_index(blocks, block_rows)
        policy_ids, versions = buffers["policy_id"][rows], buffers["policy_version"][rows]
        actions = buffers["actions"][rows].reshape(len(rows), rollout)
        assert torch.equal(policy_ids[:, 0], torch.tensor([0, 1, 0, 1], dtype=torch.int32))
        for row in range(len(rows)):
            policy = int(policy_ids[row, 0])
            assert torch.all(policy_ids[row] == policy) and torch.all(versions[row] == 10 + policy)
            assert torch.all(actions[row] == policy)
        sampler.release(blocks)
    finally:
        sampler.stop()
