"""Helpers that treat torch tensors and numpy arrays alike (``sample_factory.algo.utils.tensor_utils``).

Each function keeps the kind of its input: a tensor gives a tensor, an array gives an array.
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "clone_tensor",
    "unsqueeze_tensor",
    "cat_tensors",
    "dict_of_lists_cat",
    "ensure_torch_tensor",
    "ensure_numpy_array",
]

TensorOrArray = Union[Tensor, np.ndarray]


def clone_tensor(t: TensorOrArray) -> TensorOrArray:
    """A copy that shares no memory with ``t`` (a tensor copy is detached from the autograd graph)."""
    if isinstance(t, Tensor):
        return t.clone().detach()
    return np.copy(t)


def unsqueeze_tensor(t: TensorOrArray, dim: int) -> TensorOrArray:
    """``t`` with a new dimension of size 1 at ``dim`` (``Tensor.unsqueeze`` / ``np.expand_dims``)."""
    if isinstance(t, Tensor):
        return t.unsqueeze(dim)
    return np.expand_dims(t, dim)


def cat_tensors(lt: List[TensorOrArray]) -> TensorOrArray:
    """Concatenate along the first dimension; the first element decides between ``torch.cat`` and
    ``np.concatenate``."""
    if not lt:
        raise ValueError("cat_tensors needs at least one tensor or array")
    if isinstance(lt[0], Tensor):
        return torch.cat(lt)
    return np.concatenate(lt)


def dict_of_lists_cat(d: Dict[Any, Union[List[TensorOrArray], TensorOrArray]]) -> None:
    """Replace every list of tensors/arrays in ``d`` by their concatenation (in place; e.g. after collecting
    batches with :func:`pysf.utils.dicts.dict_of_lists_append`)."""
    for key, x in d.items():
        d[key] = cat_tensors(x)


def ensure_torch_tensor(t: Any) -> Tensor:
    """``t`` as a tensor: tensors are returned as they are, numpy arrays are wrapped without a copy
    (``torch.from_numpy``, sharing memory), anything else (scalars, lists, numpy scalars) goes through
    ``torch.as_tensor``."""
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray):
        return torch.from_numpy(t)
    return torch.as_tensor(t)


def ensure_numpy_array(t: TensorOrArray) -> np.ndarray:
    """``t`` as a numpy array: arrays as they are, CPU tensors without a copy (sharing memory); tensors on
    another device are copied to the CPU and tensors that require grad are detached first."""
    if isinstance(t, Tensor):
        return t.detach().cpu().numpy()
    return t
