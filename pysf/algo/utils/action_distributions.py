"""Action distributions for Discrete, Box, Tuple and MultiDiscrete action spaces.

Two layers, one owner of the math:

* ``DistributionHead`` modules (``CategoricalHead``, ``GaussianHead``, ``MultiCategoricalHead``,
  ``TupleHead``) hold no parameters and implement every operation -- sample, log_prob, entropy, KL,
  argmax -- as TorchScript-compilable functions of the raw distribution parameters ("action_logits").
  The compiled actor-critic that the native core runs uses these.
* ``CategoricalActionDistribution``, ``ContinuousActionDistribution`` and ``TupleActionDistribution``
  are Sample Factory's eager objects (``get_action_distribution(action_space, raw_logits)``) for the
  learner and user code; they bind a head to one batch of parameters and delegate to it.

``torch.distributions`` is not used: it does not compile with TorchScript.

Action tensor conventions (as in Sample Factory's model outputs): Discrete -> ``[B]`` int64;
Box(k) -> ``[B, k]`` float (``[B]`` when k == 1); Tuple -> ``[B, num_actions]`` float (sub-actions
concatenated); MultiDiscrete(n) -> ``[B, n]`` int64. ``log_prob`` also accepts actions stored as float
(rollout buffers keep every action as float32).

``log_prob`` takes the action shapes Sample Factory's distributions take, with the same results:

* categorical (logits ``[B, n]``): ``[B, 1]`` -> ``[B]``; ``[B, k]`` -> ``[B * k]``, the log-probabilities of
  ``k`` actions per row, flattened row by row (Sample Factory's ``gather(...).view(-1)``); pysf also takes
  ``[B]`` -> ``[B]``. Logits with more leading dimensions work the same way (``[T, B, n]`` with ``[T, B, k]``).
* Gaussian (means ``[B, k]``): ``[B, k]`` -> ``[B]``; actions that broadcast against the means (``[1, k]``,
  ``[T, B, k]``) give the broadcast shape without the last dimension, as with ``torch.distributions``. pysf
  also takes ``[B]`` for k == 1 (its model outputs) and any layout with ``B * k`` elements.
* Tuple / MultiDiscrete: ``[B, num_actions]`` -> ``[B]`` (also ``[B, num_actions, 1]``).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from pysf.utils.typing import ActionSpace
from pysf.utils.utils import log

# The observation key whose boolean array masks out invalid actions (Sample Factory's name).
ACTION_MASK_KEY = "action_mask"

# TorchScript cannot read module-level float constants, so the compiled code spells these out:
# a masked-out logit is -1e9 (finite, unlike -inf, so masked probabilities are exactly 0 without NaN);
# Gaussian standard deviations are clamped to [1e-4, 1e4]; log(2*pi) = 1.8378770664093453.


def _check_box(space: spaces.Box) -> None:
    if len(space.shape) != 1:
        raise NotImplementedError(
            f"Box action spaces must be 1-D, got shape {space.shape}; flatten the action space in the env"
        )


def calc_num_actions(action_space: ActionSpace) -> int:
    """Number of action components: Discrete -> 1, Box(k) -> k, MultiDiscrete(n) -> n, Tuple -> sum."""
    if isinstance(action_space, spaces.Discrete):
        return 1
    if isinstance(action_space, spaces.Tuple):
        return sum(calc_num_actions(a) for a in action_space.spaces)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(len(action_space.nvec.reshape(-1)))
    if isinstance(action_space, spaces.Box):
        _check_box(action_space)
        return int(action_space.shape[0])
    raise NotImplementedError(f"Action space type {type(action_space)} is not supported")


def calc_num_action_parameters(action_space: ActionSpace) -> int:
    """Width of the raw parameter vector: Discrete(n) -> n, Box(k) -> 2k, MultiDiscrete -> sum(nvec)."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.Tuple):
        return sum(calc_num_action_parameters(a) for a in action_space.spaces)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(action_space.nvec.sum())
    if isinstance(action_space, spaces.Box):
        _check_box(action_space)
        return 2 * int(action_space.shape[0])
    raise NotImplementedError(f"Action space type {type(action_space)} is not supported")


