"""Training batches of exactly one dataset of trajectories, assembled from the sampler's blocks.

The sampler hands out completed trajectories in blocks (one split's envs, ``block_rows`` trajectories each);
the learner trains on ``batch_size * num_batches_per_epoch / rollout`` trajectories per iteration. Sample
Factory's batcher accepts any such dataset size, so pysf does too: when the dataset is not a whole number of
blocks (async mode), the trajectories of the last block that do not fit are kept for the next batch.

In async mode a block is freed as soon as it is copied, so sampling goes on during training. In sync mode the
blocks of a batch stay held until the caller releases them after training (every sample then comes from
the current policy); the configuration checks make a sync dataset a whole number of blocks.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

from pysf.algo.sampling.sampler import Sampler
from pysf.algo.utils.tensor_dict import TensorDict, cat_tensordicts


def blocks_per_batch(trajectories_per_batch: int, block_rows: int) -> int:
    """Most blocks one batch needs (a partly used block counts)."""
    return -(-trajectories_per_batch // block_rows)


def _check_geometry(sampler: Sampler, trajectories_per_batch: int, held_rows: int, free_blocks_when_copied: bool,
                    what: str) -> None:
    """A batch needs a trajectory; in sync mode the ``held_rows`` trajectories held at a time (``what``) are whole
    blocks."""
    if trajectories_per_batch < 1:
        raise ValueError(f"a training batch needs at least one trajectory, got {trajectories_per_batch}")
    if not free_blocks_when_copied and held_rows % sampler.block_rows != 0:
        raise ValueError(f"sync mode needs a whole number of blocks per {what}, blocks of {sampler.block_rows}")


def _split_off(data: TensorDict, rows: int) -> Tuple[TensorDict, Optional[TensorDict]]:
    """``data``'s first ``rows`` trajectories, and the rest (None when there is none)."""
    if data["rewards"].shape[0] > rows:
        return data[:rows], data[rows:]
    return data, None


class TrajectoryBatcher:
    """Collects blocks from ``sampler`` until ``trajectories_per_batch`` trajectories are there, then copies them."""

    def __init__(self, sampler: Sampler, trajectories_per_batch: int, free_blocks_when_copied: bool):
        _check_geometry(sampler, trajectories_per_batch, trajectories_per_batch, free_blocks_when_copied,
                        f"batch ({trajectories_per_batch} trajectories)")
        self.sampler = sampler
        self.trajectories_per_batch = trajectories_per_batch
        self.free_blocks_when_copied = free_blocks_when_copied
        self._pending: List[int] = []
        self._carried: Optional[TensorDict] = None  # copied trajectories left over from the previous batch

    def _carried_rows(self) -> int:
        return 0 if self._carried is None else int(self._carried["rewards"].shape[0])

    def blocks_missing(self) -> int:
        """How many more blocks the next batch needs."""
        rows_missing = self.trajectories_per_batch - self._carried_rows()
        return max(0, blocks_per_batch(rows_missing, self.sampler.block_rows) - len(self._pending))

    def add(self, blocks: Sequence[int]) -> None:
        """Completed blocks from the sampler."""
        self._pending.extend(blocks)

    def ready(self) -> bool:
        """Whether a whole batch can be taken."""
        return self.blocks_missing() == 0

    def take(self) -> Tuple[TensorDict, List[int]]:
        """``(batch, blocks to release after training)``; in async mode the blocks are already released."""
        if not self.ready():
            raise RuntimeError(f"take(): {self.blocks_missing()} more blocks are needed")
        blocks, self._pending = self._pending, []
        data = self.sampler.copy_blocks(blocks)
        if self.free_blocks_when_copied:
            self.sampler.release(blocks)
            blocks = []
        if self._carried is not None:
            data = cat_tensordicts([self._carried, data])
        batch, self._carried = _split_off(data, self.trajectories_per_batch)
        return batch, blocks


def rows_by_policy(data: TensorDict, num_policies: int) -> List[TensorDict]:
    """``data``'s trajectories (rows) split by the policy that acted in them: entry ``p`` holds, in order, the rows
    in which ``p`` took the most steps (ties: the lowest policy). A row usually acts for one policy for a whole
    rollout; in async mode the agent -> policy mapping may be redrawn at an episode end within it, and the steps
    of the other policy then stay in the row, masked out of training by the learner (``policy_id`` differs), as
    in Sample Factory. Steps an inactive agent took are marked -1; a row with no acting step belongs to nobody."""
    policy_ids = data["policy_id"]
    steps_by_policy = torch.stack([(policy_ids == policy).sum(dim=1) for policy in range(num_policies)], dim=1)
    owner = torch.where(steps_by_policy.amax(dim=1) > 0, steps_by_policy.argmax(dim=1), -1)
    return [data[torch.nonzero(owner == policy).squeeze(1)] for policy in range(num_policies)]


