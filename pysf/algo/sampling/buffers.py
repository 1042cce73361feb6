"""Allocation of the trajectory buffers the native sampler fills (layout: csrc/buffers/trajectory_buffers.h)."""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from gymnasium import spaces

from pysf.algo.utils.action_distributions import calc_num_action_parameters, calc_num_actions
from pysf.algo.utils.tensor_dict import TensorDict
from pysf.utils.typing import ActionSpace, ObsSpace

# Values that expose reads of never-written data (as in Sample Factory).
_FLOAT_SENTINEL = -4242.42
_INT_SENTINEL = 43


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
    t = rollout

    def full(shape, value, dtype):
        tensor = torch.full(shape, value, dtype=dtype)
        return tensor.share_memory_() if shared_memory else tensor

    obs: Dict[str, torch.Tensor] = {}
    for key, space in obs_space.spaces.items():
        dtype = _torch_dtype(space)
        sentinel = _FLOAT_SENTINEL if dtype.is_floating_point else _INT_SENTINEL
        obs[key] = full((rows, t + 1) + tuple(space.shape), sentinel if dtype != torch.bool else False, dtype)
    buffers = TensorDict(
        obs=TensorDict(obs),
        rnn_states=full((rows, t + 1, rnn_state_size), _FLOAT_SENTINEL, torch.float32),
        actions=full((rows, t, calc_num_actions(action_space)), _FLOAT_SENTINEL, torch.float32),
        action_logits=full((rows, t, calc_num_action_parameters(action_space)), _FLOAT_SENTINEL, torch.float32),
        log_prob_actions=full((rows, t), _FLOAT_SENTINEL, torch.float32),
        values=full((rows, t + 1), _FLOAT_SENTINEL, torch.float32),
        rewards=full((rows, t), _FLOAT_SENTINEL, torch.float32),
        dones=full((rows, t), True, torch.bool),
        time_outs=full((rows, t), True, torch.bool),
        policy_version=full((rows, t), -1, torch.int32),
        policy_id=full((rows, t), -1, torch.int32),
        valids=full((rows, t + 1), False, torch.bool),
    )
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
