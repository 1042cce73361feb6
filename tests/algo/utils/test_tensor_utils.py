"""pysf.algo.utils.tensor_utils: tensor/numpy-agnostic helpers with Sample Factory's semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pysf.algo.utils.tensor_utils import (
    cat_tensors,
    clone_tensor,
    dict_of_lists_cat,
    ensure_numpy_array,
    ensure_torch_tensor,
    unsqueeze_tensor,
)


def test_clone_tensor():
    t = torch.arange(4.0, requires_grad=True) * 2
    c = clone_tensor(t)
    assert isinstance(c, torch.Tensor) and torch.equal(c, t)
    assert not c.requires_grad and c.data_ptr() != t.data_ptr(), "a detached copy"
    a = np.arange(4)
    ca = clone_tensor(a)
    assert isinstance(ca, np.ndarray) and not np.shares_memory(ca, a)
    np.testing.assert_array_equal(ca, a)


def test_unsqueeze_tensor():
    assert unsqueeze_tensor(torch.zeros(2, 3), 1).shape == (2, 1, 3)
    assert unsqueeze_tensor(torch.zeros(2, 3), -1).shape == (2, 3, 1)
    u = unsqueeze_tensor(np.zeros((2, 3)), 0)
    assert isinstance(u, np.ndarray) and u.shape == (1, 2, 3)


def test_cat_tensors():
    t = cat_tensors([torch.zeros(2, 3), torch.ones(1, 3)])
    assert isinstance(t, torch.Tensor) and t.shape == (3, 3) and t[2].sum() == 3
    a = cat_tensors([np.zeros((1, 2)), np.ones((2, 2))])
    assert isinstance(a, np.ndarray) and a.shape == (3, 2)
    with pytest.raises(ValueError):
        cat_tensors([])


def test_dict_of_lists_cat():
    d = {"t": [torch.tensor([1, 2]), torch.tensor([3])], "a": [np.array([1.0]), np.array([2.0, 3.0])]}
    assert dict_of_lists_cat(d) is None, "in place"
    assert torch.equal(d["t"], torch.tensor([1, 2, 3]))
    np.testing.assert_array_equal(d["a"], [1.0, 2.0, 3.0])


def test_ensure_torch_tensor():
    t = torch.zeros(3)
    assert ensure_torch_tensor(t) is t
    a = np.arange(3, dtype=np.float32)
    ta = ensure_torch_tensor(a)
    assert isinstance(ta, torch.Tensor) and ta.dtype == torch.float32
    a[0] = 42
    assert ta[0].item() == 42, "numpy arrays are wrapped without a copy (torch.from_numpy)"
    assert torch.equal(ensure_torch_tensor([1, 2]), torch.tensor([1, 2]))
    assert ensure_torch_tensor(np.float32(1.5)).item() == 1.5


def test_ensure_numpy_array():
    a = np.zeros(2)
    assert ensure_numpy_array(a) is a
    t = torch.zeros(3)
    n = ensure_numpy_array(t)
    assert isinstance(n, np.ndarray)
    t[1] = 5
    assert n[1] == 5, "CPU tensors are viewed without a copy"
    g = torch.ones(2, requires_grad=True)
    np.testing.assert_array_equal(ensure_numpy_array(g), [1.0, 1.0])