class PolicyTrajectoryBatcher:
    """Training batches for each of ``num_policies`` policies, from blocks whose rows act for different policies.

    Async mode: a block is copied and freed as soon as it arrives; its rows join their policy's pool, and a
    policy's batch is ready once its pool holds ``trajectories_per_batch`` trajectories (policies with fewer agents
    get theirs less often, as in Sample Factory). Sync mode: the blocks of one round, ``trajectories_per_batch``
    trajectories for every policy, are held until every policy has trained on its share; the agent -> policy
    mapping must then give each policy exactly that share (the configuration checks make it so).

    Only the first ``learning_policies`` policies (default: all) get batches; the rows of the others (frozen
    policies, ``pysf.algo.runners.frozen_policies``) are dropped.
    """

    def __init__(self, sampler: Sampler, trajectories_per_batch: int, num_policies: int, free_blocks_when_copied: bool,
                 learning_policies: Optional[int] = None):
        if num_policies < 2:
            raise ValueError(f"PolicyTrajectoryBatcher is for several policies (got {num_policies}): use TrajectoryBatcher")
        _check_geometry(sampler, trajectories_per_batch, trajectories_per_batch * num_policies, free_blocks_when_copied,
                        f"round ({num_policies} policies x {trajectories_per_batch} trajectories)")
        self.sampler = sampler
        self.trajectories_per_batch = trajectories_per_batch
        self.num_policies = num_policies
        self.learning_policies = num_policies if learning_policies is None else learning_policies
        self.free_blocks_when_copied = free_blocks_when_copied
        self._pending: List[int] = []  # sync mode: the round's blocks, held
        self._pools: List[List[TensorDict]] = [[] for _ in range(self.learning_policies)]
        self._pool_rows = [0] * self.learning_policies

    def blocks_missing(self) -> int:
        """How many more blocks to ask for (0 while a batch is ready). Async mode: enough for the policy nearest
        to a batch, were the rows spread evenly over the policies, up to one batch's worth."""
        if not self.free_blocks_when_copied:
            return max(0, blocks_per_batch(self.trajectories_per_batch * self.num_policies, self.sampler.block_rows)
                       - len(self._pending))
        if self._ready_policies():
            return 0
        rows_missing = min(self.trajectories_per_batch - rows for rows in self._pool_rows)
        # At most one batch's worth per request: the sampler holds no more blocks than that beyond its splits'
        # own, so a larger request would wait out its timeout.
        return min(blocks_per_batch(rows_missing * self.num_policies, self.sampler.block_rows),
                   blocks_per_batch(self.trajectories_per_batch, self.sampler.block_rows))

    def add(self, blocks: Sequence[int]) -> None:
        """Completed blocks from the sampler (async mode: copied into the policies' pools, then freed)."""
        if not blocks:
            return
        if not self.free_blocks_when_copied:
            self._pending.extend(blocks)
            return
        self._absorb(self.sampler.copy_blocks(blocks))
        self.sampler.release(blocks)

    def _absorb(self, data: TensorDict) -> None:
        for policy, rows in enumerate(rows_by_policy(data, self.num_policies)[: self.learning_policies]):
            count = int(rows["rewards"].shape[0])
            if count:
                self._pools[policy].append(rows)
                self._pool_rows[policy] += count

    def _ready_policies(self) -> List[int]:
        return [p for p, rows in enumerate(self._pool_rows) if rows >= self.trajectories_per_batch]

    def take_ready(self) -> Tuple[List[Tuple[int, TensorDict]], List[int]]:
        """``([(policy, batch), ...], blocks to release after training)``: every batch that is ready, lowest policy
        first (none yet: an empty list). Sync mode: all policies' batches of a complete round, and its blocks."""
        held: List[int] = []
        if not self.free_blocks_when_copied:
            if self.blocks_missing() > 0:
                return [], []
            held, self._pending = self._pending, []
            self._absorb(self.sampler.copy_blocks(held))
            shares = {p: rows for p, rows in enumerate(self._pool_rows) if rows != self.trajectories_per_batch}
            if shares:
                raise RuntimeError(
                    f"sync mode: a round of blocks gave the policies {self._pool_rows} trajectories, not "
                    f"{self.trajectories_per_batch} each; the agent -> policy mapping must split the agents evenly"
                )
        return [(policy, self._take(policy)) for policy in self._ready_policies()], held

    def _take(self, policy: int) -> TensorDict:
        """Policy ``policy``'s next batch (the oldest trajectories of its pool); the rest stays for its next one."""
        pool = self._pools[policy]
        data = pool[0] if len(pool) == 1 else cat_tensordicts(pool)
        batch, rest = _split_off(data, self.trajectories_per_batch)
        self._pools[policy] = [rest] if rest is not None else []
        self._pool_rows[policy] -= self.trajectories_per_batch
        return batch
