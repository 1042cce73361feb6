"""Sampling helpers shared by the sampler tests: a small config and checks of what the counting env produced."""

from __future__ import annotations

import multiprocessing
from collections import defaultdict

import numpy as np

from pysf.cfg.arguments import default_cfg


def small_cfg(env: str, **overrides):
    """A quick sampling config: 2 workers x 4 envs in 2 splits, rollout 8, a 16-unit MLP, no RNN, seed 1."""
    cfg = default_cfg(env=env)
    cfg.use_rnn = False
    cfg.encoder_mlp_layers = [16]
    cfg.num_workers = 2
    cfg.num_envs_per_worker = 4
    cfg.worker_num_splits = 2
    cfg.rollout = 8
    cfg.seed = 1
    cfg.policy_workers_per_policy = 1
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def check_counting_trajectories(batches, cfg):
    """Every step of every env appears exactly once, in order, with consistent flags.

    With ``--decorrelate_envs_on_one_worker`` env k of a worker took ``rollout * k`` warm-up steps
    before sampling, which appear nowhere: its first sampled counter is ``rollout * k``.
    """
    rollout, num_envs = cfg.rollout, cfg.num_workers * cfg.num_envs_per_worker
    counters = defaultdict(list)
    for batch in batches:
        obs = batch["obs"]["obs"].numpy()
        dones = batch["dones"].numpy()
        assert bool((batch["policy_id"] == 0).all()), "every stored step was acted on by policy 0"
        assert np.all(batch["rewards"].numpy() == 1.0)
        for row in range(obs.shape[0]):
            env_ids = obs[row, :, 0]
            assert np.all(env_ids == env_ids[0]), "a row holds one env's trajectory"
            steps = obs[row, :, 1]
            assert np.all(np.diff(steps) == 1), f"counters must increase by 1 along a row: {steps}"
            # terminated at t exactly when the next observation starts a new episode
            assert np.array_equal(dones[row], obs[row, 1:, 2] == 0)
            counters[int(env_ids[0])].extend(steps[:-1].astype(int).tolist())
    assert sorted(counters) == list(range(num_envs))
    for env_id, seen in counters.items():
        seen = sorted(seen)
        warm_up = rollout * (env_id % cfg.num_envs_per_worker) if cfg.decorrelate_envs_on_one_worker else 0
        assert seen == list(range(warm_up, warm_up + len(seen))), f"env {env_id}: steps lost or duplicated"
        assert len(seen) % rollout == 0


def collect_from_every_env(sampling, num_envs: int, min_rows_per_env: int = 3, max_batches: int = 200):
    """Batches until every env contributed at least ``min_rows_per_env`` trajectories."""
    batches, rows_per_env = [], defaultdict(int)
    while len(batches) < max_batches:
        batch = sampling.get_trajectories_sync()
        batches.append(batch)
        for env_id in batch["obs"]["obs"][:, 0, 0].tolist():
            rows_per_env[int(env_id)] += 1
        if len(rows_per_env) == num_envs and min(rows_per_env.values()) >= min_rows_per_env:
            break
    return batches


def alive_env_workers():
    """This process's env worker processes that are still alive."""
    return [p for p in multiprocessing.active_children() if p.name.startswith("pysf-env-worker")]
