"""Running mean/std normalizers that live inside the model (and so in its checkpoint).

Same semantics and buffer names as Sample Factory: float64 ``running_mean``, ``running_var``, ``count``
updated with the parallel-variance merge in training mode; normalization happens in place.
Everything here compiles with TorchScript, so the native inference path runs the same code.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from gymnasium import spaces
from torch import Tensor, nn

_NORM_EPS = 1e-5
_DEFAULT_CLIP = 5.0
_STATS_CHUNK_ELEMENTS = 1 << 22  # values per float64 chunk when statistics are updated (32 MB)


def _update_mean_var_count_from_moments(
    mean: Tensor, var: Tensor, count: Tensor, batch_mean: Tensor, batch_var: Tensor, batch_count: int
) -> Tuple[Tensor, Tensor, Tensor]:
    """Merge batch moments into running moments (Chan et al.'s parallel algorithm)."""
    delta = batch_mean - mean
    tot_count = count + batch_count
    new_mean = mean + delta * batch_count / tot_count
    m_a = var * count
    m_b = batch_var * batch_count
    m2 = m_a + m_b + delta * delta * count * batch_count / tot_count
    new_var = m2 / tot_count
    return new_mean, new_var, tot_count


class RunningMeanStdInPlace(nn.Module):
    """Normalizes a tensor in place with running statistics (updated only in training mode).

    ``forward(x)`` computes ``clamp((x - mean) / sqrt(var + eps), -clip, clip)`` in place;
    ``forward(x, denormalize=True)`` inverts it: ``clamp(x, -clip, clip) * sqrt(var + eps) + mean``.
    ``per_channel`` keeps one statistic per channel of CHW/C inputs; ``norm_only`` scales without
    subtracting the mean.

    ``input_shape`` stays the tuple it was given (e.g. the observation space's ``shape``).
    """

    # Declared here so that TorchScript types them even when empty (a scalar observation, shape ()); spelled as
    # objects because this module's annotations are strings (``from __future__ import annotations``).
    __annotations__ = {"_shape_list": List[int], "stat_view": List[int]}

    def __init__(
        self,
        input_shape: Sequence[int],
        epsilon: float = _NORM_EPS,
        clip: float = _DEFAULT_CLIP,
        per_channel: bool = False,
        norm_only: bool = False,
    ):
        super().__init__()
        # As given (Sample Factory keeps the space's shape tuple); entries as Python ints for TorchScript.
        self.input_shape = tuple(int(s) for s in input_shape)
        shape: List[int] = list(self.input_shape)
        self._shape_list = shape  # the shape check in forward() compares lists
        self.eps: float = float(epsilon)
        self.stats_chunk_elements: int = _STATS_CHUNK_ELEMENTS
        self.clip: float = float(clip)
        self.norm_only: bool = norm_only
        self.per_channel: bool = per_channel
        if per_channel:
            if len(shape) == 3:  # CHW
                self.axis: List[int] = [0, 2, 3]
            elif len(shape) == 2:
                self.axis = [0, 2]
            elif len(shape) == 1:
                self.axis = [0]
            else:
                raise ValueError(f"per_channel normalization supports 1-3 dims, got shape {self.input_shape}")
            stat_shape = [shape[0]]
        else:
            self.axis = [0]
            stat_shape = shape
        # Broadcast shape of the statistics against [B, *input_shape].
        if per_channel:
            self.stat_view = [1, shape[0]] + [1] * (len(shape) - 1)
        else:
            self.stat_view = [1] + shape
        self.register_buffer("running_mean", torch.zeros(stat_shape, dtype=torch.float64))
        self.register_buffer("running_var", torch.ones(stat_shape, dtype=torch.float64))
        self.register_buffer("count", torch.ones([1], dtype=torch.float64))

    def forward(self, x: Tensor, denormalize: bool = False) -> None:
        """Normalize (or denormalize) ``x`` in place; update the statistics in training mode.

        ``x`` is ``[B, *input_shape]``; a normalizer of shape ``(1,)`` also takes ``[B]`` (as in Sample Factory).
        """
        if x.dim() == 1 and self._shape_list == [1]:
            x = x.view(-1, 1)  # a view: the in-place ops below still write into the caller's tensor
        if self.training and not denormalize:
            if list(x.shape[1:]) != self._shape_list:
                raise ValueError(
                    "RunningMeanStdInPlace: expected input of shape [B] + "
                    + str(self._shape_list)
                    + ", got "
                    + str(list(x.shape))
                )
            # float64 moments of the batch, merged chunk by chunk of rows: a float64 copy of a whole image batch
            # would take twice its memory, and one var_mean pass per cache-sized chunk is 2x faster than a mean
            # and a var over the whole batch (Pong's 1032 frames of 4x84x84: 280 instead of 560 ms on 1 core).
            new_mean, new_var, new_count = self.running_mean, self.running_var, self.count
            rows_per_chunk = max(1, self.stats_chunk_elements // max(1, x[0].numel()))
            for chunk in torch.split(x, rows_per_chunk):
                chunk_var, chunk_mean = torch.var_mean(chunk.to(torch.float64), self.axis, correction=0)
                # Number of values each statistic averages over.
                chunk_count = chunk.numel() // self._shape_list[0] if self.per_channel else chunk.shape[0]
                new_mean, new_var, new_count = _update_mean_var_count_from_moments(
                    new_mean, new_var, new_count, chunk_mean, chunk_var, chunk_count
                )
            # reshape: with a scalar input shape () the merge broadcasts against count's [1]
            self.running_mean.copy_(new_mean.reshape(self.running_mean.shape))
            self.running_var.copy_(new_var.reshape(self.running_var.shape))
            self.count.copy_(new_count)

        mean = self.running_mean.to(x.dtype).view(self.stat_view)
        std = torch.sqrt(self.running_var + self.eps).to(x.dtype).view(self.stat_view)
        if x.dim() == 4 and not self.per_channel and x.is_contiguous(memory_format=torch.channels_last):
            # Statistics in the images' own memory order: broadcasting NCHW statistics over channels-last images
            # runs 4x slower than over matching layouts.
            mean = mean.contiguous(memory_format=torch.channels_last)
            std = std.contiguous(memory_format=torch.channels_last)
        if denormalize:
            x.clamp_(-self.clip, self.clip)
            x.mul_(std)
            if not self.norm_only:
                x.add_(mean)
        else:
            if not self.norm_only:
                x.sub_(mean)
            x.div_(std)
            x.clamp_(-self.clip, self.clip)


class RunningMeanStdDictInPlace(nn.Module):
    """One ``RunningMeanStdInPlace`` per observation key (all keys, or only ``keys_to_normalize``)."""

    def __init__(
        self,
        obs_space: spaces.Dict,
        keys_to_normalize: Optional[List[str]] = None,
        epsilon: float = _NORM_EPS,
        clip: float = _DEFAULT_CLIP,
        per_channel: bool = False,
        norm_only: bool = False,
    ):
        super().__init__()
        if keys_to_normalize:
            unknown = sorted(set(keys_to_normalize) - set(obs_space.spaces.keys()))
            if unknown:
                raise ValueError(
                    f"--normalize_input_keys names {unknown}, which are not observation keys "
                    f"(available: {sorted(obs_space.spaces.keys())})"
                )
        self.running_mean_std = nn.ModuleDict(
            {
                k: RunningMeanStdInPlace(space.shape, epsilon, clip, per_channel, norm_only)
                for k, space in obs_space.spaces.items()
                if not keys_to_normalize or k in keys_to_normalize
            }
        )

    def forward(self, x: Dict[str, Tensor]) -> None:
        """Normalize every configured key of ``x`` in place."""
        for k, module in self.running_mean_std.items():
            module(x[k])


def running_mean_std_summaries(running_mean_std_module: nn.Module) -> Dict[str, Tensor]:
    """Scalar summaries of every running mean/std buffer of a module (eager or scripted), named as in Sample
    Factory: the last two parts of the buffer's name, e.g. ``obs_running_mean`` (the mean of
    ``running_mean_std.obs.running_mean``) and ``obs_running_std`` (the mean of ``sqrt(running_var + 1e-5)``);
    a bare ``RunningMeanStdInPlace`` gives ``running_mean`` / ``running_std``."""
    result: Dict[str, Tensor] = {}
    for name, buf in running_mean_std_module.named_buffers():
        short_name = "_".join(name.split(".")[-2:])
        if short_name.endswith("running_mean"):
            result[short_name] = buf.float().mean()
        elif short_name.endswith("running_var"):
            std_name = short_name[: -len("running_var")] + "running_std"
            result[std_name] = torch.sqrt(buf.float() + _NORM_EPS).mean()
    return result
