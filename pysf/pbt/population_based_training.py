"""Population-based training (``--with_pbt=True``; Sample Factory's ``sample_factory.pbt``, after Jaderberg et al.).

Every ``--pbt_period_env_steps`` of a policy's training, once it has trained ``--pbt_start_mutation`` env steps,
the policies are ranked by their ``--pbt_target_objective`` (the mean over the episode window; ``true_objective``,
the env's own or else the reward, by default). A policy among the best ``ceil(--pbt_replace_fraction * N)`` is left
alone. One among the worst as many takes the weights (and optimizer state) and the settings of a random best one,
if that one is better by more than ``--pbt_replace_reward_gap`` (relative) and
``--pbt_replace_reward_gap_absolute``; it keeps its own otherwise. Every policy but policy 0 (the reference, never
mutated) then perturbs the settings it got: each with probability ``--pbt_mutation_rate``, a float multiplied or
divided by a factor drawn from ``[--pbt_perturb_min, --pbt_perturb_max]``, ``gamma`` as ``1 - gamma`` (with
``--pbt_optimize_gamma``) by 1.01-1.2, a flag flipped; a changed value returns to the default with probability 1%.
The env's reward shaping (``RewardShapingInterface``) is evolved the same way.

The settings of policy ``p`` are written to ``policy_{p:02d}_cfg.json`` and ``policy_{p:02d}_reward_shaping.json``
in the experiment folder (policies 1.. start perturbed), and read back on resume. TensorBoard gets them as
``zz_pbt/cfg_<name>`` and ``zz_pbt/rew_<name>``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from pysf.algo.runners.runner import AlgoObserver, PolicyState, Runner
from pysf.algo.utils.misc import EPS
from pysf.utils.atomic_files import write_atomically
from pysf.utils.typing import Config, PolicyID

log = logging.getLogger("pysf")

# The flags PBT evolves (``gamma`` too with --pbt_optimize_gamma), as in Sample Factory.
HYPERPARAMS_TO_TUNE = ("learning_rate", "exploration_loss_coeff", "value_loss_coeff", "max_grad_norm",
                       "ppo_clip_ratio", "ppo_clip_value")
# Discount-like settings evolve as 1 - x, by this range of factors (slowly: they matter over long horizons).
_ONE_MINUS_PERTURB_RANGE = (1.01, 1.2)
_ONE_MINUS_PARAMS = ("gamma", "adam_beta1")
_RESET_TO_DEFAULT_PROBABILITY = 0.01
_SUMMARIES_EVERY_SECONDS = 5 * 60


def policy_cfg_file(experiment_dir: str, policy_id: PolicyID) -> str:
    return os.path.join(experiment_dir, f"policy_{policy_id:02d}_cfg.json")


def policy_reward_shaping_file(experiment_dir: str, policy_id: PolicyID) -> str:
    return os.path.join(experiment_dir, f"policy_{policy_id:02d}_reward_shaping.json")


def perturbed(value: float, factor: float, rng: random.Random) -> float:
    """``value`` multiplied or divided by ``factor``, each with probability 1/2."""
    return value * factor if rng.random() < 0.5 else value / factor


def replacement_for(policy_id: PolicyID, objectives: Sequence[float], cfg: Config, rng: random.Random) -> Optional[PolicyID]:
    """PBT's decision for ``policy_id`` given every policy's objective: None when it is among the best (left
    alone), else the policy whose weights and settings it takes next (itself when it keeps its own)."""
    ranked = sorted(range(len(objectives)), key=lambda p: objectives[p], reverse=True)
    count = math.ceil(float(cfg.pbt_replace_fraction) * len(objectives))
    best, worst = ranked[:count], ranked[-count:]
    if policy_id in best:
        return None
    if policy_id not in worst:
        return policy_id
    candidate = rng.choice(best)
    gap = objectives[candidate] - objectives[policy_id]
    relative_gap = abs(gap / (objectives[candidate] + EPS))
    if abs(gap) > float(cfg.pbt_replace_reward_gap_absolute) and relative_gap > float(cfg.pbt_replace_reward_gap):
        log.debug("PBT: policy %d (%.4f) takes policy %d's weights (%.4f)", policy_id, objectives[policy_id], candidate,
                  objectives[candidate])
        return candidate
    return policy_id


def _leaves(params: Dict[str, Any], defaults: Any) -> Iterator[Tuple[Dict[str, Any], str, Any, Any]]:
    """``(containing dict, key, value, default)`` for every leaf of a nested dict of settings."""
    for key, value in params.items():
        default = defaults.get(key, value) if isinstance(defaults, dict) else getattr(defaults, key, value)
        if isinstance(value, dict):
            yield from _leaves(value, default if isinstance(default, dict) else {})
        else:
            yield params, key, value, default


class PopulationBasedTraining(AlgoObserver):
    """Sample Factory's PBT as a runner observer (the runner registers it with ``--with_pbt=True``)."""

    def __init__(self, cfg: Config, runner: Runner):
        self.cfg = cfg
        self.runner = runner
        self.hyperparams = HYPERPARAMS_TO_TUNE + (("gamma",) if cfg.pbt_optimize_gamma else ())
        self.rng = random.Random(cfg.seed)  # seeded runs make the same decisions
        self.policy_cfg: List[Dict[str, Any]] = []
        self.policy_reward_shaping: List[Optional[Dict[str, Any]]] = []
        self.default_reward_shaping: Optional[Dict[str, Any]] = None
        self.last_update: List[int] = []
        self._last_summaries = 0.0

    # ---- set-up -------------------------------------------------------------------------------------------

    def on_init(self, runner: Runner) -> None:
        """Each policy's settings: read back on resume, else the flags' (policy 0) or perturbed ones."""
        self.default_reward_shaping = runner.env_info.reward_shaping_scheme
        for state in runner.policies:
            self.policy_cfg.append(self._load_or_start(
                policy_cfg_file(runner.experiment_dir, state.policy_id), state.policy_id,
                {name: getattr(self.cfg, name) for name in self.hyperparams}, self.cfg))
            self.policy_reward_shaping.append(self._load_or_start(
                policy_reward_shaping_file(runner.experiment_dir, state.policy_id), state.policy_id,
                copy.deepcopy(self.default_reward_shaping), self.default_reward_shaping))
            self.last_update.append(state.learner.env_steps)
            self._save(state.policy_id)
            self._apply(state)  # before sampling starts: the envs get each policy's reward shaping from the start

    def _load_or_start(self, path: str, policy_id: PolicyID, initial: Any, defaults: Any) -> Any:
        if os.path.exists(path):
            with open(path) as file:
                log.debug("PBT: policy %d's settings from %s", policy_id, path)
                return json.load(file)
        if initial is None or policy_id == 0:  # policy 0 starts from the flags, the others perturbed
            return initial
        return self._perturb(initial, defaults)

    # ---- the schedule -------------------------------------------------------------------------------------

    def on_training_step(self, runner: Runner, training_iteration_since_resume: int) -> None:
        if len(runner.policies) < 2:
            return
        due = [state for state in runner.policies
               if state.learner.env_steps >= self.cfg.pbt_start_mutation
               and state.learner.env_steps - self.last_update[state.policy_id] > self.cfg.pbt_period_env_steps]
        objectives = self._objectives(runner.policies) if due else None  # only when a policy is due
        for state in due:
            env_steps = state.learner.env_steps
            if objectives is not None:
                self._update(state, objectives)
            self.last_update[state.policy_id] = env_steps
            self._write_summaries(state)
        if time.time() - self._last_summaries > _SUMMARIES_EVERY_SECONDS:
            self._last_summaries = time.time()
            for state in runner.policies:
                self._write_summaries(state)

    def _objectives(self, policies: Sequence[PolicyState]) -> Optional[List[float]]:
        """Every policy's mean target objective over its episode window; None until each has episodes."""
        target = self.cfg.pbt_target_objective
        objectives = []
        for state in policies:
            episodes = state.episodes
            values = episodes.true_objectives if target == "true_objective" else episodes.extra.get(target, ())
            if not values:
                return None
            objectives.append(float(np.mean(values)))
        return objectives

    def _update(self, state: PolicyState, objectives: Sequence[float]) -> None:
        policy_id = state.policy_id
        source = replacement_for(policy_id, objectives, self.cfg, self.rng)
        if source is None:
            return
        if source != policy_id:
            source_state = self.runner.policies[source]
            state.learner.load_weights_from(source_state.learner)
            state.policy.update_weights(state.learner.actor_critic, state.learner.train_step)
            log.info("PBT: policy %d takes the weights and settings of policy %d (objective %.3f vs %.3f)", policy_id,
                     source, objectives[source], objectives[policy_id])
        cfg, shaping = self.policy_cfg[source], self.policy_reward_shaping[source]
        if policy_id != 0:  # the reference policy is never mutated (it may still be replaced)
            cfg, shaping = self._perturb(cfg, self.cfg), self._perturb(shaping, self.default_reward_shaping)
        self.policy_cfg[policy_id] = copy.deepcopy(cfg)
        self.policy_reward_shaping[policy_id] = copy.deepcopy(shaping)
        self._save(policy_id)
        self._apply(state)
        self.runner.publish_training_info()  # the new reward shaping reaches the envs now

    # ---- settings -----------------------------------------------------------------------------------------

    def _perturb(self, params: Optional[Dict[str, Any]], defaults: Any) -> Optional[Dict[str, Any]]:
        if params is None:
            return None
        params = copy.deepcopy(params)
        for container, key, value, default in list(_leaves(params, defaults)):
            if isinstance(value, (list, tuple)):  # e.g. reward shaping deltas: one value per direction
                defaults_seq = default if isinstance(default, (list, tuple)) else value
                container[key] = [self._perturb_value(f"{key}_{i}", v, d) for i, (v, d) in enumerate(zip(value, defaults_seq))]
            else:
                container[key] = self._perturb_value(key, value, default)
        return params

    def _perturb_value(self, name: str, value: Any, default: Any) -> Any:
        rng = self.rng
        if rng.random() > float(self.cfg.pbt_mutation_rate):
            return value
        if value != default and rng.random() < _RESET_TO_DEFAULT_PROBABILITY:
            return default
        if isinstance(value, bool):
            return not value
        if not isinstance(value, (int, float)):
            raise TypeError(f"PBT cannot perturb {name}={value!r} ({type(value).__name__}): only numbers and flags")
        if name in _ONE_MINUS_PARAMS:
            return max(EPS, 1.0 - perturbed(1.0 - float(value), rng.uniform(*_ONE_MINUS_PERTURB_RANGE), rng))
        factor = rng.uniform(float(self.cfg.pbt_perturb_min), float(self.cfg.pbt_perturb_max))
        return perturbed(float(value), factor, rng)

    def _apply(self, state: PolicyState) -> None:
        """Policy ``state``'s settings into its learner, its reward shaping into its agents' envs."""
        state.learner.update_hyperparameters(self.policy_cfg[state.policy_id])
        state.reward_shaping = copy.deepcopy(self.policy_reward_shaping[state.policy_id])

    def _save(self, policy_id: PolicyID) -> None:
        experiment_dir = self.runner.experiment_dir
        for path, value, what in (
            (policy_cfg_file(experiment_dir, policy_id), self.policy_cfg[policy_id], "PBT policy settings"),
            (policy_reward_shaping_file(experiment_dir, policy_id), self.policy_reward_shaping[policy_id],
             "PBT reward shaping"),
        ):
            write_atomically(path, json.dumps(value, indent=2).encode(), what)

    def _write_summaries(self, state: PolicyState) -> None:
        writer = state.writer
        if writer is None:
            return
        step = state.learner.env_steps
        for prefix, params in (("cfg", self.policy_cfg[state.policy_id]), ("rew", self.policy_reward_shaping[state.policy_id])):
            if params is None:
                continue
            for _, key, value, _ in _leaves(params, {}):
                values = value if isinstance(value, (list, tuple)) else [value]
                for i, item in enumerate(values):
                    name = f"zz_pbt/{prefix}_{key}" + (f"_{i}" if len(values) > 1 else "")
                    writer.add_scalar(name, float(item), step)
