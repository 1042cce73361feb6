"""The env worker loop in-process (no sampler): what it writes into the trajectory buffers."""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from pysf import _C
from pysf.algo.sampling import protocol
from pysf.algo.sampling.buffers import allocate_trajectory_buffers
from pysf.algo.sampling.rollout_worker import RolloutWorker, WorkerSpec, _step_functions
from pysf.algo.utils.context import reset_global_context, sf_global_context
from pysf.cfg.arguments import default_cfg

SHORT_CARTPOLE = "PysfTestShortCartPole-v0"
TIME_LIMIT = 7


@pytest.fixture(autouse=True)
def short_cartpole():
    reset_global_context()
    gym.register(SHORT_CARTPOLE, entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=TIME_LIMIT)
    yield
    gym.registry.pop(SHORT_CARTPOLE, None)
    reset_global_context()


class _NoMailbox:
    """What RolloutWorker needs of the mailbox when driven directly."""

    def __init__(self, block_rows: int):
        self.block_rows = block_rows

    def episode_records(self, split):
        return torch.zeros(self.block_rows, protocol.episode_record_dtype().itemsize // 8, dtype=torch.int64)

    def stop_requested(self):
        return False


def make_worker(env_name: str, rows: int, rollout: int, seed: int = 3) -> RolloutWorker:
    cfg = default_cfg(env=env_name, experiment="x")
    cfg.decorrelate_envs_on_one_worker = False
    probe = gym.make(env_name)
    spec = WorkerSpec(
        worker_index=0, env_name=env_name, cfg=cfg, obs_space=gym.spaces.Dict(obs=probe.observation_space),
        action_space=probe.action_space, block_rows=rows,
        splits=[_C.assign_split(seed=seed, envs_per_split=rows, warm_up_steps_per_index=0, split_id=0, index_in_worker=0)],
        parent_pid=os.getpid(), context=sf_global_context(), env_obs_is_dict=False,
    )
    buffers = allocate_trajectory_buffers(spec.obs_space, spec.action_space, rnn_state_size=1, rollout=rollout,
                                          num_blocks=1, block_rows=rows, shared_memory=False)
    worker = RolloutWorker(spec, buffers, _NoMailbox(rows), stats_queue=None)
    worker.create_envs()
    return worker


def test_gymnasium_make_envs_step_bare_with_the_same_results_as_the_full_wrapper_stack():
    rows, rollout, seed = 6, 40, 3
    worker = make_worker(SHORT_CARTPOLE, rows, rollout, seed)
    assert worker.splits[0].time_limit == TIME_LIMIT  # the bare-env path is taken
    reference = [gym.make(SHORT_CARTPOLE) for _ in range(rows)]
    env_seeds = worker.spec.splits[0]["env_seeds"]
    expected_obs = [env.reset(seed=env_seeds[i])[0] for i, env in enumerate(reference)]
    worker.reset_split(0, 0)
    np.testing.assert_array_equal(worker.obs["obs"][:, 0], np.array(expected_obs))

    actions = np.random.default_rng(0).integers(0, 2, size=(rollout, rows))
    worker.actions[:, :, 0] = actions.T
    for step in range(rollout):
        worker.step_split(0, 0, step)
        for i, env in enumerate(reference):
            obs, reward, terminated, truncated, _ = env.step(int(actions[step, i]))
            assert (worker.terminated[i, step], worker.truncated[i, step]) == (terminated, truncated), (step, i)
            assert worker.rewards[i, step] == reward
            if terminated or truncated:
                obs, _ = env.reset()
            np.testing.assert_array_equal(worker.obs["obs"][i, step + 1], obs)
    assert worker.truncated.any(), "some episodes reached the time limit"


def test_episode_lengths_respect_the_time_limit():
    rows, rollout = 4, 60
    worker = make_worker(SHORT_CARTPOLE, rows, rollout)
    worker.reset_split(0, 0)
    worker.actions[:] = 1.0  # always push right: short episodes, some end by the time limit
    for step in range(rollout):
        worker.step_split(0, 0, step)
    ends = worker.terminated | worker.truncated
    for i in range(rows):
        done_steps = np.flatnonzero(ends[i])
        episode_lengths = np.diff(np.concatenate([[-1], done_steps]))
        assert episode_lengths.max() <= TIME_LIMIT
        assert all(worker.truncated[i, d] == (length == TIME_LIMIT) or worker.terminated[i, d]
                   for d, length in zip(done_steps, episode_lengths))


def test_other_wrappers_keep_the_full_stack():
    plain = [gym.make(SHORT_CARTPOLE) for _ in range(2)]
    step_fns, limit = _step_functions(plain)
    assert limit == TIME_LIMIT and all(f.__self__ is env.unwrapped for f, env in zip(step_fns, plain))
    wrapped = [gym.wrappers.ClipReward(gym.make(SHORT_CARTPOLE), -0.5, 0.5) for _ in range(2)]
    step_fns, limit = _step_functions(wrapped)
    assert limit is None and [f.__self__ for f in step_fns] == wrapped
    two_limits = [gym.make("CartPole-v1"), gym.make(SHORT_CARTPOLE)]
    step_fns, limit = _step_functions(two_limits)
    assert limit is None and [f.__self__ for f in step_fns] == two_limits


class _StrictDiscreteEnv(gym.Env):
    """Asserts every action is in its Discrete(3, start=1, int32) space, as classic-control envs do."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(3, start=1, dtype=np.int32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.actions = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        self.actions.append(action)
        return np.zeros(4, np.float32), 0.0, False, False, {}


def test_bare_envs_get_actions_of_their_space_dtype():
    gym.register("PysfTestStrictDiscrete-v0", entry_point=_StrictDiscreteEnv, max_episode_steps=50)
    try:
        rows, rollout = 3, 5
        worker = make_worker("PysfTestStrictDiscrete-v0", rows, rollout)
        assert worker.splits[0].time_limit == 50
        worker.reset_split(0, 0)
        worker.actions[:, :, 0] = np.arange(rows * rollout).reshape(rows, rollout) % 3
        for step in range(rollout):
            worker.step_split(0, 0, step)
        for i, env in enumerate(worker.splits[0].envs):
            received = env.unwrapped.actions
            assert [int(a) for a in received] == [int(a) + 1 for a in worker.actions[i, :, 0]]
            assert all(type(a) is np.int32 for a in received)
    finally:
        gym.registry.pop("PysfTestStrictDiscrete-v0", None)
