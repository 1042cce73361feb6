"""The APPO loss, term by term (Sample Factory's learner, reference §4.3).

All means are over valid samples only (``valids``): stale experience beyond ``--max_policy_lag`` and data of
other policies contribute nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
