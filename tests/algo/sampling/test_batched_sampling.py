"""``--batched_sampling=True``: envs made by ``make_env_func_batched`` step their agents as one batch, written
straight into the trajectory rows. Same trajectories as the per-env path for the same seeds; natively vectorized
envs (Sample Factory's EnvPool/IsaacGym route) with one row per sub-env."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pytest
import torch

from helpers import sampler_test_envs
from helpers.sampling import small_cfg
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.env_utils import register_env

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def _trajectories(batched: bool, num_batches: int = 3, **overrides):
    cfg = small_cfg("CartPole-v1", env_backend="gym", batched_sampling=batched, async_rl=False, num_workers=1,
                    **overrides)
    torch.manual_seed(0)
    with SyncSamplingAPI(cfg, serial_inference_order=True) as sampling:
        return [sampling.get_trajectories_sync(timeout=30) for _ in range(num_batches)]


@pytest.mark.parametrize("decorrelate", [False, True])
def test_batched_and_per_env_paths_give_the_same_trajectories(decorrelate):
    per_env = _trajectories(False, decorrelate_envs_on_one_worker=decorrelate)
    batched = _trajectories(True, decorrelate_envs_on_one_worker=decorrelate)
    for a, b in zip(per_env, batched):
        for key in ("actions", "rewards", "dones", "time_outs", "policy_id"):
            assert torch.equal(a[key], b[key]), key
        assert torch.equal(a["obs"]["obs"], b["obs"]["obs"])  # the warm-up too: the same random actions
    assert any(bool(batch["dones"].any()) for batch in batched)


def test_a_vectorized_env_has_one_row_per_sub_env_and_reports_its_infos():
    register_env("vectorized_counting", sampler_test_envs.make_vectorized_counting_env)
    agents = sampler_test_envs.VectorizedCountingEnv.NUM_AGENTS
    cfg = small_cfg("vectorized_counting", batched_sampling=True, decorrelate_envs_on_one_worker=False)
    cfg.async_rl = False  # every split's block in each batch
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.sampler.block_rows == 2 * agents  # 2 env objects per split, 4 sub-envs each
        batches, envs_seen = [], set()
        while len(envs_seen) < cfg.num_workers * cfg.num_envs_per_worker and len(batches) < 100:
            batches.append(sampling.get_trajectories_sync(timeout=30))
            envs_seen.update(batches[-1]["obs"]["obs"][:, 0, 0].int().tolist())
        time.sleep(0.2)
        stats = sampling.episode_stats()
    seen = defaultdict(list)
    for batch in batches:
        obs, dones = batch["obs"]["obs"].numpy(), batch["dones"].numpy()
        assert bool((batch["policy_id"] == 0).all())
        for row in range(obs.shape[0]):
            env_id, k = int(obs[row, 0, 0]), int(obs[row, 0, 1])
            assert np.all(obs[row, :, :2] == (env_id, k))
            assert np.all(np.diff(obs[row, :, 2]) == 1)
            assert np.array_equal(dones[row], obs[row, 1:, 3] == 0)
            assert np.all(batch["rewards"][row].numpy() == k + 1)
            seen[(env_id, k)].extend(obs[row, :-1, 2].astype(int).tolist())
    num_envs = cfg.num_workers * cfg.num_envs_per_worker
    assert sorted(seen) == [(e, k) for e in range(num_envs) for k in range(agents)]
    assert all(sorted(c) == list(range(len(c))) for c in seen.values()), "sub-env steps lost or duplicated"
    assert stats
    for s in stats:  # the vectorized info is each finished sub-env's episode statistic
        assert s.extra_stats["episode_counter"] >= 1 and s.length in range(2, 2 + agents)
        assert s.reward == float(s.length * (s.length - 1))  # sub-env k: length 2 + k, reward k + 1 per step


def test_a_batched_env_returning_a_wrong_batch_is_named():
    class Short(sampler_test_envs.VectorizedCountingEnv):
        def step(self, actions):
            obs, rewards, terminated, truncated, info = super().step(actions)
            return obs, rewards[:3], terminated, truncated, info

    register_env("vectorized_short", lambda name, cfg=None, env_config=None, render_mode=None: Short(0))
    cfg = small_cfg("vectorized_short", batched_sampling=True, serial_mode=True, decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        with pytest.raises(RuntimeError, match=r"returned rewards of shape \(3,\); a batched env returns one per agent"):
            for _ in range(4):
                sampling.get_trajectories_sync(timeout=30)
