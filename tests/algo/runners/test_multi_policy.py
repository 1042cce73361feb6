"""Several policies (``--num_policies``): each has its own learner, checkpoints, summaries and episodes, trains on
its own agents' trajectories only, improves, and resumes."""

from __future__ import annotations

import glob
import json
from collections import defaultdict

import pytest
import torch

from helpers import sampler_test_envs
from pysf.algo.learning.learner import Learner
from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.envs.env_utils import register_env
from pysf.train import parse_train_args

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def train(tmp_path, *flags: str, env: str = "CartPole-v1") -> Runner:
    argv = ["--env", env, "--experiment", "exp", "--train_dir", str(tmp_path), "--seed", "0", "--num_policies", "2",
            *flags]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS
    runner.status = runner.run()
    assert runner.status == ExperimentStatus.SUCCESS
    return runner


def test_two_policies_both_learn_cartpole_and_resume(tmp_path):
    """Native CartPole, env e acting for policy e % 2: both policies beat a random one (about 22) clearly."""
    first = train(tmp_path, "--train_for_env_steps", "250000")
    assert [state.policy_id for state in first.policies] == [0, 1]
    for state in first.policies:
        assert state.learner.env_steps >= 250000
        assert state.episodes.mean_reward() > 100, [s.episodes.mean_reward() for s in first.policies]
    exp = tmp_path / "exp"
    for policy_id in (0, 1):
        assert glob.glob(str(exp / f"checkpoint_p{policy_id}" / "checkpoint_*.pth"))
        assert glob.glob(str(exp / ".summary" / str(policy_id) / "events.out.tfevents*"))
    result = json.loads((exp / "result.json").read_text())
    assert result["env_steps"] == sum(state.learner.env_steps for state in first.policies)
    assert [p["env_steps"] for p in result["policies"]] == [state.learner.env_steps for state in first.policies]

    before = [(state.learner.train_step, state.learner.env_steps) for state in first.policies]
    second = train(tmp_path, "--train_for_env_steps", "300000")
    assert [state.resumed_from for state in second.policies] == before
    assert all(state.learner.env_steps >= 300000 for state in second.policies)


def _record_training_rows(monkeypatch):
    """Patches Learner.train to record, per policy, the rows it trains on: (env_id, agent, policy ids per step)."""
    seen = defaultdict(list)
    train_original = Learner.train

    def recording_train(learner, batch, on_sgd_step=None):
        first_obs = batch["obs"]["obs"][:, 0]
        for (env_id, agent), policies in zip(first_obs[:, :2].to(torch.int64).tolist(), batch["policy_id"].tolist()):
            seen[learner.policy_id].append((env_id, agent, policies))
        return train_original(learner, batch, on_sgd_step)

    monkeypatch.setattr(Learner, "train", recording_train)
    return seen


_MULTI_AGENT_FLAGS = ("--num_workers", "2", "--num_envs_per_worker", "2", "--rollout", "8", "--use_rnn", "False",
                      "--decorrelate_envs_on_one_worker", "False")


def test_each_learner_trains_on_its_own_agents_only_with_the_fixed_mapping(tmp_path, monkeypatch):
    """Sync mode, a 3-agent env whose agents act for policies (3 * env_id + agent) % 2 (--pbt_mix_policies_in_one_env):
    every row a learner trains on is one of its own agents', and every agent's trajectory reaches its learner."""
    register_env("multi_agent_counting", sampler_test_envs.make_multi_agent_counting_env)
    seen = _record_training_rows(monkeypatch)
    train(tmp_path, "--train_for_env_steps", "3000", "--async_rl", "False", "--batch_size", "48", *_MULTI_AGENT_FLAGS,
          env="multi_agent_counting")
    agents = {(env_id, agent) for env_id in range(4) for agent in range(3)}
    for policy in (0, 1):
        assert all(set(policies) <= {policy, -1} for _, _, policies in seen[policy])
        assert {(e, a) for e, a, _ in seen[policy]} == {(e, a) for e, a in agents if (3 * e + a) % 2 == policy}, seen


