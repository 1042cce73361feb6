"""Action heads: decoder output -> raw action-distribution parameters (Sample Factory's ``action_parameterization``).

``forward(x)`` returns ``(params, distribution)`` in eager code, as in Sample Factory. Compiled code calls
``distribution_params(x)`` and uses ``distribution_head`` (a TorchScript-compilable
``pysf.algo.utils.action_distributions.DistributionHead``) for sampling and log-probabilities.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from gymnasium import spaces
from torch import Tensor, nn

from pysf.algo.utils.action_distributions import (
    calc_num_action_parameters,
    get_action_distribution,
    is_continuous_action_space,
    make_distribution_head,
)
from pysf.model.model_utils import Configurable
from pysf.utils.typing import ActionSpace, Config


class ActionsParameterization(Configurable, nn.Module):
    """Base of the action heads; owns the distribution head for ``action_space``."""

    __jit_ignored_attributes__ = ["cfg", "action_space"]

    def __init__(self, cfg: Config, action_space: ActionSpace):
        Configurable.__init__(self, cfg)
        nn.Module.__init__(self)
        self.action_space = action_space
        self.distribution_head = make_distribution_head(action_space)
        # Squash Gaussian means to [-s, s] with tanh(mu / s) * s; 0 disables (--continuous_tanh_scale).
        self.tanh_scale: float = float(getattr(cfg, "continuous_tanh_scale", 0.0))
        self.is_continuous: bool = is_continuous_action_space(action_space)

    def distribution_params(self, actor_core_output: Tensor) -> Tensor:
        """Raw distribution parameters ``[B, num_params]`` (what the model outputs as ``action_logits``)."""
        raise NotImplementedError()

    def _squash_means(self, means: Tensor) -> Tensor:
        if self.tanh_scale > 0:
            return torch.tanh(means / self.tanh_scale) * self.tanh_scale
        return means

    def forward(self, actor_core_output: Tensor, action_mask: Optional[Tensor] = None):
        """Eager: ``(params, distribution)`` as in Sample Factory; compiled: ``params``."""
        params = self.distribution_params(actor_core_output)
        if not torch.jit.is_scripting():
            return params, get_action_distribution(self.action_space, params, action_mask)
        return params


class ActionParameterizationDefault(ActionsParameterization):
    """One linear layer for all distribution parameters (logits; or means and state-dependent log-stds)."""

    def __init__(self, cfg: Config, core_out_size: int, action_space: ActionSpace):
        super().__init__(cfg, action_space)
        num_action_outputs = calc_num_action_parameters(action_space)
        self.distribution_linear = nn.Linear(core_out_size, num_action_outputs)

    def distribution_params(self, actor_core_output: Tensor) -> Tensor:
        params = self.distribution_linear(actor_core_output)
        if self.is_continuous and self.tanh_scale > 0:
            means, log_std = torch.chunk(params, 2, dim=1)
            params = torch.cat((self._squash_means(means), log_std), dim=1)
        return params


class ActionParameterizationContinuousNonAdaptiveStddev(ActionsParameterization):
    """Gaussian means from a linear layer; log-stds are one learned vector shared by all states."""

    def __init__(self, cfg: Config, core_out_size: int, action_space: ActionSpace):
        super().__init__(cfg, action_space)
        if not isinstance(action_space, spaces.Box):
            raise ValueError("Non-adaptive stddev (--adaptive_stddev=False) is only for Box action spaces")
        num_action_outputs = calc_num_action_parameters(action_space)
        self.distribution_linear = nn.Linear(core_out_size, num_action_outputs // 2)
        initial_log_stddev = torch.full([num_action_outputs // 2], math.log(cfg.initial_stddev))
        self.learned_stddev = nn.Parameter(initial_log_stddev, requires_grad=True)

    def distribution_params(self, actor_core_output: Tensor) -> Tensor:
        action_means = self._squash_means(self.distribution_linear(actor_core_output))
        action_stddevs = self.learned_stddev.repeat(action_means.shape[0], 1)
        return torch.cat((action_means, action_stddevs), dim=1)
