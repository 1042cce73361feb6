"""Env identity, seeds, warm-up and policies: the C++ Sampler assigns them per split (csrc/sampler/split_assignment.h)
and both runner kinds (native threads, gymnasium worker processes) use that assignment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from pysf import _C
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.cfg.arguments import default_cfg

pytestmark = pytest.mark.usefixtures("fresh_context")


def assign(seed=7, rows=4, warm_up=0, split_id=0, index_in_worker=0):
    return _C.assign_split(
        seed=seed, envs_per_split=rows, warm_up_steps_per_index=warm_up, split_id=split_id, index_in_worker=index_in_worker
    )


def test_env_ids_follow_the_split_and_seeds_depend_only_on_seed_and_env_id():
    a = assign(split_id=3, rows=4)
    assert a["first_env_id"] == 12 and a["split_id"] == 3
    assert len(set(a["env_seeds"])) == 4 and a["policy_ids"] == [0, 0, 0, 0]
    # env 14 has the same seed whatever the split geometry that contains it
    other = assign(split_id=1, rows=8)
    assert other["env_seeds"][14 - 8] == a["env_seeds"][2]
    assert assign(seed=8, split_id=3)["env_seeds"] != a["env_seeds"]
    assert a["warm_up_steps"] == [0, 0, 0, 0]


def test_warm_up_counts_envs_over_the_workers_splits():
    # Sample Factory: env k of a worker (over all its splits) takes rollout * k steps
    second = assign(rows=4, warm_up=16, split_id=5, index_in_worker=1)
    assert second["warm_up_steps"] == [16 * k for k in range(4, 8)]
    assert len(set(second["warm_up_seeds"]) | set(second["env_seeds"])) == 8  # unrelated streams


def test_a_multi_agent_env_has_one_row_per_agent_and_one_seed():
    a = _C.assign_split(seed=7, envs_per_split=2, warm_up_steps_per_index=8, split_id=3, index_in_worker=1,
                        agents_per_env=3)
    assert a["first_env_id"] == 6 and a["agents_per_env"] == 3  # envs 6 and 7: the same ids as single-agent envs
    assert a["env_seeds"] == assign(rows=2, split_id=3)["env_seeds"]
    assert a["warm_up_steps"] == [16, 24] and a["policy_ids"] == [0] * 6


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError, match="envs_per_split"):
        assign(rows=0)
    with pytest.raises(ValueError, match="agents_per_env"):
        _C.assign_split(seed=0, envs_per_split=2, warm_up_steps_per_index=0, split_id=0, index_in_worker=0,
                        agents_per_env=0)


def first_batch_obs(env: str, backend: str, seed: int, rows: int) -> torch.Tensor:
    cfg = default_cfg(env=env)
    cfg.env_backend = backend
    cfg.use_rnn, cfg.encoder_mlp_layers = False, [8]
    cfg.num_workers, cfg.num_envs_per_worker, cfg.worker_num_splits = 1, rows, 1
    cfg.rollout, cfg.seed, cfg.async_rl = 4, seed, False
    cfg.decorrelate_envs_on_one_worker = False
    with SyncSamplingAPI(cfg) as sampling:
        return sampling.get_trajectories_sync(timeout=30)["obs"]["obs"][:, 0]


@pytest.mark.parametrize("backend", ["native", "gym"])
def test_both_env_paths_seed_env_i_with_the_assigned_seed(backend):
    seed, rows = 11, 3
    env_seeds = assign(seed=seed, rows=rows)["env_seeds"]
    if backend == "native":
        env = _C.NativeVectorEnv("CartPole-v1", rows)
        env.seed(env_seeds)
        expected = env.reset()
    else:
        expected = torch.tensor(np.array([gym.make("CartPole-v1").reset(seed=s)[0] for s in env_seeds]))
    torch.testing.assert_close(first_batch_obs("CartPole-v1", backend, seed, rows), expected.float(), rtol=0, atol=0)


def test_sampler_announces_the_assignments_of_the_next_remote_worker():
    cfg = default_cfg(env="CartPole-v1")
    cfg.env_backend = "gym"
    cfg.num_workers, cfg.num_envs_per_worker, cfg.worker_num_splits, cfg.rollout, cfg.seed = 2, 4, 2, 4, 5
    cfg.use_rnn, cfg.encoder_mlp_layers = False, [8]
    with SyncSamplingAPI(cfg) as sampling:
        native = sampling.sampler._sampler
        upcoming = native.next_remote_assignments(2)
    # two workers x two splits registered: the next worker's splits are 4 and 5
    assert [a["split_id"] for a in upcoming] == [4, 5]
    assert upcoming[1] == assign(seed=5, rows=2, warm_up=4, split_id=5, index_in_worker=1)
