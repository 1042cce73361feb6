"""``TensorDict``: a dict of (nested dicts of) tensors or numpy arrays, indexable like one tensor
(Sample Factory's ``sample_factory.algo.utils.tensor_dict``).

String keys address entries; any other key (int, slice, tensor, numpy array, list, tuple) indexes every leaf and
returns a TensorDict of the results. Assigning with a non-string key writes into the leaves in place, converting
between tensors and numpy arrays as needed. Leaves may be torch tensors or numpy arrays, mixed freely.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np
import torch
from torch import Tensor

from pysf.algo.utils.misc import MAGIC_FLOAT
from pysf.algo.utils.tensor_utils import clone_tensor, ensure_numpy_array
from pysf.utils.dicts import (
    copy_dict_structure,
    iter_dicts_recursively,
    iterate_recursively,
    list_of_dicts_to_dict_of_lists,
)
from pysf.utils.utils import log

__all__ = [
    "TensorDict",
    "iterate_recursively",
    "clone_tensordict",
    "shallow_recursive_copy",
    "tensor_dict_to_numpy",
    "to_numpy",
    "cat_tensordicts",
    "find_invalid_data",
]


def _index_leaves(x: Any, index: Any) -> Any:
    if isinstance(x, dict):
        return TensorDict({k: _index_leaves(v, index) for k, v in x.items()})
    return x[index]


def _write_leaves(target: Any, index: Any, new_data: Any, path: str) -> None:
    if isinstance(new_data, dict):
        if not isinstance(target, dict):
            raise TypeError(f"TensorDict[{path}] is a {type(target).__name__}, cannot assign a dict into it")
        for k, v in new_data.items():
            if k not in target:
                where = path or "the top level"
                raise KeyError(f"TensorDict has no key {k!r} at {where} (keys: {sorted(target.keys())})")
            _write_leaves(target[k], index, v, f"{path}.{k}" if path else str(k))
        return
    if isinstance(target, Tensor):
        if isinstance(new_data, np.ndarray):
            # np.ascontiguousarray: torch.from_numpy rejects negative strides (e.g. flipped images).
            new_data = torch.from_numpy(np.ascontiguousarray(new_data))
        if isinstance(new_data, Tensor):
            new_data = new_data.to(target.device)
        target[index] = new_data
    elif isinstance(target, np.ndarray):
        target[index] = ensure_numpy_array(new_data) if isinstance(new_data, Tensor) else new_data
    else:
        raise TypeError(f"TensorDict leaf {path!r} is a {type(target).__name__}, not a tensor or numpy array")


class TensorDict(dict):
    """Dict of tensors/numpy arrays (or nested dicts of them) that forwards non-string indexing to every leaf.

    ``td["obs"]`` is an entry; ``td[:, 3]``, ``td[mask]``, ``td[idx_array]`` index every leaf and return a new
    TensorDict (views or copies exactly as the leaves' own indexing gives them). ``td[:, 3] = step_data`` (a dict
    with some of the keys, tensors or numpy arrays) writes into the leaves in place. ``td.key`` reads an existing
    entry; ``dict`` methods take precedence (read a key named ``values`` with ``td["values"]``).
    """

    # Keys of this type address entries; anything else indexes the leaves.
    dict_key_type = str

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, self.dict_key_type):
            return super().__getitem__(key)
        return _index_leaves(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, self.dict_key_type):
            if isinstance(value, dict) and not isinstance(value, TensorDict):
                value = TensorDict(value)
            super().__setitem__(key, value)
            return
        if not isinstance(value, dict):
            raise TypeError(
                f"assigning to TensorDict[{key!r}] needs a dict of tensors/arrays keyed like the TensorDict, "
                f"got {type(value).__name__}"
            )
        _write_leaves(self, key, value, "")

    def __getattr__(self, name: str) -> Any:
        # Sample Factory code reads batches as ``mb.actions``; only for existing keys.
        try:
            return super().__getitem__(name)
        except KeyError as exc:
            raise AttributeError(name) from exc

    def to(self, *args: Any, **kwargs: Any) -> "TensorDict":
        """Apply ``Tensor.to`` to every leaf (all leaves must be tensors)."""

        def leaf_to(t: Any) -> Tensor:
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDict.to() needs tensor leaves, found a {type(t).__name__}; convert numpy leaves with "
                    "td.apply(pysf.algo.utils.tensor_utils.ensure_torch_tensor) first"
                )
            return t.to(*args, **kwargs)

        return self.apply(leaf_to)

    def apply(self, fn: Callable[[Any], Any]) -> "TensorDict":
        """New TensorDict of the same structure with ``fn`` applied to every leaf."""
        return TensorDict({k: (TensorDict(v).apply(fn) if isinstance(v, dict) else fn(v)) for k, v in self.items()})


def _as_tensordicts(d: Dict[Any, Any]) -> TensorDict:
    """``d`` with every (nested) dictionary turned into a TensorDict; leaves shared."""
    return TensorDict({k: (_as_tensordicts(v) if isinstance(v, dict) else v) for k, v in d.items()})


def clone_tensordict(d: Dict[str, Any]) -> TensorDict:
    """Deep copy: every leaf copied (tensors detached from autograd), every dictionary a TensorDict."""
    clone = copy_dict_structure(d)
    for _, target, key, value, _ in iter_dicts_recursively(d, clone):
        target[key] = clone_tensor(value)
    return _as_tensordicts(clone)


def shallow_recursive_copy(d: Dict[str, Any]) -> TensorDict:
    """New dictionaries all the way down (TensorDicts), sharing the leaves with ``d``."""
    return _as_tensordicts(d)


def tensor_dict_to_numpy(d: Dict[str, Any]) -> Dict[str, Any]:
    """Same structure (and dictionary types) with every leaf a numpy array (CPU tensors share memory)."""
    result = copy_dict_structure(d)
    for _, target, key, value, _ in iter_dicts_recursively(d, result):
        target[key] = ensure_numpy_array(value) if isinstance(value, Tensor) else np.asarray(value)
    return result


def to_numpy(t: Union[Dict[str, Any], Tensor, Any]) -> Any:
    """A dict (TensorDict) of leaves or a single tensor, converted to numpy (see :func:`tensor_dict_to_numpy`)."""
    if isinstance(t, dict):
        return tensor_dict_to_numpy(t)
    if isinstance(t, Tensor):
        return ensure_numpy_array(t)
    return np.asarray(t)


def cat_tensordicts(lst: List[Dict[str, Any]], dim: int = 0) -> TensorDict:
    """Concatenate matching leaves of several TensorDicts along ``dim`` (``torch.cat`` for tensor leaves,
    ``np.concatenate`` for numpy leaves). The structure follows the first dictionary; ``[]`` gives an empty
    TensorDict.

    Raises:
        TypeError: a leaf that is neither a tensor nor a numpy array, or one key with both kinds of leaves.
    """
    if not lst:
        return TensorDict()
    collected = list_of_dicts_to_dict_of_lists(lst)
    for d, key, values in iterate_recursively(collected):
        if all(isinstance(v, Tensor) for v in values):
            d[key] = torch.cat(values, dim)
        elif all(isinstance(v, np.ndarray) for v in values):
            d[key] = np.concatenate(values, axis=dim)
        else:
            kinds = sorted({type(v).__name__ for v in values})
            raise TypeError(
                f"cat_tensordicts: the leaves under key {key!r} must be all tensors or all numpy arrays, got {kinds}"
            )
    return _as_tensordicts(collected)


def find_invalid_data(
    t: Dict[str, Any], msg: Optional[str] = None, keys: Optional[Iterable[str]] = None
) -> Dict[str, Tensor]:
    """Look for bad values in the floating-point tensor leaves of ``t`` (only leaves named in ``keys``, if
    given), logging an error for each finding.

    Returns ``{leaf key: finding}``: the indices (``nonzero()``) of entries equal to ``MAGIC_FLOAT`` (never
    written), else a bool mask of NaN/inf entries. Integer leaves are not checked: ``MAGIC_INT`` (43) is also an
    ordinary value there (Sample Factory's check of integer leaves never runs either).
    """
    result: Dict[str, Tensor] = {}
    msg = msg or "Check"
    for _, key, value in iterate_recursively(t):
        if keys is not None and key not in keys:
            continue
        if not isinstance(value, Tensor) or not torch.is_floating_point(value):
            continue
        non_finite = ~torch.isfinite(value)
        if non_finite.any():
            log.error("%s: Found NaNs or infs in %s: %s", msg, key, value)
            result[key] = non_finite
        invalid_idx = (value == MAGIC_FLOAT).nonzero()
        if invalid_idx.numel() > 0:
            result[key] = invalid_idx
            log.error("%s: Found invalid data in %s at %s (numel=%d)", msg, key, invalid_idx, invalid_idx.numel())
    return result
