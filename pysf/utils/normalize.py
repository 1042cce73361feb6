"""Observation normalization inside the model (Sample Factory's ``sample_factory.utils.normalize``)."""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from pysf.algo.utils.misc import EPS
from pysf.algo.utils.running_mean_std import RunningMeanStdDictInPlace, running_mean_std_summaries
from pysf.utils.typing import Config, ObsSpace


class ObservationNormalizer(nn.Module):
    """Scales key ``"obs"`` (``--obs_subtract_mean``, ``--obs_scale``) and normalizes keys with running stats.

    Returns a float copy of the observations; the input dict is never modified. Statistics update only
    in training mode (the learner); inference runs the model in eval mode.
    """

    def __init__(self, obs_space: ObsSpace, cfg: Config):
        super().__init__()
        self.sub_mean: float = float(cfg.obs_subtract_mean)
        self.scale: float = float(cfg.obs_scale)
        # No instance-level annotation: TorchScript warns about Optional[<module>] annotations in __init__;
        # it types the attribute as a submodule or as None by itself.
        self.running_mean_std = None
        if cfg.normalize_input:
            self.running_mean_std = RunningMeanStdDictInPlace(obs_space, cfg.normalize_input_keys)
        self.should_sub_mean: bool = abs(self.sub_mean) > EPS
        self.should_scale: bool = abs(self.scale - 1.0) > EPS
        self.should_normalize: bool = self.should_sub_mean or self.should_scale or self.running_mean_std is not None

    def forward(self, obs_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Normalized float copy of ``obs_dict`` (or ``obs_dict`` itself when nothing is configured)."""
        if not self.should_normalize:
            return obs_dict
        # Observations never require grad, so the in-place ops below need no no_grad() block.
        obs_clone: Dict[str, Tensor] = {}
        for k, x in obs_dict.items():
            # Conversion to float copies; float inputs are cloned so in-place ops are safe.
            obs_clone[k] = x.float() if x.dtype != torch.float32 else x.clone()
        if self.should_sub_mean:
            obs_clone["obs"].sub_(self.sub_mean)
        if self.should_scale:
            obs_clone["obs"].mul_(1.0 / self.scale)
        if self.running_mean_std is not None:
            self.running_mean_std(obs_clone)
        return obs_clone

    @torch.jit.ignore
    def summaries(self) -> Dict[str, Tensor]:
        """The running statistics' summaries (``<key>_running_mean`` / ``<key>_running_std``), empty without them."""
        if self.running_mean_std is None:
            return {}
        return running_mean_std_summaries(self.running_mean_std)
