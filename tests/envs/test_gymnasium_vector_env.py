"""gymnasium vector envs returned by a make_env_func train as batched multi-agent envs (one row per sub-env),
whatever their autoreset mode allows; NEXT_STEP is adapted where a reset by mask cancels it (gymnasium's own
vector envs, EnvPool) and refused with a message elsewhere."""

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
from pysf.envs.gymnasium_vector_env import GymnasiumVectorEnvAdapter

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py

SUB_ENVS = 3  # helpers.sampler_test_envs.make_counting_vector_env


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED, AutoresetMode.NEXT_STEP])
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


def test_next_step_autoreset_of_another_vector_env_is_refused_with_what_to_do():
    register_env("next_step_vector", lambda *args: sampler_test_envs.NextStepCountingVectorEnv())
    with pytest.raises(ValueError, match=r"NEXT_STEP.*autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"):
        create_env("next_step_vector")


def test_async_vector_env_in_next_step_mode_loses_no_transition():
    """AsyncVectorEnv keeps its pending resets in its sub-processes: a reset by mask must cancel them there too."""
    env = GymnasiumVectorEnvAdapter(gym.vector.AsyncVectorEnv(
        [lambda k=k: sampler_test_envs.CountingEnv(k) for k in range(SUB_ENVS)], autoreset_mode="NextStep"))
    try:
        obs, _ = env.reset()
        for _ in range(20):
            before = obs
            obs, _, terminated, truncated, _ = env.step(np.zeros(SUB_ENVS, dtype=np.int64))
            finished = np.logical_or(terminated, truncated)
            assert np.array_equal(obs[:, 1], before[:, 1] + 1), "every sub-env took a real step"
            assert np.array_equal(obs[:, 2] == 0, finished), "a finished sub-env comes back reset"
    finally:
        env.close()


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


# ---- EnvPool (pysf[envpool]) --------------------------------------------------------------------------------


def test_envpool_env_resets_finished_envs_in_the_same_step_and_loses_no_transition():
    """EnvPool resets a finished env in its next step (NEXT_STEP); the adapter resets it at once instead. Its
    ``elapsed_step`` info shows that every step after that is a real one of the new episode."""
    envpool = pytest.importorskip("envpool")
    env = create_env_from(envpool.make("CartPole-v1", env_type="gymnasium", num_envs=4, num_threads=1, seed=3))
    assert env.num_agents == 4 and env.observation_space.shape == (4,)
    obs, info = env.reset(seed=12345)  # EnvPool's seed is fixed at creation; no warning that it is ignored
    assert "env_id" not in info and "players" not in info
    rng = np.random.default_rng(0)
    elapsed, episodes = np.zeros(4, dtype=np.int64), 0
    for _ in range(400):
        obs, rewards, terminated, truncated, info = env.step(rng.integers(0, 2, 4))
        elapsed += 1
        assert np.array_equal(info["elapsed_step"], elapsed), "no step went to a reset"
        finished = np.logical_or(terminated, truncated)
        assert np.all(np.abs(obs[finished]) <= 0.05), "a finished env comes back as a new episode's first state"
        elapsed[finished] = 0
        episodes += int(finished.sum())
    assert episodes >= 10


def test_envpool_in_asynchronous_mode_is_refused_with_what_to_do():
    envpool = pytest.importorskip("envpool")
    vector_env = envpool.make("CartPole-v1", env_type="gymnasium", num_envs=4, batch_size=2, num_threads=1)
    with pytest.raises(ValueError, match=r"steps 2 of its 4 envs.*batch_size=num_envs"):
        GymnasiumVectorEnvAdapter(vector_env)


def test_envpool_env_samples_through_the_batched_path():
    pytest.importorskip("envpool")
    register_env("envpool_cartpole", sampler_test_envs.make_envpool_cartpole)
    cfg = small_cfg("envpool_cartpole", batched_sampling=True, async_rl=False, num_envs_per_worker=2,
                    decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.num_agents == 4
        batches = [sampling.get_trajectories_sync(timeout=60) for _ in range(4)]
    obs = np.concatenate([batch["obs"]["obs"].numpy() for batch in batches])
    dones = np.concatenate([batch["dones"].numpy() for batch in batches])
    assert obs.shape[1:] == (cfg.rollout + 1, 4) and dones.any()
    # the observation after a done is a new episode's first state
    assert np.all(np.abs(obs[:, 1:][dones.astype(bool)]) <= 0.05)


def create_env_from(vector_env):
    """``vector_env`` as pysf sees it when a make_env_func returns it."""
    register_env("a_vector_env", lambda *args: vector_env)
    return create_env("a_vector_env")
