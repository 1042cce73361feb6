"""--decorrelate_envs_on_one_worker: random warm-up steps before the first rollout (Sample Factory's
``NonBatchedVectorEnvRunner._reset``), on the gymnasium and the native path."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from pysf import _C
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.env_utils import register_env

from helpers import sampler_test_envs
from helpers.sampling import alive_env_workers, check_counting_trajectories, collect_from_every_env, small_cfg


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def native_truncations_per_rollout(decorrelate: bool, rollouts: int = 7):
    """Native MountainCar-v0 (8 envs per worker, rollout 32): truncations in each of the first rollouts.

    Its episodes end by the 200-step TimeLimit (neither random warm-up actions nor an untrained policy
    reach the flag), so each env's first episode end tells how many steps it took before sampling.
    """
    cfg = small_cfg(
        "MountainCar-v0",
        num_envs_per_worker=8,
        rollout=32,
        async_rl=False,  # one block per split: batch j is rollout j of every env
        decorrelate_envs_on_one_worker=decorrelate,
    )
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.native
        counts = []
        for _ in range(rollouts):
            batch = sampling.get_trajectories_sync()
            counts.append(int(batch["time_outs"].sum()))
            assert int(batch["dones"].sum()) == counts[-1], "no episode reached the flag"
        time.sleep(0.2)
        stats = sampling.episode_stats()
    return counts, stats


def test_native_fixed_length_episodes_of_a_worker_end_in_different_rollouts():
    # Env k of a worker takes 32 * k warm-up steps: its episodes end at sampling steps
    # 200 - (32 * k) % 200 (+ 200 ...), i.e. in rollout 7, 6, 5, 4, 3, 2, 1 and 7, 6 for k = 0..7
    # (two workers).
    counts, stats = native_truncations_per_rollout(decorrelate=True)
    assert counts == [2, 2, 2, 2, 2, 4, 4]
    # The episode running when the warm-up ended is reported whole; the warm-up's own episodes not at all.
    assert len(stats) >= sum(counts)  # (sampling went on meanwhile)
    assert all(s.length == 200 and s.reward == -200.0 for s in stats)


def test_native_without_decorrelation_fixed_length_episodes_end_together():
    counts, stats = native_truncations_per_rollout(decorrelate=False)
    assert counts == [0, 0, 0, 0, 0, 0, 16]
    assert len(stats) >= 16 and all(s.length == 200 for s in stats)


def walk_trajectories(decorrelate: bool, seed: int = 1, **overrides):
    """WalkEnv (40-step episodes) on the gymnasium path, rollout 8, 4 envs per worker: per env id, its
    sampled steps as rows ``[counter, episode_step, position, done]`` in counter order, and the stats."""
    register_env("walk_env", sampler_test_envs.make_walk_env)
    cfg = small_cfg("walk_env", decorrelate_envs_on_one_worker=decorrelate, seed=seed, **overrides)
    with SyncSamplingAPI(cfg, deterministic=True) as sampling:  # argmax actions: a function of the obs
        batches = collect_from_every_env(sampling, cfg.num_workers * cfg.num_envs_per_worker, min_rows_per_env=6)
        time.sleep(0.2)
        stats = sampling.episode_stats()
    check_counting_trajectories(batches, cfg)
    steps = {}
    for batch in batches:
        obs, dones = batch["obs"]["obs"].numpy(), batch["dones"].numpy()
        for row in range(obs.shape[0]):
            env_id = int(obs[row, 0, 0])
            rows = np.column_stack([obs[row, :-1, 1:4], dones[row]])
            steps[env_id] = rows if env_id not in steps else np.concatenate([steps[env_id], rows])
    return {e: rows[np.argsort(rows[:, 0])] for e, rows in steps.items()}, stats, cfg


def first_episode_ends(steps):
    """Per env id: the sampling step (1-based) at which its first episode ended."""
    return {e: int(np.argmax(rows[:, 3])) + 1 for e, rows in sorted(steps.items())}


def test_gym_fixed_length_episodes_of_a_worker_end_at_different_steps():
    steps, stats, cfg = walk_trajectories(decorrelate=True)
    # Env k of a worker took 8 * k warm-up steps (none of which is in the trajectories): it starts
    # sampling 8 * k steps into an episode and ends it 40 - 8 * k steps later.
    for env_id, rows in steps.items():
        k = env_id % cfg.num_envs_per_worker
        assert rows[0, 0] == 8 * k and rows[0, 1] == 8 * k
    assert first_episode_ends(steps) == {e: 40 - 8 * (e % 4) for e in range(8)}
    # Reported episodes are whole: 40 steps, the warm-up part included.
    assert stats and all(s.length == 40 and s.reward == 40.0 for s in stats)


def test_gym_without_decorrelation_fixed_length_episodes_end_together():
    steps, stats, _ = walk_trajectories(decorrelate=False)
    assert all(rows[0, 0] == 0 and rows[0, 1] == 0 for rows in steps.values())
    assert first_episode_ends(steps) == {e: 40 for e in range(8)}
    assert stats and all(s.length == 40 for s in stats)


def test_seeded_gym_decorrelation_is_reproducible():
    first, _, _ = walk_trajectories(decorrelate=True, seed=3)
    second, _, _ = walk_trajectories(decorrelate=True, seed=3)
    other, _, _ = walk_trajectories(decorrelate=True, seed=4)
    # position: the sum of the warm-up's random actions (then of the deterministic policy's).
    start = {e: rows[0, 2] for e, rows in first.items()}
    assert start == {e: rows[0, 2] for e, rows in second.items()}
    assert start != {e: rows[0, 2] for e, rows in other.items()}
    assert any(value != 0 for value in start.values())


def test_warm_up_episodes_are_not_reported():
    # CountingEnv's counter counts every step the env ever took; its episodes are 4 + env_id % 5 steps.
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", num_workers=1)
    with SyncSamplingAPI(cfg) as sampling:
        batches = collect_from_every_env(sampling, cfg.num_envs_per_worker)
        time.sleep(0.2)
        stats = sampling.episode_stats()
    check_counting_trajectories(batches, cfg)  # env k starts sampling at counter rollout * k
    # The episode that straddles the start is reported whole; none that ended during the warm-up is.
    assert stats and all(s.length == 4 + s.env_id % 5 and s.reward == s.length for s in stats)
    assert all(s.extra_stats["last_counter"] > cfg.rollout * s.env_id for s in stats)
    assert {s.env_id for s in stats} == set(range(cfg.num_envs_per_worker))


def test_decorrelation_off_starts_every_env_at_counter_zero():
    register_env("counting_env", sampler_test_envs.make_counting_env)
    cfg = small_cfg("counting_env", num_workers=1, decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        batches = collect_from_every_env(sampling, cfg.num_envs_per_worker)
    check_counting_trajectories(batches, cfg)


def test_native_random_steps_continue_the_episode_and_its_time_limit():
    env = _C.NativeVectorEnv("MountainCar-v0", 3, 0)
    initial = env.reset()
    env.random_steps(1, 450, seed=7)  # two 200-step episodes, then 50 steps into the third
    env.random_steps(2, 0, seed=7)
    assert [env.elapsed_steps(i) for i in range(3)] == [0, 50, 0]
    obs = env.observe()
    assert torch.equal(obs[[0, 2]], initial[[0, 2]]) and not torch.equal(obs[1], initial[1])
    # The 150 steps left of the running episode end it, reported with its whole length and return.
    _, _, terminated, truncated, episode_return, episode_length = env.step(torch.zeros(3, dtype=torch.long))
    for _ in range(149):
        _, _, terminated, truncated, episode_return, episode_length = env.step(torch.zeros(3, dtype=torch.long))
    assert truncated.tolist() == [False, True, False] and not terminated.any()
    assert int(episode_length[1]) == 200 and float(episode_return[1]) == -200.0
    # Same seed, same warm-up.
    again = _C.NativeVectorEnv("MountainCar-v0", 3, 0)
    again.reset()
    again.random_steps(1, 450, seed=7)
    assert torch.equal(again.observe()[1], obs[1])
    with pytest.raises(ValueError, match="num_steps >= 0"):
        env.random_steps(0, -1)


def test_native_sampling_with_decorrelation_is_reproducible():
    def run(seed):
        cfg = small_cfg("CartPole-v1", num_envs_per_worker=32, num_workers=2, async_rl=False, seed=seed)
        assert cfg.decorrelate_envs_on_one_worker
        torch.manual_seed(seed)
        with SyncSamplingAPI(cfg, serial_inference_order=True) as sampling:
            return [sampling.get_trajectories_sync() for _ in range(2)]

    first, second = run(5), run(5)
    for a, b in zip(first, second):
        assert torch.equal(a["obs"]["obs"], b["obs"]["obs"])
        assert torch.equal(a["actions"], b["actions"])
    obs0 = first[0]["obs"]["obs"][:, 0]
    assert int((obs0.abs() >= 0.05).any(dim=1).sum()) > obs0.shape[0] // 2


def test_env_fault_during_decorrelation_names_env_and_worker():
    register_env("early_faulty_env", sampler_test_envs.make_early_faulty_env)
    cfg = small_cfg("early_faulty_env")
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    try:
        with pytest.raises(RuntimeError) as info:
            # The healthy worker may deliver blocks for a while before the faulty one has even started.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sampling.get_trajectories_sync(timeout=30)
    finally:
        start = time.monotonic()
        sampling.stop()
        stop_seconds = time.monotonic() - start
    message = str(info.value)
    assert "raised RuntimeError: CountingEnv 5 exploded on purpose" in message
    assert "worker 1" in message and "env_id 5" in message and "early_faulty_env" in message
    assert "decorrelation" in message
    assert stop_seconds < 5
    assert not alive_env_workers()


def test_stop_during_decorrelation_is_prompt(tmp_path):
    # 3 ms steps, rollout 256: the worker's warm-up takes 256 * (1 + ... + 7) steps, about 20 s.
    register_env("slow_env", sampler_test_envs.make_slow_env)
    marker = tmp_path / "stepping"
    cfg = small_cfg("slow_env", num_workers=1, rollout=256, num_envs_per_worker=8)
    cfg.slow_env_step_seconds = 0.003
    cfg.slow_env_marker = str(marker)
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:  # env 1 began its warm-up
            time.sleep(0.01)
        assert marker.exists()
    finally:
        start = time.monotonic()
        sampling.stop()
        stop_seconds = time.monotonic() - start
    assert sampling.sampler.samples_collected == 0, "stopped during the warm-up, before any sampling"
    assert stop_seconds < 2, f"stop took {stop_seconds:.2f} s during the decorrelation warm-up"
    assert not alive_env_workers()
    assert os.path.exists(marker)


def test_native_stop_during_decorrelation_is_prompt():
    # 4096 envs in one worker: 32 * (0 + 1 + ... + 4095) warm-up steps, seconds of work.
    cfg = small_cfg("CartPole-v1", num_workers=1, num_envs_per_worker=4096, rollout=32)
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    time.sleep(0.3)
    start = time.monotonic()
    sampling.stop()
    stop_seconds = time.monotonic() - start
    assert sampling.sampler.samples_collected == 0, "stopped during the warm-up, before any sampling"
    assert stop_seconds < 1, f"stop took {stop_seconds:.2f} s during the decorrelation warm-up"
