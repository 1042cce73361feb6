"""Multi-agent envs on the gymnasium path: one trajectory row per agent, every agent step exactly once, inactive
agents' steps left to no policy (policy_id -1), episode statistics per agent, reset by the env itself."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import pytest

from helpers import sampler_test_envs
from helpers.sampling import collect_from_every_env, small_cfg
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.env_utils import register_env

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py

AGENTS = sampler_test_envs.MultiAgentCountingEnv.NUM_AGENTS


def _sample(**overrides):
    """Batches until every env contributed a few trajectories (of each of its agents), and the episode stats."""
    register_env("multi_agent_counting", sampler_test_envs.make_multi_agent_counting_env)
    cfg = small_cfg("multi_agent_counting", **overrides)
    with SyncSamplingAPI(cfg) as sampling:
        assert sampling.env_info.num_agents == AGENTS and sampling.sampler.block_rows == 2 * AGENTS  # 2 envs per split
        batches = collect_from_every_env(sampling, cfg.num_workers * cfg.num_envs_per_worker)
        time.sleep(0.2)
        stats = sampling.episode_stats()
    return cfg, batches, stats


@pytest.mark.parametrize("serial_mode", [False, True])
def test_every_agent_step_is_in_its_own_row_exactly_once(serial_mode):
    cfg, batches, _ = _sample(serial_mode=serial_mode, decorrelate_envs_on_one_worker=False)
    seen = defaultdict(list)
    for batch in batches:
        obs, dones = batch["obs"]["obs"].numpy(), batch["dones"].numpy()
        rewards, policy_ids = batch["rewards"].numpy(), batch["policy_id"].numpy()
        for row in range(obs.shape[0]):
            env_id, agent = int(obs[row, 0, 0]), int(obs[row, 0, 1])
            assert np.all(obs[row, :, 0] == env_id) and np.all(obs[row, :, 1] == agent), "a row is one agent's"
            counters = obs[row, :, 2]
            assert np.all(np.diff(counters) == 1), counters
            assert np.array_equal(dones[row], obs[row, 1:, 3] == 0), "done exactly where the env reset itself"
            assert np.all(rewards[row] == agent + 1)
            # Inactive after the step that took the counter to 3 or 4 (mod 7): the next step is no policy's.
            inactive = (agent == 1) & np.isin(counters[:-1] % 7, (3, 4))
            assert np.array_equal(policy_ids[row] == -1, inactive), (agent, counters, policy_ids[row])
            assert np.all(policy_ids[row][~inactive] == 0)
            seen[(env_id, agent)].extend(counters[:-1].astype(int).tolist())
    num_envs = cfg.num_workers * cfg.num_envs_per_worker
    assert sorted(seen) == [(e, a) for e in range(num_envs) for a in range(AGENTS)]
    for key, counters in seen.items():
        assert sorted(counters) == list(range(len(counters))), f"{key}: steps lost or duplicated"
    # the agents of one env move in lockstep
    for env_id in range(num_envs):
        assert len({len(seen[(env_id, a)]) for a in range(AGENTS)}) == 1


def test_each_agent_reports_its_own_episodes():
    _, _, stats = _sample()
    assert stats
    by_env = defaultdict(list)
    for s in stats:
        length = 3 + s.env_id % 4
        assert s.length == length and s.policy_id == 0
        by_env[s.env_id].append(s)
        if s.extra_stats:  # agent 2's episodes (the stats queue); the others come as plain records
            assert s.reward == 3.0 * length and "agent_counter" in s.extra_stats
    assert sorted(by_env) == list(range(8))
    for env_id, episodes in by_env.items():  # every agent's episodes, each with its own return
        length = 3 + env_id % 4
        assert {s.reward for s in episodes} == {1.0 * length, 2.0 * length, 3.0 * length}, env_id
    assert any(s.extra_stats for s in stats) and any(not s.extra_stats for s in stats)  # both reporting routes


def test_decorrelation_warm_up_steps_every_agent():
    cfg, batches, _ = _sample(decorrelate_envs_on_one_worker=True)
    first = {}
    for batch in batches:
        obs = batch["obs"]["obs"].numpy()
        for row in range(obs.shape[0]):
            key = (int(obs[row, 0, 0]), int(obs[row, 0, 1]))
            first[key] = min(first.get(key, np.inf), obs[row, 0, 2])
    assert len(first) == cfg.num_workers * cfg.num_envs_per_worker * AGENTS
    for (env_id, agent), counter in first.items():
        assert counter == cfg.rollout * (env_id % cfg.num_envs_per_worker), (env_id, agent, counter)


def test_a_multi_agent_env_returning_too_few_agents_is_named():
    class TwoOfThree(sampler_test_envs.MultiAgentCountingEnv):
        def step(self, actions):
            obs, rewards, terminated, truncated, infos = super().step(actions)
            return obs[:2], rewards, terminated, truncated, infos

    register_env("multi_agent_short", lambda name, cfg=None, env_config=None, render_mode=None: TwoOfThree(
        0 if env_config is None else env_config.env_id))
    cfg = small_cfg("multi_agent_short", serial_mode=True, decorrelate_envs_on_one_worker=False)
    with SyncSamplingAPI(cfg) as sampling:
        with pytest.raises(RuntimeError, match=r"returned 2 observations for its 3 agents"):
            for _ in range(4):
                sampling.get_trajectories_sync(timeout=30)
