"""pysf.utils.dicts: Sample Factory's nested-dict helpers."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch

from pysf.algo.utils.tensor_dict import TensorDict
from pysf.utils.dicts import (
    copy_dict_structure,
    dict_of_lists_append,
    dict_of_lists_append_idx,
    get_first_present,
    iter_dicts_recursively,
    iterate_recursively,
    iterate_recursively_with_prefix,
    list_of_dicts_to_dict_of_lists,
)


def nested() -> dict:
    return {"a": 1, "b": {"c": 2, "d": OrderedDict(e=3)}, "f": 4}


def test_dict_of_lists_append():
    d = {}
    dict_of_lists_append(d, {"x": 1, "y": "a"})
    dict_of_lists_append(d, {"x": 2})
    assert d == {"x": [1, 2], "y": ["a"]}


def test_dict_of_lists_append_idx():
    d = {"x": [0]}
    batched = {"x": [10, 11, 12], "y": torch.tensor([5, 6, 7])}
    dict_of_lists_append_idx(d, batched, 1)
    dict_of_lists_append_idx(d, batched, 2)
    assert d["x"] == [0, 11, 12]
    assert [int(v) for v in d["y"]] == [6, 7]


def test_iterate_recursively_yields_leaves_in_order_and_allows_replacement():
    d = nested()
    leaves = [(k, v) for _, k, v in iterate_recursively(d)]
    assert leaves == [("a", 1), ("c", 2), ("e", 3), ("f", 4)]
    for container, key, value in iterate_recursively(d):
        container[key] = value * 10
    assert d == {"a": 10, "b": {"c": 20, "d": OrderedDict(e=30)}, "f": 40}


def test_iterate_recursively_with_prefix():
    got = [(k, v, p) for _, k, v, p in iterate_recursively_with_prefix(nested())]
    assert got == [("a", 1, []), ("c", 2, ["b"]), ("e", 3, ["b", "d"]), ("f", 4, [])]
    got = [p for _, _, _, p in iterate_recursively_with_prefix({"x": {"y": 1}}, ["root"])]
    assert got == [["root", "x"]]


def test_copy_dict_structure_keeps_types_and_order():
    td = TensorDict(obs=TensorDict(img=torch.zeros(1)), plain={"z": 1, "y": 2})
    copy = copy_dict_structure(td)
    assert type(copy) is TensorDict and type(copy["obs"]) is TensorDict and type(copy["plain"]) is TensorDict
    assert copy == {"obs": {"img": None}, "plain": {"z": None, "y": None}}
    assert list(copy["plain"]) == ["z", "y"]
    od = copy_dict_structure(nested())
    assert type(od["b"]["d"]) is OrderedDict and od == {"a": None, "b": {"c": None, "d": {"e": None}}, "f": None}


def test_iter_dicts_recursively():
    d1 = {"a": 1, "b": {"c": 2}}
    d2 = {"a": 10, "b": {"c": 20, "extra": 0}, "more": 5}
    assert [(k, v1, v2) for _, _, k, v1, v2 in iter_dicts_recursively(d1, d2)] == [("a", 1, 10), ("c", 2, 20)]
    with pytest.raises(KeyError, match="'missing'"):
        list(iter_dicts_recursively({"missing": 1}, d2))


def test_list_of_dicts_to_dict_of_lists():
    lst = [{"a": 1, "b": {"c": 2}}, {"a": 3, "b": {"c": 4}}, {"a": 5, "b": {"c": 6}}]
    assert list_of_dicts_to_dict_of_lists(lst) == {"a": [1, 3, 5], "b": {"c": [2, 4, 6]}}
    assert list_of_dicts_to_dict_of_lists([]) == {}
    # keys missing in later dicts give shorter lists; keys the first dict lacks are an error
    assert list_of_dicts_to_dict_of_lists([{"a": 1, "b": 2}, {"a": 3}]) == {"a": [1, 3], "b": [2]}
    with pytest.raises(KeyError):
        list_of_dicts_to_dict_of_lists([{"a": 1}, {"a": 2, "new": 3}])


def test_get_first_present():
    d = {"b": 2, "c": None}
    assert get_first_present(d, ["a", "b", "c"]) == 2
    assert get_first_present(d, ["c", "b"]) is None, "a present key wins even when its value is None"
    assert get_first_present(d, ["x", "y"]) is None
    assert get_first_present(d, ["x"], default=7) == 7
    assert get_first_present(d, iter(["zz", "b"])) == 2
