"""The training process's PyTorch threads (--torch_threads)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from gymnasium import spaces

from pysf.algo.utils.torch_utils import has_conv_encoder, init_torch_runtime, torch_threads
from pysf.cfg.arguments import default_cfg

IMAGES = spaces.Dict(obs=spaces.Box(0, 255, (3, 72, 128), dtype=np.uint8))
VECTORS = spaces.Dict(obs=spaces.Box(-1, 1, (4,)))
CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("space, conv", [
    (IMAGES, True),
    (VECTORS, False),
    (spaces.Box(0, 255, (84, 84)), True),  # a bare (not Dict) space counts too
    (spaces.Dict(obs=spaces.Box(-1, 1, (4,)), screen=spaces.Box(0, 1, (1, 8, 8))), True),
    (spaces.Dict(obs=spaces.Box(-1, 1, (4,)), action_mask=spaces.MultiBinary(3)), False),
])
def test_conv_models_are_recognised_by_their_observation_shapes(space, conv):
    assert has_conv_encoder(space) is conv


def test_auto_gives_conv_models_every_core_and_mlps_one():
    cfg = default_cfg(env="x")
    assert cfg.torch_threads == 0
    assert torch_threads(cfg, IMAGES) == CORES
    assert torch_threads(cfg, VECTORS) == 1
    cfg.torch_threads = 3
    assert torch_threads(cfg, IMAGES) == torch_threads(cfg, VECTORS) == 3


def test_init_torch_runtime_sets_the_process_threads():
    before = torch.get_num_threads()
    try:
        cfg = default_cfg(env="x")
        assert init_torch_runtime(cfg, VECTORS) == 1 == torch.get_num_threads()
        assert init_torch_runtime(cfg, IMAGES) == CORES == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)

