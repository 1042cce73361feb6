"""Training batches of exactly one dataset of trajectories from the sampler's blocks (any dataset size)."""

from __future__ import annotations

import pytest
import torch

from pysf.algo.learning.batcher import PolicyTrajectoryBatcher, TrajectoryBatcher, blocks_per_batch, rows_by_policy
from pysf.algo.utils.tensor_dict import TensorDict


class FakeSampler:
    """Blocks of ``block_rows`` trajectories whose rewards are their global trajectory number; trajectory ``n``
    acts for policy ``n % num_policies``."""

    def __init__(self, block_rows: int, num_policies: int = 1):
        self.block_rows = block_rows
        self.num_policies = num_policies
        self.released = []

    def copy_blocks(self, blocks):
        rows = torch.cat([torch.arange(b * self.block_rows, (b + 1) * self.block_rows) for b in blocks])
        policy_id = (rows % self.num_policies)[:, None].repeat(1, 4).int()
        return TensorDict(rewards=rows[:, None].repeat(1, 4).float(), obs=TensorDict(obs=rows[:, None].float()),
                          policy_id=policy_id)

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


def test_rows_go_to_the_policy_that_acted_in_them_and_inactive_rows_to_none():
    data = FakeSampler(block_rows=6, num_policies=2).copy_blocks([0])
    data["policy_id"][1, 1:] = -1  # an agent of policy 1 that became inactive: still policy 1's row
    data["policy_id"][3, :] = -1  # inactive for the whole rollout: nobody's
    by_policy = rows_by_policy(data, 2)
    assert by_policy[0]["rewards"][:, 0].tolist() == [0, 2, 4]
    assert by_policy[1]["rewards"][:, 0].tolist() == [1, 5]


def test_a_row_whose_mapping_was_redrawn_goes_to_the_policy_with_most_of_its_steps():
    data = FakeSampler(block_rows=4, num_policies=2).copy_blocks([0])
    rollout = data["policy_id"].shape[1]
    data["policy_id"][0, : rollout // 2 + 1] = 1  # policy 0's row, redrawn to 1 for most of the rollout
    data["policy_id"][1, :1] = 0  # policy 1's row, 0 for its first step only
    data["policy_id"][2, : rollout // 2] = 1  # half and half: the lower policy's
    by_policy = rows_by_policy(data, 2)
    assert by_policy[0]["rewards"][:, 0].tolist() == [2]
    assert by_policy[1]["rewards"][:, 0].tolist() == [0, 1, 3]


def test_each_policy_gets_its_own_trajectories_exactly_once_in_order():
    sampler = FakeSampler(block_rows=6, num_policies=3)
    batcher = PolicyTrajectoryBatcher(sampler, trajectories_per_batch=4, num_policies=3, free_blocks_when_copied=True)
    seen = {0: [], 1: [], 2: []}
    next_block = 0
    while sum(len(t) for t in seen.values()) < 36:
        batches, held = batcher.take_ready()
        assert held == []
        if not batches:
            wanted = batcher.blocks_missing()
            assert wanted >= 1
            batcher.add(list(range(next_block, next_block + wanted)))
            next_block += wanted
        for policy, batch in batches:
            assert batch["rewards"].shape == (4, 4) and torch.all(batch["policy_id"] == policy)
            seen[policy].extend(batch["rewards"][:, 0].long().tolist())
    assert sampler.released == list(range(next_block))  # freed as soon as copied
    for policy, trajectories in seen.items():
        assert trajectories == list(range(policy, 3 * len(trajectories), 3))  # its own, none twice, none skipped


def test_sync_mode_trains_every_policy_on_one_round_then_frees_its_blocks():
    sampler = FakeSampler(block_rows=4, num_policies=2)
    batcher = PolicyTrajectoryBatcher(sampler, trajectories_per_batch=4, num_policies=2, free_blocks_when_copied=False)
    assert batcher.blocks_missing() == 2
    batcher.add([5])
    assert batcher.take_ready() == ([], [])
    batcher.add([2])
    batches, held = batcher.take_ready()
    assert held == [5, 2] and sampler.released == []
    assert [(policy, batch["rewards"][:, 0].long().tolist()) for policy, batch in batches] == [
        (0, [20, 22, 8, 10]), (1, [21, 23, 9, 11])]  # in the order the sampler copies the blocks
    with pytest.raises(ValueError, match="whole number of blocks per round"):
        PolicyTrajectoryBatcher(sampler, trajectories_per_batch=3, num_policies=2, free_blocks_when_copied=False)


def test_sync_mode_stops_when_the_mapping_is_uneven():
    sampler = FakeSampler(block_rows=6, num_policies=3)  # 2 trajectories per policy per block, 4 wanted from 2
    batcher = PolicyTrajectoryBatcher(sampler, trajectories_per_batch=3, num_policies=2, free_blocks_when_copied=False)
    batcher.add([0, 1])
    with pytest.raises(RuntimeError, match="must split the agents evenly"):
        batcher.take_ready()


def test_several_policies_ask_for_no_more_than_one_batch_of_blocks_at_a_time():
    """The sampler holds about one batch of blocks beyond its splits' own: a request for more would wait out its
    timeout (4 policies ran 5x slower so)."""
    batcher = PolicyTrajectoryBatcher(FakeSampler(block_rows=8, num_policies=4), trajectories_per_batch=32,
                                      num_policies=4, free_blocks_when_copied=True)
    assert batcher.blocks_missing() == blocks_per_batch(32, 8) == 4
