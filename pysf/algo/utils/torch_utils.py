"""Torch helpers (Sample Factory's ``sample_factory.algo.utils.torch_utils``)."""

from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import Tensor, nn

from pysf.utils.typing import Config


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



def torch_threads(cfg: Config, conv_model: bool) -> int:
    """The intra-op threads of the training process: ``--torch_threads``, or with 0 one per available core for a
    conv model (:func:`pysf.model.encoder.has_conv_encoder`) and 1 otherwise. Measured on 2 cores
    (benchmarks/RESULTS.md, "Threads of the training process"): the learner bounds conv runs and gains from the
    second core; small MLPs lose to OpenMP's hand-offs."""
    if int(cfg.torch_threads) > 0:
        return int(cfg.torch_threads)
    if not conv_model:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def init_torch_runtime(cfg: Config, conv_model: bool) -> int:
    """Set the training process's PyTorch threads (:func:`torch_threads`); returns the count. Process-wide: the
    learner and the inference threads share it (PyTorch keeps one intra-op setting per process)."""
    threads = torch_threads(cfg, conv_model)
    torch.set_num_threads(threads)
    return threads
