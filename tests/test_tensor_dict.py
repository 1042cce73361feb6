"""TensorDict (pysf.algo.utils.tensor_dict): Sample Factory's dict-of-tensors with tensor-like indexing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pysf.algo.utils.tensor_dict import (
    TensorDict,
    cat_tensordicts,
    clone_tensordict,
    iterate_recursively,
    shallow_recursive_copy,
    to_numpy,
)


def make_td() -> TensorDict:
    return TensorDict(
        {
            "obs": TensorDict({"img": torch.arange(6 * 2 * 3).reshape(6, 2, 3).float(), "vec": torch.arange(6 * 4).reshape(6, 4)}),
            "actions": torch.arange(6),
            "rewards": torch.linspace(0, 1, 6),
        }
    )


def test_is_a_dict():
    td = make_td()
    assert isinstance(td, dict)
    assert set(td.keys()) == {"obs", "actions", "rewards"}
    assert isinstance(td["obs"], TensorDict)
    assert torch.equal(td["actions"], torch.arange(6))


def test_string_key_returns_entry_not_copy():
    td = make_td()
    assert td["actions"] is td["actions"]
    td["actions"][0] = 100
    assert td["actions"][0].item() == 100


def test_missing_string_key_raises_keyerror():
    with pytest.raises(KeyError):
        make_td()["nope"]


def test_attribute_access():
    td = make_td()
    assert td.actions is td["actions"]
    assert td.obs.img is td["obs"]["img"]
    with pytest.raises(AttributeError):
        td.nope


@pytest.mark.parametrize(
    "index",
    [
        2,
        -1,
        slice(1, 4),
        slice(None, None, 2),
        torch.tensor([0, 3, 5]),
        torch.tensor([True, False, True, False, False, True]),
        np.array([1, 2]),
        [4, 0],
    ],
    ids=["int", "neg_int", "slice", "step_slice", "long_tensor", "bool_tensor", "numpy", "list"],
)
def test_non_string_index_applies_to_every_leaf(index):
    td = make_td()
    sub = td[index]
    assert isinstance(sub, TensorDict)
    assert isinstance(sub["obs"], TensorDict), "nested dicts stay TensorDicts"
    assert torch.equal(sub["actions"], td["actions"][index])
    assert torch.equal(sub["rewards"], td["rewards"][index])
    assert torch.equal(sub["obs"]["img"], td["obs"]["img"][index])
    assert torch.equal(sub["obs"]["vec"], td["obs"]["vec"][index])


def test_tuple_index():
    td = TensorDict({"a": torch.arange(12).reshape(3, 4), "b": torch.arange(24).reshape(3, 4, 2)})
    sub = td[1:, 2]
    assert torch.equal(sub["a"], torch.tensor([6, 10]))
    assert torch.equal(sub["b"], td["b"][1:, 2])


def test_slice_is_a_view_int_index_reads():
    td = make_td()
    sub = td[1:3]
    sub["actions"][0] = -7
    assert td["actions"][1].item() == -7, "basic slicing gives views, as with tensors"
    picked = td[torch.tensor([1, 2])]
    picked["actions"][0] = 55
    assert td["actions"][1].item() == -7, "advanced indexing copies, as with tensors"


def test_setitem_with_index_copies_in_place():
    td = make_td()
    actions = td["actions"]
    td[torch.tensor([0, 2])] = {"actions": torch.tensor([10, 20]), "rewards": torch.tensor([5.0, 6.0])}
    assert td["actions"] is actions, "leaves are written in place"
    assert td["actions"].tolist() == [10, 1, 20, 3, 4, 5]
    assert td["rewards"][2].item() == 6.0
    td[1:3] = TensorDict({"obs": {"vec": torch.zeros(2, 4, dtype=torch.int64)}})
    assert (td["obs"]["vec"][1:3] == 0).all() and (td["obs"]["vec"][0] != 0).any()
    td[5] = {"actions": torch.tensor(-1)}
    assert td["actions"][5].item() == -1


def test_setitem_string_key_wraps_dicts():
    td = TensorDict()
    td["x"] = {"a": torch.zeros(2)}
    assert isinstance(td["x"], TensorDict)
    td["y"] = torch.ones(3)
    assert torch.equal(td["y"], torch.ones(3))
    td["y"] = torch.zeros(1)  # plain replace
    assert torch.equal(td["y"], torch.zeros(1))


def test_setitem_errors():
    td = make_td()
    with pytest.raises(KeyError, match="nope"):
        td[0] = {"nope": torch.tensor(1)}
    with pytest.raises(TypeError):
        td[0] = torch.tensor(1)


def test_to_and_apply():
    td = make_td()
    d = td.to(torch.float64)
    assert isinstance(d, TensorDict) and isinstance(d["obs"], TensorDict)
    assert d["actions"].dtype == torch.float64 and d["obs"]["vec"].dtype == torch.float64
    assert td["actions"].dtype == torch.int64, "original untouched"
    doubled = td.apply(lambda t: t * 2)
    assert torch.equal(doubled["obs"]["img"], td["obs"]["img"] * 2)


def test_helpers():
    td = make_td()
    leaves = {k: v for _, k, v in iterate_recursively(td)}
    assert set(leaves) == {"img", "vec", "actions", "rewards"}
    for d, k, v in iterate_recursively(td):
        assert d[k] is v

    c = clone_tensordict(td)
    assert isinstance(c, TensorDict) and isinstance(c["obs"], TensorDict)
    c["obs"]["img"][0] = -1
    assert (td["obs"]["img"][0] != -1).all()

    s = shallow_recursive_copy(td)
    assert s is not td and s["obs"] is not td["obs"]
    assert s["obs"]["img"] is td["obs"]["img"]

    n = to_numpy(td)
    assert isinstance(n["obs"]["img"], np.ndarray)
    np.testing.assert_array_equal(n["actions"], np.arange(6))

    cat = cat_tensordicts([td[:2], td[4:]])
    assert torch.equal(cat["actions"], torch.tensor([0, 1, 4, 5]))
    assert cat["obs"]["img"].shape == (4, 2, 3)


def test_model_output_style_usage():
    """How the learner/inference code uses model outputs: index rows, read keys and attributes."""
    out = TensorDict({"values": torch.randn(8), "actions": torch.randint(0, 3, (8,)), "new_rnn_states": torch.randn(8, 4)})
    rows = out[torch.tensor([True] * 4 + [False] * 4)]
    assert rows["values"].shape == (4,)
    assert rows.actions.shape == (4,)
    assert rows["new_rnn_states"].shape == (4, 4)
    # dict methods win over attribute access to same-named keys: read "values" with [].
    assert callable(rows.values)
