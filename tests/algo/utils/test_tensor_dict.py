"""TensorDict (pysf.algo.utils.tensor_dict): Sample Factory's dict-of-tensors with tensor-like indexing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pysf.algo.utils.misc import MAGIC_FLOAT, MAGIC_INT
from pysf.algo.utils.tensor_dict import (
    TensorDict,
    cat_tensordicts,
    clone_tensordict,
    find_invalid_data,
    iterate_recursively,
    shallow_recursive_copy,
    tensor_dict_to_numpy,
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


# ------------------------------------------------------------------------------------------------
# numpy leaves, nested plain dicts and the other helpers, as in Sample Factory
# ------------------------------------------------------------------------------------------------


def make_numpy_td() -> TensorDict:
    return TensorDict(
        {
            "obs": {"pos": np.arange(6 * 2).reshape(6, 2).astype(np.float32)},  # a plain nested dict
            "rewards": np.linspace(0, 1, 6),
            "actions": torch.arange(6),  # mixed with a tensor leaf
        }
    )


@pytest.mark.parametrize(
    "index",
    [3, slice(1, 5, 2), np.array([0, 5]), np.array([True, False, True, False, False, True]), [1, 1]],
    ids=["int", "slice", "int_array", "bool_array", "list"],
)
def test_numpy_leaves_are_indexed_too(index):
    td = make_numpy_td()
    sub = td[index]
    assert isinstance(sub, TensorDict) and isinstance(sub["obs"], TensorDict), "nested plain dicts are walked into"
    # numpy leaves stay numpy (a scalar for an int index into a 1-D array, as numpy gives it)
    assert isinstance(sub["rewards"], (np.ndarray, np.generic)) and isinstance(sub["obs"]["pos"], np.ndarray)
    np.testing.assert_array_equal(sub["rewards"], td["rewards"][index])
    np.testing.assert_array_equal(sub["obs"]["pos"], td["obs"]["pos"][index])
    assert torch.equal(sub["actions"], td["actions"][index])


def test_numpy_slices_are_views():
    td = make_numpy_td()
    td[2:4]["rewards"][:] = -1.0
    np.testing.assert_array_equal(td["rewards"][2:4], [-1.0, -1.0])


def test_sample_factory_rollout_buffer_usage():
    """Sample Factory's own TensorDict test: write one rollout step of every agent, read slices back."""
    n_agents, n_obs, rollout = 16, 5, 8
    d = TensorDict()
    d["observations"] = TensorDict(pos=torch.rand(n_agents, rollout, n_obs), vel=torch.rand(n_agents, rollout, n_obs))
    d["rewards"] = torch.ones(n_agents, rollout)
    d["dones"] = torch.zeros(n_agents, rollout)
    step_data = dict(
        observations=dict(pos=torch.ones(n_agents, n_obs), vel=torch.zeros(n_agents, n_obs)),
        rewards=torch.zeros(n_agents),
        dones=torch.ones(n_agents),
    )
    d[:, 3] = step_data
    step = d[:, 3]
    assert step["dones"][0].item() == 1.0 and step["rewards"][5].item() == 0.0
    assert step["observations"]["vel"][7, 0].item() == 0.0
    odd_agents = d[1::2]
    assert odd_agents["observations"]["pos"].shape == (n_agents // 2, rollout, n_obs)
    # numpy arrays can be assigned into tensor leaves (and write through the view into d)
    odd_agents[:] = dict(rewards=np.arange((n_agents // 2) * rollout).reshape(n_agents // 2, rollout))
    assert d[1]["rewards"].equal(odd_agents[0]["rewards"]) and d[3]["rewards"].equal(odd_agents[1]["rewards"])
    assert d[3]["rewards"][0].item() == rollout


def test_setitem_converts_between_tensors_and_numpy():
    td = make_numpy_td()
    # tensor data into numpy leaves, numpy data into tensor leaves, nested plain dicts included
    td[np.array([0, 2])] = {"rewards": torch.tensor([7.0, 8.0]), "obs": {"pos": torch.full((2, 2), -1.0)}}
    td[1:3] = {"actions": np.array([40, 50])}
    assert isinstance(td["rewards"], np.ndarray) and td["rewards"][[0, 2]].tolist() == [7.0, 8.0]
    assert (td["obs"]["pos"][[0, 2]] == -1).all() and (td["obs"]["pos"][1] != -1).all()
    assert td["actions"].tolist() == [0, 40, 50, 3, 4, 5]
    # advanced indices write into the leaves (not into a temporary copy)
    td[torch.tensor([5])] = {"actions": torch.tensor([99])}
    assert td["actions"][5].item() == 99
    # negative-stride numpy data (e.g. a flipped image) is accepted
    td[0:2] = {"actions": np.array([1, 2])[::-1]}
    assert td["actions"][:2].tolist() == [2, 1]


def test_setitem_into_a_non_dict_leaf_raises():
    td = make_numpy_td()
    with pytest.raises(TypeError, match="rewards"):
        td[0] = {"rewards": {"x": 1.0}}


def test_to_requires_tensor_leaves():
    with pytest.raises(TypeError, match="numpy"):
        make_numpy_td().to(torch.float64)


def test_cat_tensordicts_numpy_leaves():
    a, b = make_numpy_td(), make_numpy_td()
    cat = cat_tensordicts([a[:2], b[4:]])
    assert isinstance(cat, TensorDict) and isinstance(cat["obs"], TensorDict)
    assert isinstance(cat["rewards"], np.ndarray) and isinstance(cat["actions"], torch.Tensor)
    np.testing.assert_array_equal(cat["rewards"], np.concatenate([a["rewards"][:2], b["rewards"][4:]]))
    assert cat["obs"]["pos"].shape == (4, 2) and cat["actions"].tolist() == [0, 1, 4, 5]
    # along another dim
    two = cat_tensordicts([TensorDict(x=np.zeros((2, 1))), TensorDict(x=np.ones((2, 3)))], dim=1)
    assert two["x"].shape == (2, 4)
    assert cat_tensordicts([]) == {} and isinstance(cat_tensordicts([]), TensorDict)


def test_cat_tensordicts_rejects_mixed_or_unsupported_leaves():
    with pytest.raises(TypeError, match="'x'"):
        cat_tensordicts([TensorDict(x=torch.zeros(1)), TensorDict(x=np.zeros(1))])
    with pytest.raises(TypeError, match="'y'"):
        cat_tensordicts([TensorDict(y=[1]), TensorDict(y=[2])])


def test_to_numpy_keeps_the_structure():
    td = make_td()
    n = to_numpy(td)
    assert isinstance(n, TensorDict) and isinstance(n["obs"], TensorDict), "a TensorDict stays a TensorDict"
    assert isinstance(n["actions"], np.ndarray)
    td["actions"][0] = 123
    assert n["actions"][0] == 123, "CPU tensors are converted without a copy"
    assert isinstance(to_numpy({"a": torch.zeros(1)}), dict)
    assert isinstance(to_numpy(torch.zeros(2)), np.ndarray)
    mixed = tensor_dict_to_numpy(make_numpy_td())
    assert all(isinstance(v, np.ndarray) for _, _, v in iterate_recursively(mixed))


def test_clone_tensordict_numpy_leaves_and_detach():
    td = make_numpy_td()
    td["grad"] = torch.ones(2, requires_grad=True) * 3
    c = clone_tensordict(td)
    assert isinstance(c["obs"], TensorDict)
    c["obs"]["pos"][0] = -5
    c["rewards"][0] = -5
    assert (td["obs"]["pos"][0] != -5).all() and td["rewards"][0] != -5
    assert not c["grad"].requires_grad, "cloned tensors are detached, as in Sample Factory"


def test_find_invalid_data(caplog):
    td = TensorDict(
        good=torch.zeros(3),
        nan=torch.tensor([0.0, float("nan"), float("inf")]),
        unwritten=TensorDict(values=torch.tensor([1.0, MAGIC_FLOAT, 2.0, MAGIC_FLOAT])),
        ints=torch.full((2,), MAGIC_INT),
        arr=np.array([np.nan]),
    )
    found = find_invalid_data(td, msg="Batch")
    assert set(found) == {"nan", "values"}, "int and numpy leaves are not checked"
    assert found["nan"].tolist() == [False, True, True]
    assert found["values"].flatten().tolist() == [1, 3]
    assert any("Batch" in r.getMessage() for r in caplog.records)
    assert find_invalid_data(td, keys=["good", "values"]).keys() == {"values"}
    assert find_invalid_data(TensorDict(x=torch.ones(2))) == {}
