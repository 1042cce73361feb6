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

from pysf.algo.sampling.sampler import Sampler
from pysf.algo.utils.tensor_dict import TensorDict, cat_tensordicts


def blocks_per_batch(trajectories_per_batch: int, block_rows: int) -> int:
    """Most blocks one batch needs (a partly used block counts)."""
    return -(-trajectories_per_batch // block_rows)


class TrajectoryBatcher:
    """Collects blocks from ``sampler`` until ``trajectories_per_batch`` trajectories are there, then copies them."""

    def __init__(self, sampler: Sampler, trajectories_per_batch: int, free_blocks_when_copied: bool):
        if trajectories_per_batch < 1:
            raise ValueError(f"a training batch needs at least one trajectory, got {trajectories_per_batch}")
        if not free_blocks_when_copied and trajectories_per_batch % sampler.block_rows != 0:
            raise ValueError(
                f"sync mode needs a whole number of blocks per batch: {trajectories_per_batch} trajectories, "
                f"blocks of {sampler.block_rows}"
            )
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
        rows = self.trajectories_per_batch
        self._carried = data[rows:] if data["rewards"].shape[0] > rows else None
        return (data[:rows] if self._carried is not None else data), blocks
