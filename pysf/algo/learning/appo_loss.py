"""The APPO loss, term by term (Sample Factory's learner, reference §4.3).

All means are over valid samples only (``valids``): stale experience beyond ``--max_policy_lag`` and data of
other policies contribute nothing. ``appo_loss`` puts the terms together:

    L = L_policy + c_v * L_value + c_e * L_exploration + c_kl * mean(KL(pi || pi_old))
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from pysf.utils.typing import Config


def masked_mean(x: Tensor, valids: Tensor, num_valids: Tensor) -> Tensor:
    """Mean of ``x`` over the valid samples."""
    return (x * valids).sum() / num_valids


def normalized_advantages(advantages: Tensor, valids: Tensor, num_valids: Tensor) -> Tensor:
    """Per-minibatch advantage normalization over valid samples: ``(A - mean) / max(std, 1e-7)``."""
    mean = masked_mean(advantages, valids, num_valids)
    std = torch.sqrt(masked_mean((advantages - mean) ** 2, valids, num_valids))
    return (advantages - mean) / std.clamp(min=1e-7)


def policy_loss(ratio: Tensor, advantages: Tensor, clip_ratio: float, valids: Tensor, num_valids: Tensor) -> Tensor:
    """Clipped surrogate: ``-mean(min(r * A, clip(r, 1/(1+eps), 1+eps) * A))``."""
    clipped_ratio = torch.clamp(ratio, 1.0 / (1.0 + clip_ratio), 1.0 + clip_ratio)
    surrogate = torch.min(ratio * advantages, clipped_ratio * advantages)
    return -masked_mean(surrogate, valids, num_valids)


def value_loss(
    values: Tensor, old_values: Tensor, targets: Tensor, clip_value: float, valids: Tensor, num_valids: Tensor
) -> Tensor:
    """Clipped value loss: ``mean(max((v - R)^2, (v_old + clip(v - v_old, -c, c) - R)^2))`` (no 0.5 factor)."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip_value, clip_value)
    return masked_mean(torch.max((values - targets) ** 2, (clipped_values - targets) ** 2), valids, num_valids)


def entropy_loss(entropy: Tensor, valids: Tensor, num_valids: Tensor) -> Tensor:
    """Entropy bonus as a loss: ``-mean(H(pi))``."""
    return -masked_mean(entropy, valids, num_valids)


def symmetric_kl_loss(symmetric_kl: Tensor, valids: Tensor, num_valids: Tensor) -> Tensor:
    """``min(mean(0.5 * (KL(pi||U) + KL(U||pi))), 30)``, zero when not finite."""
    loss = masked_mean(symmetric_kl, valids, num_valids)
    loss = torch.where(torch.isfinite(loss), loss, torch.zeros_like(loss))
    return torch.clamp(loss, max=30.0)


class LossCoefficients(NamedTuple):
    """The loss settings: clip ranges, the weight of each term, the exploration loss kind."""

    clip_ratio: float
    clip_value: float
    value: float
    exploration: float
    exploration_kind: str  # "entropy" or "symmetric_kl"
    kl: float

    @classmethod
    def from_cfg(cls, cfg: Config) -> "LossCoefficients":
        """From ``--ppo_clip_ratio``, ``--ppo_clip_value``, ``--value_loss_coeff``, ``--exploration_loss(_coeff)``,
        ``--kl_loss_coeff``."""
        return cls(
            clip_ratio=cfg.ppo_clip_ratio,
            clip_value=cfg.ppo_clip_value,
            value=cfg.value_loss_coeff,
            exploration=cfg.exploration_loss_coeff,
            exploration_kind=cfg.exploration_loss,
            kl=cfg.kl_loss_coeff,
        )


class LossTerms(NamedTuple):
    """The weighted terms of the loss and their sum ``total``, which the optimizer minimizes."""

    policy: Tensor
    value: Tensor
    exploration: Tensor
    kl: Tensor
    total: Tensor


def appo_loss(
    coeffs: LossCoefficients,
    ratio: Tensor,
    advantages: Tensor,
    values: Tensor,
    old_values: Tensor,
    targets: Tensor,
    kl: Tensor,
    entropy: Tensor,
    symmetric_kl: Optional[Tensor],
    valids: Tensor,
    num_valids: Tensor,
) -> LossTerms:
    """APPO's loss over one minibatch of samples.

    ``ratio``: pi(a|s) / pi_old(a|s); ``advantages``: normalized; ``values`` / ``old_values``: the critic now and
    at collection; ``targets``: returns or V-trace targets; ``kl``: KL(pi || pi_old) per sample; ``entropy``: of
    pi per sample; ``symmetric_kl``: to the uniform prior per sample, needed for that exploration loss only.
    """
    zero = torch.zeros((), dtype=ratio.dtype)
    exploration = zero
    if coeffs.exploration > 0:
        if coeffs.exploration_kind == "entropy":
            exploration = coeffs.exploration * entropy_loss(entropy, valids, num_valids)
        else:
            exploration = coeffs.exploration * symmetric_kl_loss(symmetric_kl, valids, num_valids)
    policy = policy_loss(ratio, advantages, coeffs.clip_ratio, valids, num_valids)
    value = coeffs.value * value_loss(values, old_values, targets, coeffs.clip_value, valids, num_valids)
    kl_term = coeffs.kl * masked_mean(kl, valids, num_valids) if coeffs.kl > 0 else zero
    return LossTerms(policy, value, exploration, kl_term, total=policy + value + exploration + kl_term)
