"""Allocation of the trajectory buffers the native sampler fills.

The layout has one owner, ``kTrajectoryFields`` in csrc/buffers/trajectory_buffers.h, exported as
``pysf._C.trajectory_fields()``: this module allocates what that table lists, so adding a field is one line there.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Sequence

import numpy as np
import torch
from gymnasium import spaces

from pysf import _C
from pysf.algo.utils.action_distributions import calc_num_action_parameters, calc_num_actions
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.utils.typing import ActionSpace, ObsSpace


@functools.lru_cache(maxsize=None)
def _fields() -> tuple:
    return tuple(_C.trajectory_fields())


def trajectory_fields() -> List[Dict[str, Any]]:
    """The trajectory layout: one dict per tensor besides the observations (see ``pysf._C.trajectory_fields``)."""
    return [dict(field) for field in _fields()]


def env_worker_fields() -> List[str]:
    """The buffers env worker processes map besides ``obs`` (they write them, or read actions from them)."""
    return [field["name"] for field in _fields() if field["env_worker_view"]]


def _torch_dtype(space: spaces.Space) -> torch.dtype:
    return torch.from_numpy(np.zeros((), dtype=space.dtype)).dtype


def allocate_trajectory_buffers(
    obs_space: ObsSpace,
    action_space: ActionSpace,
    rnn_state_size: int,
    rollout: int,
    num_blocks: int,
    block_rows: int,
    shared_memory: bool = True,
) -> TensorDict:
    """``[num_blocks * block_rows, rollout(+1), ...]`` tensors, in shared memory when env processes write them."""
    rows = num_blocks * block_rows
    trailing_sizes = dict(
        rnn_state_size=rnn_state_size,
        num_actions=calc_num_actions(action_space),
        num_action_parameters=calc_num_action_parameters(action_space),
    )

    def full(shape: Sequence[int], value: float, dtype: torch.dtype) -> torch.Tensor:
        tensor = torch.full(tuple(shape), value, dtype=dtype)
        return tensor.share_memory_() if shared_memory else tensor

    obs: Dict[str, torch.Tensor] = {}
    for key, space in obs_space.spaces.items():
        dtype = _torch_dtype(space)
        obs[key] = full((rows, rollout + 1) + tuple(space.shape), _C.unwritten_observation_value(dtype), dtype)
    buffers = TensorDict(obs=TensorDict(obs))
    for field in _fields():
        steps = rollout + 1 if field["bootstrap_step"] else rollout
        trailing = () if field["trailing"] is None else (trailing_sizes[field["trailing"]],)
        buffers[field["name"]] = full((rows, steps) + trailing, field["initial_value"], field["dtype"])
    return buffers


def native_buffers_dict(buffers: TensorDict, block_rows: int) -> dict:
    """The dict ``pysf._C.Sampler`` takes."""
    result = {k: v for k, v in buffers.items() if k != "obs"}
    result["obs"] = dict(buffers["obs"])
    result["block_rows"] = block_rows
    return result


def block_row_index(blocks, block_rows: int) -> torch.Tensor:
    """Row indices of ``blocks`` (in order)."""
    blocks_t = torch.as_tensor(list(blocks), dtype=torch.int64)
    return (blocks_t[:, None] * block_rows + torch.arange(block_rows)[None, :]).reshape(-1)
