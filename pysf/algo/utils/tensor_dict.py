"""``TensorDict``: a dict of (nested dicts of) tensors indexable like one tensor.

String keys address entries; any other key (int, slice, tensor, tuple) indexes every leaf tensor and
returns a TensorDict of the results. Assigning with a non-string key copies into the leaves in place.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Tuple, Union

import numpy as np
import torch
from torch import Tensor


class TensorDict(dict):
    """Dict of tensors (or nested TensorDicts) that forwards indexing to every leaf."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(key)
        return TensorDict({k: v[key] for k, v in self.items()})

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, str):
            if isinstance(value, dict) and not isinstance(value, TensorDict):
                value = TensorDict(value)
            super().__setitem__(key, value)
            return
        if not isinstance(value, dict):
            raise TypeError(f"assigning to TensorDict[{key!r}] needs a dict of tensors, got {type(value)}")
        for k, v in value.items():
            if k not in self:
                raise KeyError(f"TensorDict has no key {k!r} (keys: {sorted(self.keys())})")
            self[k][key] = v

    def __getattr__(self, name: str) -> Any:
        # Sample Factory code reads batches as ``mb.actions``; only for existing keys.
        try:
            return super().__getitem__(name)
        except KeyError as exc:
            raise AttributeError(name) from exc

    def to(self, *args: Any, **kwargs: Any) -> "TensorDict":
        """Apply ``Tensor.to`` to every leaf."""
        return self.apply(lambda t: t.to(*args, **kwargs))

    def apply(self, fn: Callable[[Tensor], Tensor]) -> "TensorDict":
        """New TensorDict with ``fn`` applied to every leaf tensor."""
        return TensorDict({k: (v.apply(fn) if isinstance(v, TensorDict) else fn(v)) for k, v in self.items()})


def iterate_recursively(d: Dict[str, Any], prefix: str = "") -> Iterator[Tuple[Dict[str, Any], str, Any]]:
    """Yield ``(containing_dict, key, leaf)`` for every non-dict leaf."""
    for k, v in d.items():
        if isinstance(v, dict):
            yield from iterate_recursively(v, prefix)
        else:
            yield d, k, v


def clone_tensordict(d: Dict[str, Any]) -> TensorDict:
    """Deep copy of every leaf tensor."""
    return TensorDict({k: (clone_tensordict(v) if isinstance(v, dict) else v.clone()) for k, v in d.items()})


def shallow_recursive_copy(d: Dict[str, Any]) -> TensorDict:
    """Copy of the dict structure; leaves are shared."""
    return TensorDict({k: (shallow_recursive_copy(v) if isinstance(v, dict) else v) for k, v in d.items()})


def to_numpy(d: Union[Dict[str, Any], Tensor]) -> Any:
    """Convert every leaf tensor to a numpy array."""
    if isinstance(d, dict):
        return {k: to_numpy(v) for k, v in d.items()}
    if isinstance(d, Tensor):
        return d.detach().cpu().numpy()
    return np.asarray(d)


def cat_tensordicts(dicts: list, dim: int = 0) -> TensorDict:
    """Concatenate matching leaves of several TensorDicts."""
    first = dicts[0]
    return TensorDict(
        {
            k: (cat_tensordicts([d[k] for d in dicts], dim) if isinstance(v, dict) else torch.cat([d[k] for d in dicts], dim))
            for k, v in first.items()
        }
    )