def test_async_mode_redraws_the_mapping_and_routes_rows_to_the_policy_that_acted_most(tmp_path, monkeypatch):
    """Async mode (Sample Factory's AgentPolicyMapping): an env's agents are mapped to random policies anew every
    10 episodes, so every agent acts for both policies over the run; a row goes to the policy that took most of its
    steps (the other policy's steps in it are masked out of that learner's loss)."""
    register_env("multi_agent_counting", sampler_test_envs.make_multi_agent_counting_env)
    seen = _record_training_rows(monkeypatch)
    runner = train(tmp_path, "--train_for_env_steps", "6000", "--batch_size", "64", *_MULTI_AGENT_FLAGS,
                   env="multi_agent_counting")
    acted_for = defaultdict(set)
    mixed_rows = 0
    for policy in (0, 1):
        for env_id, agent, policies in seen[policy]:
            own, other = policies.count(policy), policies.count(1 - policy)
            assert own >= other and (own > other or policy == 0), (policy, policies)
            mixed_rows += other > 0
            acted_for[(env_id, agent)].update(p for p in policies if p >= 0)
    assert all(acted_for[(e, a)] == {0, 1} for e in range(4) for a in range(3)), acted_for
    assert mixed_rows > 0
    for state in runner.policies:  # each policy's episodes were played (at their end) by it
        assert state.episodes.total_episodes > 0


def test_two_player_games_report_win_rates_per_matchup(tmp_path):
    """In a two-agent env each episode names the other agent's policy: the fixed mapping (sync mode) seats policy 0
    (agent 0, who always wins) against policy 1, and the matchup windows, result.json and ``.summary/{i}`` say so,
    whichever way an episode travelled (stats queue for agent 0's, a mailbox record for agent 1's)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    register_env("duel", sampler_test_envs.make_duel_env)
    runner = train(tmp_path, "--train_for_env_steps", "3000", "--batch_size", "32", "--async_rl", "False",
                   *_MULTI_AGENT_FLAGS, env="duel")
    assert runner.policies[0].episodes.matchup_rates() == {1: (1.0, 0.0)}
    assert runner.policies[1].episodes.matchup_rates() == {0: (0.0, 0.0)}
    result = json.loads((tmp_path / "exp" / "result.json").read_text())
    assert [p["matchups"] for p in result["policies"]] == [{"1": {"win": 1.0, "draw": 0.0}},
                                                          {"0": {"win": 0.0, "draw": 0.0}}]
    events = EventAccumulator(str(tmp_path / "exp" / ".summary" / "0")).Reload()
    assert "matchups/win_rate_vs_p1" in events.Tags()["scalars"]
    assert events.Scalars("matchups/win_rate_vs_p1")[-1].value == 1.0


def test_sync_mode_trains_every_policy_each_iteration_with_zero_lag(tmp_path):
    """Sync mode: env e acts for policy e % 2 (Sample Factory's sync mapping); each iteration trains both policies on
    one rollout of their own envs, all collected with their current weights."""
    runner = train(tmp_path, "--train_for_env_steps", "20000", "--async_rl", "False", "--num_workers", "2",
                   "--num_envs_per_worker", "64", "--rollout", "32", "--batch_size", "2048", "--num_batches_per_epoch", "1",
                   "--num_epochs", "1")
    assert runner.max_version_diff == 0
    steps = [(state.learner.train_step, state.learner.env_steps) for state in runner.policies]
    assert steps[0] == steps[1] and steps[0][1] >= 20000 and steps[0][1] % 2048 == 0


def test_an_envs_training_info_is_its_agents_policys(tmp_path):
    """TrainingInfoInterface: an env gets the training info of the policy that plays its episode, also while async
    mode redraws the mapping (env e starts with policy e % 2; some 5 redraws per env in this run)."""
    register_env("policy_reporting", sampler_test_envs.make_policy_reporting_env)
    runner = train(tmp_path, "--train_for_env_steps", "2000", "--num_workers", "1", "--num_envs_per_worker", "4",
                   "--rollout", "8", "--batch_size", "32", "--use_rnn", "False", env="policy_reporting")
    for state in runner.policies:
        assert set(state.episodes.extra["policy_seen"]) == {float(state.policy_id)}
