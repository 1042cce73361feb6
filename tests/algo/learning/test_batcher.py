"""Training batches of exactly one dataset of trajectories from the sampler's blocks (any dataset size)."""

from __future__ import annotations

import pytest
import torch

from pysf.algo.learning.batcher import TrajectoryBatcher, blocks_per_batch
from pysf.algo.utils.tensor_dict import TensorDict


class FakeSampler:
    """Blocks of ``block_rows`` trajectories whose rewards are their global trajectory number."""

    def __init__(self, block_rows: int):
        self.block_rows = block_rows
        self.released = []

    def copy_blocks(self, blocks):
        rows = torch.cat([torch.arange(b * self.block_rows, (b + 1) * self.block_rows) for b in blocks])
        return TensorDict(rewards=rows[:, None].repeat(1, 4).float(), obs=TensorDict(obs=rows[:, None].float()))

    def release(self, blocks):
        self.released.extend(blocks)


def test_dataset_not_a_whole_number_of_blocks_carries_the_rest_over():
    # Sample Factory's documented CartPole command: 20 envs per worker (2 splits of 10), batch 512, rollout 32.
    sampler = FakeSampler(block_rows=10)
    batcher = TrajectoryBatcher(sampler, trajectories_per_batch=16, free_blocks_when_copied=True)
    seen = []
    next_block = 0
    for _ in range(5):
        while not batcher.ready():
            wanted = batcher.blocks_missing()
            batcher.add(list(range(next_block, next_block + wanted)))
            next_block += wanted
        batch, held = batcher.take()
        assert held == [] and batch["rewards"].shape == (16, 4) and batch["obs"]["obs"].shape == (16, 1)
        seen.extend(batch["rewards"][:, 0].long().tolist())
    assert seen == list(range(80))  # every trajectory exactly once, in order
    assert sampler.released == list(range(next_block))  # freed as soon as copied
    assert next_block == 8  # 80 trajectories from 8 blocks: nothing sampled twice or dropped


def test_sync_mode_holds_blocks_until_released_and_needs_whole_blocks():
    sampler = FakeSampler(block_rows=8)
    batcher = TrajectoryBatcher(sampler, trajectories_per_batch=16, free_blocks_when_copied=False)
    assert batcher.blocks_missing() == 2
    batcher.add([3, 5])
    batch, held = batcher.take()
    assert held == [3, 5] and sampler.released == [] and batch["rewards"].shape[0] == 16
    with pytest.raises(ValueError, match="whole number of blocks"):
        TrajectoryBatcher(sampler, trajectories_per_batch=12, free_blocks_when_copied=False)


def test_take_before_ready_is_an_error():
    batcher = TrajectoryBatcher(FakeSampler(4), trajectories_per_batch=6, free_blocks_when_copied=True)
    batcher.add([0])
    with pytest.raises(RuntimeError, match="1 more blocks"):
        batcher.take()
    assert blocks_per_batch(16, 10) == 2 and blocks_per_batch(20, 10) == 2
