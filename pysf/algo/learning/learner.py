"""The APPO learner (Sample Factory's ``Learner``): batch preparation, minibatch SGD, LR schedules, state.

``Learner.train(batch)`` takes a TensorDict of completed trajectories ``[N, T(+1), ...]`` straight from the
sampler's trajectory buffers, prepares it (valid mask, observation normalization, bootstrap values,
value bootstrap on truncation, GAE or V-trace, return normalization), runs ``num_epochs`` passes of
``num_batches_per_epoch`` minibatches and calls ``on_sgd_step(train_step)`` after every optimizer step so
the caller can publish the new weights to inference.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import Tensor, nn

from pysf.algo.learning.appo_loss import (
    entropy_loss,
    masked_mean,
    normalized_advantages,
    policy_loss,
    symmetric_kl_loss,
    value_loss,
)
from pysf.algo.learning.optimizers import Adam, Lamb
from pysf.algo.utils.action_distributions import ACTION_MASK_KEY
from pysf.algo.utils.env_info import EnvInfo
from pysf.algo.utils.rl_utils import gae_advantages, vtrace
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.model.actor_critic import ActorCritic, create_actor_critic
from pysf.utils.typing import Config

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "kl_adaptive_minibatch", "kl_adaptive_epoch", "linear_decay")


class Learner:
    """Owns the trained (eager) actor-critic, its optimizer and the step counters."""

    def __init__(self, cfg: Config, env_info: EnvInfo, actor_critic: Optional[ActorCritic] = None, policy_id: int = 0):
        self.cfg = cfg
        self.env_info = env_info
        self.policy_id = policy_id
        self.actor_critic = actor_critic or create_actor_critic(cfg, env_info.obs_space, env_info.action_space)
        self.actor_critic.train()
        params = list(self.actor_critic.parameters())
        betas = (cfg.adam_beta1, cfg.adam_beta2)
        if cfg.optimizer == "adam":
            self.optimizer = Adam(params, lr=cfg.learning_rate, betas=betas, eps=cfg.adam_eps)
        elif cfg.optimizer == "lamb":
            self.optimizer = Lamb(params, lr=cfg.learning_rate, betas=betas, eps=cfg.adam_eps)
        else:
            raise ValueError(f"Unknown --optimizer={cfg.optimizer!r}: use adam or lamb")
        if cfg.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"Unknown --lr_schedule={cfg.lr_schedule!r}: use one of {LR_SCHEDULES}")
        self.train_step = 0  # SGD steps so far: the policy version
        self.env_steps = 0
        self.curr_lr = float(cfg.learning_rate)
        self.best_performance = -1e9
        self.recurrence = int(cfg.recurrence) if int(cfg.recurrence) > 0 else (int(cfg.rollout) if cfg.use_rnn else 1)
        self._recent_kls: List[float] = []
        self._last_epoch_policy_loss: Optional[float] = None
        self._summary_minibatch: Dict[str, float] = {}

    # ---- batch preparation (reference §4.1) -------------------------------------------------------------

    @torch.no_grad()
    def prepare_batch(self, batch: TensorDict) -> TensorDict:
        """Flat ``[N*T]`` training tensors with advantages and returns."""
        cfg = self.cfg
        model = self.actor_critic
        rewards = batch["rewards"]
        num_traj, rollout = rewards.shape
        valids = (batch["policy_id"] == self.policy_id) & (
            self.train_step - batch["policy_version"] < cfg.max_policy_lag
        )
        valids = torch.cat([valids, valids[:, -1:]], dim=1)  # the bootstrap step follows the last one

        # Normalize the observations of all T+1 steps at once (in train mode this updates the statistics).
        obs = {k: v.reshape((num_traj * (rollout + 1),) + tuple(v.shape[2:])) for k, v in batch["obs"].items()}
        normalized = model.normalize_obs({k: v.float() for k, v in obs.items()})
        normalized = {k: v.reshape((num_traj, rollout + 1) + tuple(v.shape[1:])) for k, v in normalized.items()}

        # Bootstrap values: the current network's value of the state after the last step.
        values = batch["values"].clone()
        last_obs = {k: v[:, rollout] for k, v in normalized.items()}
        values[:, rollout] = model(last_obs, batch["rnn_states"][:, rollout], values_only=True)["values"]

        denormalized_values = values.clone()
        if cfg.normalize_returns:
            model.returns_normalizer(denormalized_values, denormalize=True)
        dones = batch["dones"].float()
        rewards = rewards.clone()
        if cfg.value_bootstrap:
            # A truncated episode did not end: credit the value of its last state (V(s_t) stands in for
            # the missing V(s_{t+1}), as in Sample Factory).
            rewards += cfg.gamma * denormalized_values[:, :rollout] * batch["time_outs"].float() * dones

        flat = lambda t: t.reshape((num_traj * rollout,) + tuple(t.shape[2:]))  # noqa: E731
        result = TensorDict(
            obs=TensorDict({k: flat(v[:, :rollout]) for k, v in normalized.items()}),
            rnn_states=flat(batch["rnn_states"][:, :rollout]),
            actions=flat(batch["actions"]),
            action_logits=flat(batch["action_logits"]),
            log_prob_actions=flat(batch["log_prob_actions"]),
            values=flat(values[:, :rollout]),
            rewards=flat(rewards),
            dones=flat(dones),
            valids=flat(valids[:, :rollout].float()),
            policy_version=flat(batch["policy_version"]),
        )
        if not cfg.with_vtrace:
            advantages = gae_advantages(rewards, dones, denormalized_values, valids.float(), cfg.gamma, cfg.gae_lambda)
            returns = advantages + valids[:, :rollout].float() * denormalized_values[:, :rollout]
            result["advantages"] = flat(advantages)
            result["returns"] = flat(returns)
            if cfg.normalize_returns:
                # The critic learns normalized returns (this also updates the returns statistics).
                model.returns_normalizer(result["returns"].view(-1, 1))
        if ACTION_MASK_KEY in result["obs"]:
            result[ACTION_MASK_KEY] = result["obs"].pop(ACTION_MASK_KEY)
        return result

    # ---- training (reference §4.2-4.3) ------------------------------------------------------------------

    def _minibatch_indices(self, dataset_size: int) -> List[Tensor]:
        batch_size = int(self.cfg.batch_size)
        num_minibatches = dataset_size // batch_size
        if self.cfg.shuffle_minibatches:
            # Shuffle whole chunks of `recurrence` steps so RNN sequences stay contiguous.
            chunks = torch.randperm(dataset_size // self.recurrence) * self.recurrence
            order = (chunks[:, None] + torch.arange(self.recurrence)[None, :]).reshape(-1)
            return [order[i * batch_size : (i + 1) * batch_size] for i in range(num_minibatches)]
        return [torch.arange(i * batch_size, (i + 1) * batch_size) for i in range(num_minibatches)]

    def _core_output(self, head: Tensor, mb: TensorDict) -> Tensor:
        """Core over a minibatch: feed-forward, or RNN unrolled over chunks of ``recurrence`` steps.

        An RNN chunk starts from the stored state at its first step (zero at episode starts) and its state
        is reset after every done, which is what Sample Factory's PackedSequence cut at episode ends does.
        """
        model = self.actor_critic
        if self.recurrence == 1:
            core_output, _ = model.forward_core(head, mb["rnn_states"])
            return core_output
        steps = self.recurrence
        num_chunks = head.shape[0] // steps
        head = head.reshape(num_chunks, steps, -1)
        dones = mb["dones"].reshape(num_chunks, steps, 1)
        states = mb["rnn_states"].reshape(num_chunks, steps, -1)[:, 0]
        outputs = []
        for t in range(steps):
            out, states = model.forward_core(head[:, t], states)
            outputs.append(out)
            states = states * (1.0 - dones[:, t])
        return torch.stack(outputs, dim=1).reshape(num_chunks * steps, -1)

    def _vtrace_targets(self, mb: TensorDict, values: Tensor, ratio: Tensor) -> tuple:
        steps = self.recurrence
        shape = (-1, steps)
        # Invalid steps go through the recursion (as in Sample Factory) and are masked in the losses.
        vs, advantages = vtrace(
            ratio.detach().reshape(shape),
            mb["rewards"].reshape(shape),
            mb["dones"].reshape(shape),
            values.detach().reshape(shape),
            self.cfg.gamma,
            self.cfg.vtrace_rho,
            self.cfg.vtrace_c,
        )
        return vs.reshape(-1), advantages.reshape(-1)

    def _set_lr(self, lr: float) -> None:
        self.curr_lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _update_lr_linear(self) -> None:
        total_updates = max(1, int(self.cfg.train_for_env_steps) // int(self.cfg.batch_size) * int(self.cfg.num_epochs))
        fraction = max(0.0, 1.0 - self.train_step / total_updates)
        self._set_lr(float(self.cfg.learning_rate) * fraction)

    def _update_lr_kl(self, kl: float) -> None:
        threshold = self.cfg.lr_schedule_kl_threshold
        if kl > 2.0 * threshold:
            self._set_lr(max(self.curr_lr / 1.5, self.cfg.lr_adaptive_min))
        elif kl < 0.5 * threshold:
            self._set_lr(min(self.curr_lr * 1.5, self.cfg.lr_adaptive_max))

    def train(self, batch: TensorDict, on_sgd_step: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
        """One training iteration on ``batch``; returns summary statistics (Sample Factory's ``train/*``)."""
        cfg = self.cfg
        model = self.actor_critic
        start = time.perf_counter()
        data = self.prepare_batch(batch)
        dataset_size = data["rewards"].shape[0]
        num_valids_total = float(data["valids"].sum())
        if num_valids_total == 0:
            log.warning("The whole batch is invalid (older than --max_policy_lag): skipping it")
            return {}
        if num_valids_total < 0.5 * dataset_size:
            log.warning("%.0f%% of the batch is invalid (policy lag > %d)", 100 * (1 - num_valids_total / dataset_size), cfg.max_policy_lag)
        head_of_distribution = model.action_parameterization.distribution_head
        stats: Dict[str, float] = {}
        version_lag = (self.train_step - data["policy_version"]).float()
        num_sgd_steps = 0
        for epoch in range(int(cfg.num_epochs)):
            epoch_policy_losses = []
            epoch_kls = []
            for indices in self._minibatch_indices(dataset_size):
                mb = data[indices]
                valids = mb["valids"]
                num_valids = valids.sum().clamp(min=1.0)
                head = model.forward_head(dict(mb["obs"]))
                core_output = self._core_output(head, mb)
                action_mask = mb[ACTION_MASK_KEY] if ACTION_MASK_KEY in mb else None
                result = model.forward_tail(core_output, values_only=False, sample_actions=False, action_mask=action_mask)
                logits = result["action_logits"]
                log_prob = head_of_distribution.log_prob(logits, mb["actions"], action_mask)
                ratio = torch.exp(log_prob - mb["log_prob_actions"]).clamp(0.05, 20.0)
                values = result["values"]

                if cfg.with_vtrace:
                    targets, advantages = self._vtrace_targets(mb, values, ratio)
                else:
                    targets, advantages = mb["returns"], mb["advantages"]
                advantages = normalized_advantages(advantages, valids, num_valids)

                loss_policy = policy_loss(ratio, advantages, cfg.ppo_clip_ratio, valids, num_valids)
                loss_value = cfg.value_loss_coeff * value_loss(values, mb["values"], targets, cfg.ppo_clip_value, valids, num_valids)
                kl = head_of_distribution.kl(logits, mb["action_logits"], action_mask)  # KL(pi_new || pi_old)
                loss_exploration = torch.zeros((), dtype=loss_policy.dtype)
                entropy = head_of_distribution.entropy(logits, action_mask)
                if cfg.exploration_loss_coeff > 0:
                    if cfg.exploration_loss == "entropy":
                        loss_exploration = cfg.exploration_loss_coeff * entropy_loss(entropy, valids, num_valids)
                    else:
                        symmetric_kl = head_of_distribution.symmetric_kl_with_uniform_prior(logits, action_mask)
                        loss_exploration = cfg.exploration_loss_coeff * symmetric_kl_loss(symmetric_kl, valids, num_valids)
                loss_kl = torch.zeros((), dtype=loss_policy.dtype)
                if cfg.kl_loss_coeff > 0:
                    loss_kl = cfg.kl_loss_coeff * masked_mean(kl, valids, num_valids)
                loss = loss_policy + loss_value + loss_exploration + loss_kl

                if cfg.lr_schedule == "linear_decay":
                    self._update_lr_linear()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = 0.0
                if cfg.max_grad_norm > 0:
                    grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm))
                invalid_fraction = 1.0 - float(num_valids) / valids.shape[0]
                if invalid_fraction > 0:  # fewer samples -> a proportionally smaller step (as Sample Factory)
                    for group in self.optimizer.param_groups:
                        group["lr"] = self.curr_lr * (1.0 - invalid_fraction)
                self.optimizer.step()
                if invalid_fraction > 0:
                    self._set_lr(self.curr_lr)
                self.train_step += 1
                num_sgd_steps += 1
                if on_sgd_step is not None:
                    on_sgd_step(self.train_step)

                kl_mean = float(masked_mean(kl.detach(), valids, num_valids))
                epoch_kls.append(kl_mean)
                epoch_policy_losses.append(float(loss_policy.detach()))
                if cfg.lr_schedule == "kl_adaptive_minibatch":
                    self._update_lr_kl(kl_mean)
                with torch.no_grad():
                    stats = dict(
                        loss=loss.item(),
                        policy_loss=loss_policy.item(),
                        value_loss=loss_value.item(),
                        exploration_loss=loss_exploration.item(),
                        kl_loss=loss_kl.item(),
                        entropy=float(masked_mean(entropy, valids, num_valids)),
                        value=float(masked_mean(values, valids, num_valids)),
                        grad_norm=grad_norm,
                        adv_mean=float(masked_mean(advantages, valids, num_valids)),
                        adv_min=float(advantages.min()),
                        adv_max=float(advantages.max()),
                        adv_std=float(advantages.std()),
                        kl_divergence=kl_mean,
                        kl_divergence_max=float(kl.max()),
                        value_delta=float((values - mb["values"]).abs().mean()),
                        value_delta_max=float((values - mb["values"]).abs().max()),
                        fraction_clipped=float(((ratio < 1.0 / (1.0 + cfg.ppo_clip_ratio)) | (ratio > 1.0 + cfg.ppo_clip_ratio)).float().mean()),
                        ratio_mean=float((1.0 - ratio).abs().mean()),
                        ratio_min=float(ratio.min()),
                        ratio_max=float(ratio.max()),
                        max_abs_logprob=float(log_prob.abs().max()),
                    )
                if abs(stats["loss"]) > 30:
                    log.warning("High loss value: %.3f", stats["loss"])
            if cfg.lr_schedule == "kl_adaptive_epoch" and epoch_kls:
                self._update_lr_kl(float(np.mean(epoch_kls)))
            # Early stop: the policy stopped changing (Sample Factory's epoch-level check).
            mean_policy_loss = float(np.mean(epoch_policy_losses)) if epoch_policy_losses else 0.0
            if self._last_epoch_policy_loss is not None and epoch > 0 and abs(mean_policy_loss - self._last_epoch_policy_loss) < 1e-6:
                break
            self._last_epoch_policy_loss = mean_policy_loss

        self.env_steps += dataset_size * (cfg.env_frameskip if cfg.summaries_use_frameskip else 1)
        stats.update(
            lr=self.curr_lr,
            actual_lr=self.curr_lr,
            num_sgd_steps=num_sgd_steps,
            valids_fraction=num_valids_total / dataset_size,
            same_policy_fraction=float((data["policy_version"] == data["policy_version"].max()).float().mean()),
            version_diff_avg=float(version_lag.mean()),
            version_diff_min=float(version_lag.min()),
            version_diff_max=float(version_lag.max()),
            train_seconds=time.perf_counter() - start,
        )
        stats.update({key: float(value) for key, value in model.summaries().items()})  # obs_running_mean, ...
        if cfg.normalize_returns:
            rn = model.returns_normalizer
            stats.update(returns_running_mean=float(rn.running_mean.mean()), returns_running_std=float(rn.running_var.sqrt().mean()))
        return stats

    # ---- checkpoint state ----------------------------------------------------------------------------

    def checkpoint_state(self) -> Dict:
        """Sample Factory's checkpoint dict."""
        return dict(
            train_step=self.train_step,
            env_steps=self.env_steps,
            best_performance=self.best_performance,
            model=self.actor_critic.state_dict(),
            optimizer=self.optimizer.state_dict(),
            curr_lr=self.curr_lr,
        )

    def load_checkpoint_state(self, state: Dict) -> None:
        """Restore model, optimizer, normalizers, counters and LR."""
        self.actor_critic.load_state_dict(state["model"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.train_step = int(state.get("train_step", 0))
        self.env_steps = int(state.get("env_steps", 0))
        self.best_performance = float(state.get("best_performance", -1e9))
        self._set_lr(float(state.get("curr_lr", self.cfg.learning_rate)))
        log.info("Loaded experiment state at train_step=%d, env_steps=%d", self.train_step, self.env_steps)
