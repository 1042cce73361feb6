"""Population-based training: Sample Factory's replacement and mutation rules, its files, and a short run."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

from pysf.algo.runners.runner import PolicyState, Runner, _EpisodeWindow
from pysf.algo.sampling.sampler import EpisodeStats
from pysf.algo.utils.misc import ExperimentStatus
from pysf.pbt.population_based_training import (
    HYPERPARAMS_TO_TUNE,
    PopulationBasedTraining,
    policy_cfg_file,
    policy_reward_shaping_file,
    replacement_for,
)
from pysf.train import parse_train_args

pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def pbt_cfg(**overrides):
    cfg = parse_train_args(["--env=CartPole-v1", "--experiment=pbt", "--num_policies=4", "--with_pbt=True", "--seed=3"])
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_best_policies_are_left_alone_the_worst_take_a_better_ones_place_the_rest_keep_theirs():
    cfg = pbt_cfg(pbt_replace_fraction=0.25)  # 4 policies: 1 best, 1 worst
    objectives = [10.0, 50.0, 30.0, 5.0]
    rng = random.Random(0)
    assert replacement_for(1, objectives, cfg, rng) is None  # the best
    assert replacement_for(0, objectives, cfg, rng) == 0  # in the middle: keeps its own (then mutates)
    assert replacement_for(3, objectives, cfg, rng) == 1  # the worst, far behind the best
    close = [10.0, 10.5, 10.2, 10.1]  # the worst is within --pbt_replace_reward_gap=0.1 (relative) of the best
    assert replacement_for(0, close, cfg, rng) == 0
    tiny = [1e-8, 3e-8, 2e-8, 1.5e-8]  # relative gap large, absolute gap below --pbt_replace_reward_gap_absolute
    assert replacement_for(0, tiny, cfg, rng) == 0


class FakeLearner:
    def __init__(self, env_steps: int):
        self.env_steps, self.train_step, self.actor_critic = env_steps, 1, object()
        self.hyperparameters, self.weights_from = None, None

    def update_hyperparameters(self, params):
        self.hyperparameters = dict(params)

    def load_weights_from(self, other):
        self.weights_from = other


def fake_runner(tmp_path, objectives, env_steps=1000):
    runner = SimpleNamespace(experiment_dir=str(tmp_path), env_info=SimpleNamespace(reward_shaping_scheme={"bonus": 1.0}),
                             policies=[], published=0)
    runner.publish_training_info = lambda: setattr(runner, "published", runner.published + 1)
    for policy_id, objective in enumerate(objectives):
        state = PolicyState(policy_id, FakeLearner(env_steps), stats_avg=10)
        state.policy = SimpleNamespace(update_weights=lambda *args: None)
        state.episodes.add([EpisodeStats(env_id=0, reward=objective, length=1, true_objective=objective)])
        runner.policies.append(state)
    return runner


def test_settings_start_perturbed_except_policy_zeros_and_are_saved(tmp_path):
    cfg = pbt_cfg(pbt_mutation_rate=1.0)
    runner = fake_runner(tmp_path, [1.0, 2.0, 3.0, 4.0])
    pbt = PopulationBasedTraining(cfg, runner)
    pbt.on_init(runner)
    defaults = {name: getattr(cfg, name) for name in HYPERPARAMS_TO_TUNE}
    saved = [json.loads(open(policy_cfg_file(str(tmp_path), p)).read()) for p in range(4)]
    assert saved[0] == defaults and all(saved[p] != defaults for p in (1, 2, 3))
    assert runner.policies[2].learner.hyperparameters == saved[2]  # applied to the learner
    shaping = json.loads(open(policy_reward_shaping_file(str(tmp_path), 1)).read())
    assert set(shaping) == {"bonus"} and shaping["bonus"] != 1.0 and runner.policies[1].reward_shaping == shaping
    for p in (1, 2, 3):  # perturbed by a factor in [--pbt_perturb_min, --pbt_perturb_max] (or back to the default)
        for name in (n for n in HYPERPARAMS_TO_TUNE if defaults[n] != 0):  # a zero stays zero
            ratio = saved[p][name] / defaults[name]
            assert ratio == 1.0 or cfg.pbt_perturb_min <= max(ratio, 1 / ratio) <= cfg.pbt_perturb_max + 1e-9
    # resume: the saved settings come back as they are
    again = PopulationBasedTraining(cfg, runner)
    again.on_init(runner)
    assert again.policy_cfg == saved


def test_at_its_period_the_worst_policy_takes_the_best_ones_weights_and_policy_zero_is_never_mutated(tmp_path):
    cfg = pbt_cfg(pbt_mutation_rate=1.0, pbt_start_mutation=0, pbt_period_env_steps=100, pbt_replace_fraction=0.25)
    runner = fake_runner(tmp_path, [1.0, 100.0, 50.0, 60.0], env_steps=0)  # policy 0 is the worst
    pbt = PopulationBasedTraining(cfg, runner)
    pbt.on_init(runner)
    best_cfg = dict(pbt.policy_cfg[1])
    for state in runner.policies:
        state.learner.env_steps = 150  # past the period
    pbt.on_training_step(runner, 1)
    policy_zero = runner.policies[0]
    assert policy_zero.learner.weights_from is runner.policies[1].learner  # replaced by the best...
    assert pbt.policy_cfg[0] == best_cfg  # ...and takes its settings unperturbed
    assert runner.policies[1].learner.weights_from is None  # the best is left alone
    assert pbt.policy_cfg[1] == best_cfg
    assert runner.policies[2].learner.weights_from is None  # the middle keeps its weights but mutates
    assert pbt.last_update == [150, 150, 150, 150] and runner.published >= 3
    assert json.loads(open(policy_cfg_file(str(tmp_path), 0)).read()) == best_cfg


def test_a_short_pbt_run_trains_evolves_and_resumes(tmp_path):
    argv = ["--env=CartPole-v1", "--experiment=pbt", f"--train_dir={tmp_path}", "--num_policies=3", "--with_pbt=True",
            "--seed=1", "--pbt_start_mutation=0", "--pbt_period_env_steps=20000", "--pbt_mutation_rate=0.5",
            "--train_for_env_steps=80000"]
    runner = Runner(parse_train_args(argv))
    assert runner.init() == ExperimentStatus.SUCCESS
    assert runner.run() == ExperimentStatus.SUCCESS
    exp = tmp_path / "pbt"
    saved = [json.loads((exp / f"policy_{p:02d}_cfg.json").read_text()) for p in range(3)]
    assert [state.learner.cfg.learning_rate for state in runner.policies] == [s["learning_rate"] for s in saved]
    pbt = next(o for o in runner.observers if isinstance(o, PopulationBasedTraining))
    assert all(steps > 0 for steps in pbt.last_update)
    resumed = Runner(parse_train_args(argv[:-1] + ["--train_for_env_steps=90000"]))
    assert resumed.init() == ExperimentStatus.SUCCESS
    assert [state.learner.cfg.learning_rate for state in resumed.policies] == [s["learning_rate"] for s in saved]
    resumed.close()
