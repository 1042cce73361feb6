"""The training process's PyTorch threads (--torch_threads)."""

from __future__ import annotations

import os

import torch

from pysf.algo.utils.torch_utils import init_torch_runtime, torch_threads
from pysf.cfg.arguments import default_cfg

CORES = len(os.sched_getaffinity(0))


def test_auto_gives_conv_models_every_core_and_mlps_one():
    cfg = default_cfg(env="x")
    assert cfg.torch_threads == 0
    assert torch_threads(cfg, conv_model=True) == CORES
    assert torch_threads(cfg, conv_model=False) == 1
    cfg.torch_threads = 3
    assert torch_threads(cfg, conv_model=True) == torch_threads(cfg, conv_model=False) == 3


def test_init_torch_runtime_sets_the_process_threads():
    before = torch.get_num_threads()
    try:
        cfg = default_cfg(env="x")
        assert init_torch_runtime(cfg, conv_model=False) == 1 == torch.get_num_threads()
        assert init_torch_runtime(cfg, conv_model=True) == CORES == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)

