"""gymnasium vector envs returned by a make_env_func train as batched multi-agent envs (one row per sub-env),
whatever their autoreset mode allows; NEXT_STEP is refused with a message."""

from __future__ import annotations

from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from helpers import sampler_test_envs
from helpers.sampling import small_cfg
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.create_env import create_env
from pysf.envs.env_utils import register_env

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py

SUB_ENVS = 3  # helpers.sampler_test_envs.make_counting_vector_env


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_each_sub_env_is_a_row_reset_in_the_step_that_ends_its_episode(mode):
    name = f"counting_vector__{mode.value}"
    register_env(name, sampler_test_envs.make_counting_vector_env)
    cfg = small_cfg(name, batched_sampling=True, async_rl=False, decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.num_agents == SUB_ENVS and sampling.sampler.block_rows == 2 * SUB_ENVS
        batches = [sampling.get_trajectories_sync(timeout=30) for _ in range(6)]
    seen = defaultdict(list)
    for batch in batches:
        obs, dones = batch["obs"]["obs"].numpy(), batch["dones"].numpy()
        for row in range(obs.shape[0]):
            sub_env = int(obs[row, 0, 0])
            assert np.all(obs[row, :, 0] == sub_env) and np.all(np.diff(obs[row, :, 1]) == 1)
            assert np.array_equal(dones[row], obs[row, 1:, 2] == 0), "done exactly where the next episode starts"
            seen[sub_env].extend(obs[row, :-1, 1].astype(int).tolist())
    total = cfg.num_workers * cfg.num_envs_per_worker * SUB_ENVS
    assert sorted(seen) == list(range(total))
    assert all(sorted(c) == list(range(len(c))) for c in seen.values())
    assert any(bool(batch["dones"].any()) for batch in batches)


def test_next_step_autoreset_is_refused_with_what_to_do():
    register_env("counting_vector__NextStep", sampler_test_envs.make_counting_vector_env)
    with pytest.raises(ValueError, match=r"NEXT_STEP.*autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"):
        create_env("counting_vector__NextStep")


def test_atari_vector_env_samples_uint8_frames():
    pytest.importorskip("ale_py")
    register_env("pong_vector", sampler_test_envs.make_pong_vector_env)
    cfg = small_cfg("pong_vector", batched_sampling=True, num_workers=1, num_envs_per_worker=1, worker_num_splits=1,
                    decorrelate_envs_on_one_worker=False, encoder_conv_architecture="convnet_simple")
    with SyncSamplingAPI(cfg) as sampling:
        batch = sampling.get_trajectories_sync(timeout=60)
    frames = batch["obs"]["obs"]
    assert frames.dtype.is_floating_point is False and str(frames.dtype) == "torch.uint8"
    assert frames.shape == (2, cfg.rollout + 1, 4, 84, 84) and int(frames.max()) > 0