def calc_action_mask_width(action_space: ActionSpace) -> int:
    """Width of an action mask: one entry per category of every discrete component (0 for Box)."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(action_space.nvec.sum())
    if isinstance(action_space, spaces.Tuple):
        return sum(calc_action_mask_width(a) for a in action_space.spaces)
    return 0


def is_continuous_action_space(action_space: ActionSpace) -> bool:
    """True for Box action spaces."""
    return isinstance(action_space, spaces.Box)


# ----------------------------------------------------------------------------------------------------
# TorchScript-compilable heads
# ----------------------------------------------------------------------------------------------------


def _masked_logits(logits: Tensor, action_mask: Optional[Tensor]) -> Tensor:
    if action_mask is None:
        return logits
    return logits.masked_fill(action_mask == 0, -1e9)


def masked_log_softmax(logits: Tensor, mask: Optional[Tensor]) -> Tensor:
    """log_softmax over the last dim where entries with ``mask == 0`` get probability 0."""
    return F.log_softmax(_masked_logits(logits, mask), dim=-1)


def masked_softmax(logits: Tensor, mask: Optional[Tensor]) -> Tensor:
    """softmax over the last dim where entries with ``mask == 0`` get probability 0."""
    return F.softmax(_masked_logits(logits, mask), dim=-1)


class DistributionHead(nn.Module):
    """Operations of one action distribution family over raw parameters ``params [B, num_params]``.

    Subclasses override every method; all are TorchScript-compilable. ``action_mask`` (``[B, mask
    width]``, nonzero = allowed) applies to discrete components and is ignored by continuous ones.
    """

    def __init__(self, num_params: int, num_actions: int):
        super().__init__()
        self.num_params: int = num_params
        self.num_actions: int = num_actions

    def sample(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Draw actions; returns ``(actions, log_prob_actions [B])``."""
        raise NotImplementedError()

    def log_prob(self, params: Tensor, actions: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        """Log-probability ``[B]`` of ``actions``."""
        raise NotImplementedError()

    def entropy(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        """Entropy ``[B]``."""
        raise NotImplementedError()

    def kl(self, params: Tensor, other_params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        """``KL(self || other)`` ``[B]`` where both are given by their raw parameters."""
        raise NotImplementedError()

    def argmax(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        """The most likely actions (deterministic evaluation)."""
        raise NotImplementedError()

    def symmetric_kl_with_uniform_prior(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        """``0.5 * (KL(pi || U) + KL(U || pi))`` ``[B]``; only defined for discrete distributions."""
        raise NotImplementedError()


class CategoricalHead(DistributionHead):
    """Categorical over ``n`` actions; actions are ``[B]`` int64. Sampling is Gumbel-max."""

    def __init__(self, n: int):
        super().__init__(n, 1)

    def sample(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        log_probs = masked_log_softmax(params, action_mask)
        # Gumbel-max: argmax(log p - log E), E ~ Exp(1), is an exact categorical sample and avoids
        # the softmax + multinomial pair (the slowest part of a small policy's forward).
        noise = torch.empty_like(log_probs).exponential_()
        actions = torch.argmax(log_probs - noise.log(), dim=-1)
        return actions, log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, params: Tensor, actions: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        log_probs = masked_log_softmax(params, action_mask)
        if actions.dim() < log_probs.dim():  # one action per row without its trailing dim: [B] for [B, n]
            actions = actions.unsqueeze(-1)
        # Sample Factory's gather(...).view(-1): [B, k] actions give the [B * k] log-probs, row by row.
        return log_probs.gather(-1, actions.long()).reshape(-1)

    def entropy(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        log_probs = masked_log_softmax(params, action_mask)
        return -(log_probs.exp() * log_probs).sum(-1)

    def kl(self, params: Tensor, other_params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        log_probs = masked_log_softmax(params, action_mask)
        other_log_probs = masked_log_softmax(other_params, action_mask)
        return (log_probs.exp() * (log_probs - other_log_probs)).sum(-1)

    def argmax(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        return torch.argmax(_masked_logits(params, action_mask), dim=-1)

    def symmetric_kl_with_uniform_prior(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        log_probs = masked_log_softmax(params, action_mask)
        probs = log_probs.exp()
        if action_mask is None:
            allowed = torch.ones_like(log_probs)
        else:
            allowed = (action_mask != 0).to(log_probs.dtype)
        num_allowed = allowed.sum(-1, keepdim=True).clamp(min=1.0)
        uniform = allowed / num_allowed
        log_uniform = -torch.log(num_allowed)
        # Masked entries have probability 0 under both distributions and contribute nothing.
        kl_pi_u = (probs * (log_probs - log_uniform) * allowed).sum(-1)
        kl_u_pi = (uniform * (log_uniform - log_probs) * allowed).sum(-1)
        return 0.5 * (kl_pi_u + kl_u_pi)


class GaussianHead(DistributionHead):
    """Diagonal Gaussian over ``k`` dims; params are ``[means, log_std]``; actions ``[B, k]`` (k=1: ``[B]``).

    The standard deviation is ``exp(log_std)`` clamped to [1e-4, 1e4]. Samples are not clipped to the
    Box bounds (as in Sample Factory: envs clip).
    """

    def __init__(self, k: int):
        super().__init__(2 * k, k)
        self.k: int = k

    def _mean_std(self, params: Tensor) -> Tuple[Tensor, Tensor]:
        means, log_std = torch.chunk(params, 2, dim=-1)
        return means, log_std.exp().clamp(1e-4, 1e4)

    def _squeeze(self, actions: Tensor) -> Tensor:
        return actions.squeeze(-1) if self.k == 1 else actions

    def _log_prob_values(self, means: Tensor, std: Tensor, actions: Tensor) -> Tensor:
        z = (actions - means) / std
        return (-0.5 * z * z - std.log() - 0.5 * 1.8378770664093453).sum(-1)

    def sample(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        means, std = self._mean_std(params)
        actions = means + std * torch.randn_like(means)
        return self._squeeze(actions), self._log_prob_values(means, std, actions)

    def log_prob(self, params: Tensor, actions: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        means, std = self._mean_std(params)
        actions = actions.to(means.dtype)
        if actions.numel() == means.numel():  # one action per row in any layout ([B, k], [B] when k == 1)
            actions = actions.reshape(means.shape)
        # otherwise broadcast against the means, as torch.distributions.Normal does
        return self._log_prob_values(means, std, actions)

    def entropy(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        _, std = self._mean_std(params)
        return (0.5 + 0.5 * 1.8378770664093453 + std.log()).sum(-1)

    def kl(self, params: Tensor, other_params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        means, std = self._mean_std(params)
        other_means, other_std = self._mean_std(other_params)
        var_ratio = (std / other_std).pow(2)
        t1 = ((means - other_means) / other_std).pow(2)
        return (0.5 * (var_ratio + t1 - 1.0 - var_ratio.log())).sum(-1)

    def argmax(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        means, _ = self._mean_std(params)
        return self._squeeze(means)

    def symmetric_kl_with_uniform_prior(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        raise RuntimeError(
            "the symmetric_kl exploration loss is defined only for discrete actions; "
            "use --exploration_loss=entropy with continuous action spaces"
        )


def _split_optional(mask: Optional[Tensor], widths: List[int]) -> List[Optional[Tensor]]:
    """Split an action mask column-wise; components with width 0 (continuous) get None."""
    parts: List[Optional[Tensor]] = []
    offset = 0
    for w in widths:
        if mask is None or w == 0:
            parts.append(None)
        else:
            parts.append(mask[:, offset : offset + w])
        offset += w
    return parts


class TupleHead(DistributionHead):
    """Independent components (Discrete and/or Box); log-probs, entropies and KLs are summed.

    Actions are ``[B, num_actions]`` float: each component's actions as columns, in order.
    ``MultiCategoricalHead`` is the all-discrete special case with int64 actions.
    """

    def __init__(self, heads: List[DistributionHead], mask_widths: List[int]):
        super().__init__(sum(h.num_params for h in heads), sum(h.num_actions for h in heads))
        self.heads = nn.ModuleList(heads)
        self.param_splits: List[int] = [h.num_params for h in heads]
        self.action_splits: List[int] = [h.num_actions for h in heads]
        self.mask_widths: List[int] = mask_widths

    def _sample_components(self, params: Tensor, action_mask: Optional[Tensor]) -> Tuple[List[Tensor], Tensor]:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        actions: List[Tensor] = []
        log_prob = torch.zeros(params.shape[0], dtype=params.dtype, device=params.device)
        for i, head in enumerate(self.heads):
            a, lp = head.sample(param_chunks[i], masks[i])
            actions.append(a.reshape(params.shape[0], -1))
            log_prob = log_prob + lp
        return actions, log_prob

    def sample(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        actions, log_prob = self._sample_components(params, action_mask)
        return torch.cat([a.to(params.dtype) for a in actions], dim=1), log_prob

    def log_prob(self, params: Tensor, actions: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        action_chunks = torch.split(actions.reshape(params.shape[0], -1), self.action_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        result = torch.zeros(params.shape[0], dtype=params.dtype, device=params.device)
        for i, head in enumerate(self.heads):
            result = result + head.log_prob(param_chunks[i], action_chunks[i], masks[i])
        return result

    def entropy(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        result = torch.zeros(params.shape[0], dtype=params.dtype, device=params.device)
        for i, head in enumerate(self.heads):
            result = result + head.entropy(param_chunks[i], masks[i])
        return result

    def kl(self, params: Tensor, other_params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        other_chunks = torch.split(other_params, self.param_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        result = torch.zeros(params.shape[0], dtype=params.dtype, device=params.device)
        for i, head in enumerate(self.heads):
            result = result + head.kl(param_chunks[i], other_chunks[i], masks[i])
        return result

    def _argmax_components(self, params: Tensor, action_mask: Optional[Tensor]) -> List[Tensor]:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        actions: List[Tensor] = []
        for i, head in enumerate(self.heads):
            actions.append(head.argmax(param_chunks[i], masks[i]).reshape(params.shape[0], -1))
        return actions

    def argmax(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        return torch.cat([a.to(params.dtype) for a in self._argmax_components(params, action_mask)], dim=1)

    def symmetric_kl_with_uniform_prior(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        param_chunks = torch.split(params, self.param_splits, dim=1)
        masks = _split_optional(action_mask, self.mask_widths)
        result = torch.zeros(params.shape[0], dtype=params.dtype, device=params.device)
        for i, head in enumerate(self.heads):
            result = result + head.symmetric_kl_with_uniform_prior(param_chunks[i], masks[i])
        return result


class MultiCategoricalHead(TupleHead):
    """MultiDiscrete(nvec): independent categoricals; actions ``[B, len(nvec)]`` int64."""

    def __init__(self, nvec: List[int]):
        super().__init__([CategoricalHead(int(n)) for n in nvec], [int(n) for n in nvec])

    def sample(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        actions, log_prob = self._sample_components(params, action_mask)
        return torch.cat(actions, dim=1), log_prob

    def argmax(self, params: Tensor, action_mask: Optional[Tensor] = None) -> Tensor:
        return torch.cat(self._argmax_components(params, action_mask), dim=1)


def make_distribution_head(action_space: ActionSpace) -> DistributionHead:
    """The TorchScript-compilable head for ``action_space``."""
    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(int(action_space.n))
    if isinstance(action_space, spaces.Box):
        return GaussianHead(calc_num_actions(action_space))
    if isinstance(action_space, spaces.MultiDiscrete):
        return MultiCategoricalHead([int(n) for n in action_space.nvec.reshape(-1)])
    if isinstance(action_space, spaces.Tuple):
        return TupleHead(
            [make_distribution_head(s) for s in action_space.spaces],
            [calc_action_mask_width(s) for s in action_space.spaces],
        )
    raise NotImplementedError(
        f"Action space {action_space} is not supported: use Discrete, Box (1-D), MultiDiscrete or a Tuple of them"
    )


# ----------------------------------------------------------------------------------------------------
# Sample Factory's eager distribution objects
# ----------------------------------------------------------------------------------------------------


class ActionDistribution:
    """A head bound to one batch of raw parameters (and an optional action mask)."""

    def __init__(self, head: DistributionHead, raw_logits: Tensor, action_mask: Optional[Tensor] = None):
        self.head = head
        self.raw_logits = raw_logits
        self.action_mask = action_mask

    def sample(self) -> Tensor:
        """Draw actions."""
        return self.head.sample(self.raw_logits, self.action_mask)[0]

    def sample_actions_log_probs(self) -> Tuple[Tensor, Tensor]:
        """Draw actions and their log-probabilities in one pass."""
        return self.head.sample(self.raw_logits, self.action_mask)

    def log_prob(self, actions: Tensor) -> Tensor:
        """Log-probability ``[B]`` of ``actions``."""
        return self.head.log_prob(self.raw_logits, actions, self.action_mask)

    def entropy(self) -> Tensor:
        """Entropy ``[B]``."""
        return self.head.entropy(self.raw_logits, self.action_mask)

    def kl_divergence(self, other: "ActionDistribution") -> Tensor:
        """``KL(self || other)`` ``[B]``."""
        return self.head.kl(self.raw_logits, other.raw_logits, self.action_mask)

    def symmetric_kl_with_uniform_prior(self) -> Tensor:
        """``0.5 * (KL(pi || U) + KL(U || pi))`` ``[B]`` (discrete only)."""
        return self.head.symmetric_kl_with_uniform_prior(self.raw_logits, self.action_mask)

    def argmax(self) -> Tensor:
        """The most likely actions."""
        return self.head.argmax(self.raw_logits, self.action_mask)

    def summaries(self) -> Dict[str, Tensor]:
        """Scalar statistics for TensorBoard (none for discrete distributions)."""
        return {}


class CategoricalActionDistribution(ActionDistribution):
    """Categorical over the last dim of ``raw_logits`` (``masked`` entries get probability 0)."""

    def __init__(self, raw_logits: Tensor, action_mask: Optional[Tensor] = None):
        super().__init__(CategoricalHead(raw_logits.shape[-1]), raw_logits, action_mask)

    def sample(self) -> Tensor:
        """Draw actions, ``[B, 1]`` as in Sample Factory (the model outputs squeeze them to ``[B]``)."""
        return super().sample().unsqueeze(-1)

    @property
    def log_probs(self) -> Tensor:
        """Normalized log-probabilities ``[B, n]``."""
        return masked_log_softmax(self.raw_logits, self.action_mask)

    @property
    def probs(self) -> Tensor:
        """Probabilities ``[B, n]``."""
        return masked_softmax(self.raw_logits, self.action_mask)

    def sample_gumbel(self) -> Tensor:
        """Draw actions with the Gumbel-max trick, ``[B]`` (no trailing dimension, as in Sample Factory)."""
        return super().sample()

    def dbg_print(self) -> None:
        """Log (debug level) the mean entropy and the extreme logits and probabilities of this batch."""
        probs = self.probs
        stats = dict(
            entropy=self.entropy().mean(),
            min_logit=self.raw_logits.min(),
            max_logit=self.raw_logits.max(),
            min_prob=probs.min(),
            max_prob=probs.max(),
        )
        log.debug(" ".join(f"{key}={value.cpu().item():.3f}" for key, value in stats.items()))


class ContinuousActionDistribution(ActionDistribution):
    """Diagonal Gaussian; ``params = [means, log_std]``."""

    def __init__(self, params: Tensor):
        super().__init__(GaussianHead(params.shape[-1] // 2), params)

    @property
    def means(self) -> Tensor:
        """Means ``[B, k]``."""
        return torch.chunk(self.raw_logits, 2, dim=-1)[0]

    @property
    def log_std(self) -> Tensor:
        """The log standard deviations as parameterized ``[B, k]`` (before the clamp of ``stddevs``)."""
        return torch.chunk(self.raw_logits, 2, dim=-1)[1]

    @property
    def stddevs(self) -> Tensor:
        """Standard deviations ``[B, k]`` (clamped to [1e-4, 1e4], as in sampling)."""
        return self.log_std.exp().clamp(1e-4, 1e4)

    def summaries(self) -> Dict[str, Tensor]:
        """Sample Factory's action statistics: means, log_std (as parameterized) and the clamped stddevs."""
        means, log_std, std = self.means, self.log_std, self.stddevs
        return dict(
            action_mean=means.mean(),
            action_mean_min=means.min(),
            action_mean_max=means.max(),
            action_log_std_mean=log_std.mean(),
            action_log_std_min=log_std.min(),
            action_log_std_max=log_std.max(),
            action_stddev_mean=std.mean(),
            action_stddev_min=std.min(),
            action_stddev_max=std.max(),
        )


class TupleActionDistribution(ActionDistribution):
    """Independent sub-distributions of a Tuple (or MultiDiscrete) action space."""

    def __init__(self, action_space: ActionSpace, logits_flat: Tensor, action_mask: Optional[Tensor] = None):
        super().__init__(make_distribution_head(action_space), logits_flat, action_mask)
        self.action_space = action_space
        self._sub_spaces = _sub_action_spaces(action_space)
        # Sample Factory's attributes: parameters and actions per sub-space, the parameters split accordingly.
        self.logit_lengths: List[int] = [calc_num_action_parameters(s) for s in self._sub_spaces]
        self.action_lengths: List[int] = [calc_num_actions(s) for s in self._sub_spaces]
        self.split_logits = torch.split(logits_flat, self.logit_lengths, dim=1)
        self._distributions: Optional[List[ActionDistribution]] = None

    @property
    def distributions(self) -> List[ActionDistribution]:
        """One distribution per sub-space (built on first use), each with its slice of the parameters and mask."""
        if self._distributions is None:
            masks = _split_optional(self.action_mask, [calc_action_mask_width(s) for s in self._sub_spaces])
            self._distributions = [
                get_action_distribution(space, logits, mask)
                for space, logits, mask in zip(self._sub_spaces, self.split_logits, masks)
            ]
        return self._distributions

    def dbg_print(self) -> None:
        """``dbg_print`` of every discrete sub-distribution."""
        for distribution in self.distributions:
            if hasattr(distribution, "dbg_print"):
                distribution.dbg_print()


def _sub_action_spaces(action_space: ActionSpace) -> List[ActionSpace]:
    """The independent parts of a Tuple (its spaces) or MultiDiscrete (one Discrete per entry) action space."""
    if isinstance(action_space, spaces.MultiDiscrete):
        return [spaces.Discrete(int(n)) for n in action_space.nvec.reshape(-1)]
    return list(action_space.spaces)


def get_action_distribution(
    action_space: ActionSpace, raw_logits: Tensor, action_mask: Optional[Tensor] = None
) -> ActionDistribution:
    """Sample Factory's factory: the distribution of ``action_space`` with parameters ``raw_logits`` (the raw
    output of the action parameterization, before any softmax).

    Raises:
        NotImplementedError: an unsupported action space.
        ValueError: ``raw_logits``' last dimension is not ``calc_num_action_parameters(action_space)``.
    """
    num_params = calc_num_action_parameters(action_space)
    if raw_logits.shape[-1] != num_params:
        raise ValueError(
            f"raw_logits of shape {tuple(raw_logits.shape)} do not parameterize {action_space}: it needs "
            f"{num_params} values per row (calc_num_action_parameters)"
        )
    if isinstance(action_space, spaces.Discrete):
        return CategoricalActionDistribution(raw_logits, action_mask)
    if isinstance(action_space, spaces.Box):
        _check_box(action_space)
        return ContinuousActionDistribution(raw_logits)
    if isinstance(action_space, (spaces.Tuple, spaces.MultiDiscrete)):
        return TupleActionDistribution(action_space, raw_logits, action_mask)
    raise NotImplementedError(f"Action space type {type(action_space)} is not supported")


def sample_actions_log_probs(distribution: ActionDistribution) -> Tuple[Tensor, Tensor]:
    """Sample actions and compute their log-probabilities (actions in the model-output convention)."""
    return distribution.sample_actions_log_probs()


def argmax_actions(distribution: ActionDistribution) -> Tensor:
    """Deterministic actions (``--eval_deterministic``)."""
    return distribution.argmax()
