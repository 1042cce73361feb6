"""The APPO learner (Sample Factory's ``Learner``): batch preparation, minibatch SGD, state.

``Learner.train(batch)`` takes a TensorDict of completed trajectories ``[N, T(+1), ...]`` (the batcher's copy
of the sampler's blocks), prepares it (valid mask, observation normalization, bootstrap values, value
bootstrap on truncation, GAE, return normalization), runs ``num_epochs`` passes of ``num_batches_per_epoch``
minibatches and calls ``on_sgd_step(train_step)`` after every optimizer step so the caller can publish the new
weights to inference. The loss is ``appo_loss``, the learning rate follows ``lr_schedules``; the summaries
(Sample Factory's ``train/*``) are read from the device once per iteration.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from pysf.algo.learning.appo_loss import LossCoefficients, LossTerms, appo_loss, masked_mean, normalized_advantages
from pysf.algo.learning.lr_schedules import make_lr_schedule
from pysf.algo.learning.optimizers import Adam, Lamb
from pysf.algo.utils.action_distributions import ACTION_MASK_KEY
from pysf.algo.utils.env_info import EnvInfo
from pysf.algo.utils.rl_utils import gae_advantages, vtrace
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.model.actor_critic import ActorCritic, create_actor_critic
from pysf.utils.typing import Config

log = logging.getLogger(__name__)

# Sample Factory's bounds on the probability ratio before clipping (keeps exp() of stale log-probs finite).
RATIO_MIN, RATIO_MAX = 0.05, 20.0
HIGH_LOSS = 30.0  # a loss above this usually means the rewards need --reward_scale
EARLY_STOP_TOLERANCE = 1e-6  # epochs stop once the mean policy loss changes less than this
_MAX_ABS_LOSS = "_max_abs_loss"  # read with the summaries, for the high-loss warning


@dataclass
class TrainingData:
    """A prepared batch of ``N`` trajectories of ``T`` steps, flat over samples (trajectory-major).

    ``steps`` holds every field a minibatch reads, ``[N*T, ...]``: views of the batch where its layout allows,
    else one copy made here (the observations, converted to float32 in the memory order their encoder runs
    fastest on, and normalized; the old values and RNN states without the step after the last one). A
    minibatch of consecutive samples is then a view of every field; a shuffled one gathers its rows once.
    ``policy_version``: ``[N*T]``, for the summaries.
    """

    steps: TensorDict
    policy_version: Tensor

    def __len__(self) -> int:
        return int(self.policy_version.shape[0])

    def minibatch(self, samples: Union[slice, Tensor]) -> TensorDict:
        """The ``samples`` (a slice: views; indices: gathered once) of every field."""
        return self.steps[samples]


class MinibatchResult(NamedTuple):
    """What one SGD step computed; the summaries read the last one of the iteration."""

    loss: LossTerms
    ratio: Tensor
    log_prob: Tensor
    advantages: Tensor  # normalized
    values: Tensor
    old_values: Tensor
    kl: Tensor  # per sample
    kl_mean: Tensor
    entropy: Tensor
    valids: Tensor
    num_valids: Tensor


def _steps_first(x: Tensor, memory_format: torch.memory_format) -> Tensor:
    """``[N, T+1, ...]`` -> a float32 ``[N*T + N, ...]`` copy: the ``N*T`` step rows (trajectory-major), then each
    trajectory's bootstrap row; images (``[..., C, H, W]``) in ``memory_format``. One pass: converting uint8
    frames into a preallocated channels-last tensor is 2x faster than ``.to(memory_format=...)``."""
    num_traj, rollout = x.shape[0], x.shape[1] - 1
    sample_shape = tuple(x.shape[2:])
    layout = memory_format if len(sample_shape) == 3 else torch.contiguous_format
    out = torch.empty((num_traj * (rollout + 1),) + sample_shape, dtype=torch.float32, device=x.device, memory_format=layout)
    out[: num_traj * rollout].view((num_traj, rollout) + sample_shape).copy_(x[:, :rollout])
    out[num_traj * rollout :].copy_(x[:, rollout])
    return out


def to_python(summaries: Dict[str, Union[Tensor, float, int]]) -> Dict[str, Union[float, int]]:
    """Tensor values as Python floats, read from the device at once (one sync per dtype and device)."""
    groups: Dict[Tuple[torch.dtype, torch.device], List[str]] = {}
    for key, value in summaries.items():
        if isinstance(value, Tensor):
            groups.setdefault((value.dtype, value.device), []).append(key)
    result = dict(summaries)
    for keys in groups.values():
        for key, value in zip(keys, torch.stack([summaries[k].detach().reshape(()) for k in keys]).tolist()):
            result[key] = float(value)
    return result


class Learner:
    """Owns the trained (eager) actor-critic, its optimizer, the LR schedule and the step counters."""

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
        self.lr_schedule = make_lr_schedule(cfg)
        self.loss_coeffs = LossCoefficients.from_cfg(cfg)
        self.train_step = 0  # SGD steps so far: the policy version
        self.env_steps = 0
        self.curr_lr = float(cfg.learning_rate)
        self.best_performance = -1e9
        self.recurrence = int(cfg.recurrence) if int(cfg.recurrence) > 0 else (int(cfg.rollout) if cfg.use_rnn else 1)

    # ---- batch preparation (reference §4.1) -------------------------------------------------------------

    @torch.no_grad()
    def prepare_batch(self, batch: TensorDict) -> TrainingData:
        """Valid mask, normalized observations, bootstrap values, advantages and returns of ``batch``.

        ``batch`` must be the learner's own (the batcher's copy): its ``values`` and ``rewards`` are completed in
        place and the result holds views of it.
        """
        cfg = self.cfg
        model = self.actor_critic
        rewards, values = batch["rewards"], batch["values"]
        num_traj, rollout = rewards.shape
        flat = lambda t: t.reshape((-1,) + tuple(t.shape[2:]))  # noqa: E731 - [N, T(+1), ...] -> [N*T(+1), ...]
        valids = (batch["policy_id"] == self.policy_id) & (self.train_step - batch["policy_version"] < cfg.max_policy_lag)
        valid_steps = valids.float()

        # The observations of all T+1 steps, normalized at once (in train mode this updates the statistics), laid
        # out step rows first and the N bootstrap rows after them, so that minibatches can be slices.
        num_steps = num_traj * rollout
        obs = model.normalize_obs({k: _steps_first(v, model.memory_format_for_input_tensor(k)) for k, v in batch["obs"].items()})

        # Bootstrap values: the current network's value of the state after the last step.
        last_obs = {k: v[num_steps:] for k, v in obs.items()}
        values[:, rollout] = model(last_obs, batch["rnn_states"][:, rollout], values_only=True)["values"]

        denormalized_values = values
        if cfg.normalize_returns:
            denormalized_values = values.clone()
            model.returns_normalizer(denormalized_values, denormalize=True)
        dones = batch["dones"].float()
        if cfg.value_bootstrap:
            # A truncated episode did not end: credit the value of its last state (V(s_t) stands in for
            # the missing V(s_{t+1}), as in Sample Factory).
            rewards += cfg.gamma * denormalized_values[:, :rollout] * batch["time_outs"].float() * dones

        steps = TensorDict(
            actions=flat(batch["actions"]),
            action_logits=flat(batch["action_logits"]),
            log_prob_actions=flat(batch["log_prob_actions"]),
            valids=flat(valid_steps),
        )
        if cfg.with_vtrace:
            steps.update(rewards=flat(rewards), dones=flat(dones))  # V-trace runs per minibatch
        else:
            bootstrap_valids = torch.cat([valids, valids[:, -1:]], dim=1).float()  # the bootstrap step follows the last
            advantages = gae_advantages(rewards, dones, denormalized_values, bootstrap_valids, cfg.gamma, cfg.gae_lambda)
            returns = advantages + valid_steps * denormalized_values[:, :rollout]
            steps.update(advantages=flat(advantages), returns=flat(returns))
            if cfg.normalize_returns:
                # The critic learns normalized returns (this also updates the returns statistics).
                model.returns_normalizer(steps["returns"].view(-1, 1))
            if self.recurrence > 1:
                steps["dones"] = flat(dones)  # RNN states are reset after episode ends
        steps.update(rnn_states=flat(batch["rnn_states"][:, :rollout]), values=flat(values[:, :rollout]))
        if ACTION_MASK_KEY in obs:
            steps[ACTION_MASK_KEY] = obs.pop(ACTION_MASK_KEY)[:num_steps]
        steps["obs"] = TensorDict({k: v[:num_steps] for k, v in obs.items()})
        return TrainingData(steps, flat(batch["policy_version"]))

    # ---- training (reference §4.2-4.3) ------------------------------------------------------------------

    def train(self, batch: TensorDict, on_sgd_step: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
        """One training iteration on ``batch`` (the learner's own: see ``prepare_batch``); returns the summaries."""
        cfg = self.cfg
        start = time.perf_counter()
        data = self.prepare_batch(batch)
        num_valids = float(data.steps["valids"].sum())
        if num_valids == 0:
            log.warning("The whole batch is invalid (older than --max_policy_lag): skipping it")
            return {}
        if num_valids < 0.5 * len(data):
            log.warning("%.0f%% of the batch is invalid (policy lag > %d)", 100 * (1 - num_valids / len(data)), cfg.max_policy_lag)

        version_lag = (self.train_step - data.policy_version).float()  # of the batch, before it trains
        num_epochs = int(cfg.num_epochs)
        last: Optional[MinibatchResult] = None
        grad_norm: Union[Tensor, float] = 0.0
        losses: List[Tensor] = []
        previous_policy_loss: Optional[float] = None
        for epoch in range(num_epochs):
            minibatches = self._minibatch_indices(len(data))
            invalid_fractions = self._invalid_fractions(data, minibatches, all_valid=num_valids == len(data))
            policy_losses, kls = [], []
            for indices, invalid_fraction in zip(minibatches, invalid_fractions):
                self._set_lr(self.lr_schedule.before_sgd_step(self.curr_lr, self.train_step))
                last = self._minibatch_loss(data.minibatch(indices))
                grad_norm = self._sgd_step(last.loss.total, invalid_fraction)
                if on_sgd_step is not None:
                    on_sgd_step(self.train_step)
                self._set_lr(self.lr_schedule.after_minibatch(self.curr_lr, last.kl_mean))
                policy_losses.append(last.loss.policy.detach())
                kls.append(last.kl_mean)
                losses.append(last.loss.total.detach())
            self._set_lr(self.lr_schedule.after_epoch(self.curr_lr, kls))
            if epoch < num_epochs - 1:
                # Early stop: the policy stopped changing (Sample Factory's epoch-level check).
                policy_loss = float(np.mean(torch.stack(policy_losses).tolist())) if policy_losses else 0.0
                if previous_policy_loss is not None and abs(policy_loss - previous_policy_loss) < EARLY_STOP_TOLERANCE:
                    break
                previous_policy_loss = policy_loss

        self.env_steps += len(data) * (cfg.env_frameskip if cfg.summaries_use_frameskip else 1)
        readings = self._summaries(data, version_lag, last, grad_norm, len(losses), num_valids)
        if losses:
            readings[_MAX_ABS_LOSS] = torch.stack(losses).abs().max()
        summaries = to_python(readings)  # the iteration's one read from the device
        max_abs_loss = summaries.pop(_MAX_ABS_LOSS, 0.0)
        if max_abs_loss > HIGH_LOSS:
            log.warning("High loss value: %.3f (recommended to adjust --reward_scale)", max_abs_loss)
        summaries["train_seconds"] = time.perf_counter() - start
        return summaries

    def _minibatch_indices(self, dataset_size: int) -> List[Union[slice, Tensor]]:
        """The samples of each minibatch: consecutive ones (slices), or shuffled with ``--shuffle_minibatches``."""
        batch_size = int(self.cfg.batch_size)
        num_minibatches = dataset_size // batch_size
        if self.cfg.shuffle_minibatches:
            # Shuffle whole chunks of `recurrence` steps so RNN sequences stay contiguous.
            chunks = torch.randperm(dataset_size // self.recurrence) * self.recurrence
            order = (chunks[:, None] + torch.arange(self.recurrence)[None, :]).reshape(-1)
            return [order[i * batch_size : (i + 1) * batch_size] for i in range(num_minibatches)]
        return [slice(i * batch_size, (i + 1) * batch_size) for i in range(num_minibatches)]

    def _invalid_fractions(self, data: TrainingData, minibatches: List[Union[slice, Tensor]], all_valid: bool) -> List[float]:
        """Each minibatch's fraction of invalid samples (its step is that much smaller, as in Sample Factory)."""
        if all_valid or not minibatches:
            return [0.0] * len(minibatches)
        batch_size = int(self.cfg.batch_size)
        counts = torch.stack([data.steps["valids"][samples].sum() for samples in minibatches]).clamp(min=1.0)
        return [1.0 - count / batch_size for count in counts.tolist()]

    def _minibatch_loss(self, mb: TensorDict) -> MinibatchResult:
        """Forward pass over a minibatch and the APPO loss."""
        model = self.actor_critic
        distribution = model.action_parameterization.distribution_head
        action_mask = mb[ACTION_MASK_KEY] if ACTION_MASK_KEY in mb else None
        valids = mb["valids"]
        num_valids = valids.sum().clamp(min=1.0)

        core_output = self._core_output(model.forward_head(dict(mb["obs"])), mb)
        result = model.forward_tail(core_output, values_only=False, sample_actions=False, action_mask=action_mask)
        logits, values = result["action_logits"], result["values"]
        log_prob = distribution.log_prob(logits, mb["actions"], action_mask)
        ratio = torch.exp(log_prob - mb["log_prob_actions"]).clamp(RATIO_MIN, RATIO_MAX)
        if self.cfg.with_vtrace:
            targets, advantages = self._vtrace_targets(mb, values, ratio)
        else:
            targets, advantages = mb["returns"], mb["advantages"]
        advantages = normalized_advantages(advantages, valids, num_valids)
        kl = distribution.kl(logits, mb["action_logits"], action_mask)  # KL(pi_new || pi_old)
        entropy = distribution.entropy(logits, action_mask)
        symmetric_kl = None
        if self.loss_coeffs.exploration > 0 and self.loss_coeffs.exploration_kind == "symmetric_kl":
            symmetric_kl = distribution.symmetric_kl_with_uniform_prior(logits, action_mask)
        loss = appo_loss(
            self.loss_coeffs, ratio, advantages, values, mb["values"], targets, kl, entropy, symmetric_kl, valids, num_valids
        )
        return MinibatchResult(
            loss=loss, ratio=ratio, log_prob=log_prob, advantages=advantages, values=values,
            old_values=mb["values"], kl=kl, kl_mean=masked_mean(kl.detach(), valids, num_valids), entropy=entropy,
            valids=valids, num_valids=num_valids,
        )

    def _sgd_step(self, loss: Tensor, invalid_fraction: float) -> Union[Tensor, float]:
        """Backward, gradient clipping and the optimizer step (``train_step`` + 1); returns the gradient norm."""
        model = self.actor_critic
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm: Union[Tensor, float] = 0.0
        if self.cfg.max_grad_norm > 0:
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), self.cfg.max_grad_norm)
        if invalid_fraction > 0:  # fewer samples -> a proportionally smaller step (as Sample Factory)
            for group in self.optimizer.param_groups:
                group["lr"] = self.curr_lr * (1.0 - invalid_fraction)
        self.optimizer.step()
        if invalid_fraction > 0:
            self._set_lr(self.curr_lr)
        self.train_step += 1
        return grad_norm

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

    def _vtrace_targets(self, mb: TensorDict, values: Tensor, ratio: Tensor) -> Tuple[Tensor, Tensor]:
        shape = (-1, self.recurrence)
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

    # ---- summaries (Sample Factory's train/* names) -------------------------------------------------

    @torch.no_grad()
    def _summaries(
        self,
        data: TrainingData,
        version_lag: Tensor,
        last: Optional[MinibatchResult],
        grad_norm: Union[Tensor, float],
        num_sgd_steps: int,
        num_valids: float,
    ) -> Dict[str, Union[Tensor, float, int]]:
        """The iteration's summaries as device tensors (and Python numbers): the last minibatch's statistics,
        the LR, the policy lag of the batch, the normalizers."""
        summaries: Dict[str, Union[Tensor, float, int]] = {}
        if last is not None:
            valids, num_valids_mb, ratio = last.valids, last.num_valids, last.ratio
            clip = self.cfg.ppo_clip_ratio
            value_delta = (last.values - last.old_values).abs()
            summaries.update(
                loss=last.loss.total,
                policy_loss=last.loss.policy,
                value_loss=last.loss.value,
                exploration_loss=last.loss.exploration,
                kl_loss=last.loss.kl,
                entropy=masked_mean(last.entropy, valids, num_valids_mb),
                value=masked_mean(last.values, valids, num_valids_mb),
                grad_norm=grad_norm,
                adv_mean=masked_mean(last.advantages, valids, num_valids_mb),
                adv_min=last.advantages.min(),
                adv_max=last.advantages.max(),
                adv_std=last.advantages.std(),
                kl_divergence=last.kl_mean,
                kl_divergence_max=last.kl.max(),
                value_delta=value_delta.mean(),
                value_delta_max=value_delta.max(),
                fraction_clipped=((ratio < 1.0 / (1.0 + clip)) | (ratio > 1.0 + clip)).float().mean(),
                ratio_mean=(1.0 - ratio).abs().mean(),
                ratio_min=ratio.min(),
                ratio_max=ratio.max(),
                max_abs_logprob=last.log_prob.abs().max(),
            )
        summaries.update(
            lr=self.curr_lr,
            actual_lr=self.curr_lr,
            num_sgd_steps=num_sgd_steps,
            valids_fraction=num_valids / len(data),
            same_policy_fraction=(data.policy_version == data.policy_version.max()).float().mean(),
            version_diff_avg=version_lag.mean(),
            version_diff_min=version_lag.min(),
            version_diff_max=version_lag.max(),
        )
        model = self.actor_critic
        summaries.update(model.summaries())  # obs_running_mean, ...
        if self.cfg.normalize_returns:
            rn = model.returns_normalizer
            summaries.update(returns_running_mean=rn.running_mean.mean(), returns_running_std=rn.running_var.sqrt().mean())
        return summaries

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

    # ---- population-based training ----------------------------------------------------------------------

    def update_hyperparameters(self, params: Mapping[str, Any]) -> None:
        """Train on with other values of some flags (population-based training, Sample Factory's learner
        ``on_update_cfg``): loss coefficients, clipping, ``gamma``, ``max_grad_norm``, and ``learning_rate``, which
        restarts the LR schedule from the new value. The learner keeps a configuration of its own from then on."""
        cfg = copy.copy(self.cfg)
        for name, value in params.items():
            setattr(cfg, name, value)
        self.cfg = cfg
        self.loss_coeffs = LossCoefficients.from_cfg(cfg)
        if "learning_rate" in params:
            self.lr_schedule = make_lr_schedule(cfg)
            self._set_lr(float(cfg.learning_rate))

    def load_weights_from(self, other: "Learner") -> None:
        """Take ``other``'s model (its normalizers included) and optimizer state, keeping this learner's counters
        (a PBT replacement)."""
        self.actor_critic.load_state_dict(other.actor_critic.state_dict())
        self.optimizer.load_state_dict(copy.deepcopy(other.optimizer.state_dict()))

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
