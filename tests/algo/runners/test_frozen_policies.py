"""Frozen policies (``--frozen_policies``): checkpoints that act for their agents without learning."""

from __future__ import annotations

import glob

import pytest
import torch

from helpers import sampler_test_envs
from pysf.algo.learning.learner import Learner
from pysf.algo.runners.frozen_policies import resolve_frozen_checkpoint
from pysf.algo.runners.runner import Runner
from pysf.algo.utils.misc import ExperimentStatus
from pysf.cfg.verify import verify_cfg
from pysf.envs.env_utils import register_env
from pysf.train import parse_train_args

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py

_DUEL_FLAGS = ("--num_workers", "2", "--num_envs_per_worker", "2", "--rollout", "8", "--use_rnn", "False",
               "--decorrelate_envs_on_one_worker", "False", "--seed", "0")


def _runner(tmp_path, experiment: str, *flags: str) -> Runner:
    register_env("duel", sampler_test_envs.make_duel_env)
    argv = ["--env", "duel", "--experiment", experiment, "--train_dir", str(tmp_path), *_DUEL_FLAGS, *flags]
    return Runner(parse_train_args(argv))


def _train(tmp_path, experiment: str, *flags: str) -> Runner:
    runner = _runner(tmp_path, experiment, *flags)
    assert runner.init() == ExperimentStatus.SUCCESS
    assert runner.run() == ExperimentStatus.SUCCESS
    return runner


@pytest.fixture
def opponent(tmp_path):
    """A short run's experiment folder: its policy 0 becomes the frozen opponent."""
    _train(tmp_path, "opponent", "--train_for_env_steps", "1000", "--batch_size", "32")
    return tmp_path / "opponent"


@pytest.mark.parametrize("async_rl", ["True", "False"])
def test_a_frozen_policy_acts_against_the_learner_and_never_changes(tmp_path, opponent, monkeypatch, async_rl):
    """The learner (policy 0, agent 0 of every duel in sync mode) plays the frozen policy 1; only policy 0 trains,
    only on its own rows, and the frozen weights stay those of the checkpoint."""
    trained_on = []
    train_original = Learner.train

    def recording_train(learner, batch, on_sgd_step=None):
        trained_on.append((learner.policy_id, batch["policy_id"].unique().tolist()))
        return train_original(learner, batch, on_sgd_step)

    monkeypatch.setattr(Learner, "train", recording_train)
    checkpoint = resolve_frozen_checkpoint(str(opponent))
    runner = _train(tmp_path, "league", "--train_for_env_steps", "2000", "--batch_size", "32", "--async_rl", async_rl,
                    "--frozen_policies", str(opponent))
    assert [frozen.policy_id for frozen in runner.frozen_policies] == [1]
    assert runner.frozen_policies[0].checkpoint_path == checkpoint
    assert len(runner.policies) == 1 and trained_on
    assert all(policy == 0 and 0 in ids for policy, ids in trained_on)  # rows of policy 0 (other steps masked)
    assert runner.sampler.samples_collected_by_policy[1] > 0  # the frozen policy acted
    matchups = runner.policies[0].episodes.matchup_rates()
    assert 1 in matchups
    if async_rl == "False":  # the fixed mapping: agent 0 (who always wins) is the learner's, agent 1 the frozen one's
        assert matchups == {1: (1.0, 0.0)}
    # its weights were never replaced: still the checkpoint's version
    assert runner.frozen_policies[0].policy.version == torch.load(checkpoint, weights_only=False)["train_step"] > 0
    experiment = tmp_path / "league"
    assert not glob.glob(str(experiment / "checkpoint_p1")) and not glob.glob(str(experiment / ".summary" / "1"))


def test_frozen_policies_that_name_no_checkpoint_or_another_model_are_refused(tmp_path, opponent):
    runner = _runner(tmp_path, "bad", "--frozen_policies", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="neither a checkpoint file nor a folder with checkpoints"):
        verify_cfg(runner.cfg, sampler_test_envs.make_duel_env("duel"))
    mismatch = _runner(tmp_path, "mismatch", "--frozen_policies", str(opponent), "--encoder_mlp_layers", "16")
    with pytest.raises(ValueError, match="does not fit the one this run's flags build"):
        mismatch.init()
