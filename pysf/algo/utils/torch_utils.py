"""Torch helpers (Sample Factory's ``sample_factory.algo.utils.torch_utils``)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def calc_num_elements(module: nn.Module, module_input_shape: Sequence[int]) -> int:
    """Number of output features of ``module`` for one input of shape ``module_input_shape``."""
    shape_with_batch_dim = (1,) + tuple(module_input_shape)
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.no_grad():
        return module(torch.rand(shape_with_batch_dim, device=device)).numel()


def masked_select(x: Tensor, mask: Tensor, num_non_mask: int) -> Tensor:
    """``x[mask]`` without a device sync when nothing is masked."""
    if num_non_mask == 0:
        return x
    return torch.masked_select(x, mask)
