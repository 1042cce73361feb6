"""Helpers for (nested) dictionaries, with Sample Factory's names (``sample_factory.utils.dicts``).

A "leaf" is any value that is not itself a ``dict`` (``TensorDict`` and ``OrderedDict`` are dicts, so they are
walked into). Nested dictionaries keep their own type when a structure is copied.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

__all__ = [
    "dict_of_lists_append",
    "dict_of_lists_append_idx",
    "iterate_recursively",
    "iterate_recursively_with_prefix",
    "copy_dict_structure",
    "iter_dicts_recursively",
    "list_of_dicts_to_dict_of_lists",
    "get_first_present",
]


def dict_of_lists_append(d: Dict[Any, List], new_data: Mapping[Any, Any]) -> None:
    """Append every value of ``new_data`` to the list ``d[key]`` (a new one-element list for a new key)."""
    for key, value in new_data.items():
        if key in d:
            d[key].append(value)
        else:
            d[key] = [value]


def dict_of_lists_append_idx(d: Dict[Any, List], new_data: Mapping[Any, Any], index: Any) -> None:
    """Like :func:`dict_of_lists_append`, appending ``value[index]`` (e.g. one env's row of batched data)."""
    for key, value in new_data.items():
        if key in d:
            d[key].append(value[index])
        else:
            d[key] = [value[index]]


def iterate_recursively(d: Mapping[Any, Any]) -> Iterator[Tuple[Any, Any, Any]]:
    """Yield ``(containing_dict, key, leaf)`` for every leaf of ``d``, depth first, in insertion order.

    ``containing_dict[key] = new_value`` replaces a leaf in place while iterating.
    """
    for key, value in d.items():
        if isinstance(value, dict):
            yield from iterate_recursively(value)
        else:
            yield d, key, value


def iterate_recursively_with_prefix(
    d: Mapping[Any, Any], prefix: Optional[List[Any]] = None
) -> Iterator[Tuple[Any, Any, Any, List[Any]]]:
    """Like :func:`iterate_recursively`, also yielding the list of keys leading to the leaf's dictionary
    (``[]`` for leaves at the top level; the leaf's own key is not included)."""
    path = [] if prefix is None else prefix
    for key, value in d.items():
        if isinstance(value, dict):
            yield from iterate_recursively_with_prefix(value, path + [key])
        else:
            yield d, key, value, path


def copy_dict_structure(d: Mapping[Any, Any]) -> Any:
    """A new dictionary with the same nesting and key order as ``d`` and ``None`` in place of every leaf.

    Each (nested) dictionary of the copy has the type of the one it mirrors (``TensorDict`` stays ``TensorDict``).
    """
    copy = type(d)()
    for key, value in d.items():
        copy[key] = copy_dict_structure(value) if isinstance(value, dict) else None
    return copy


def iter_dicts_recursively(
    d1: Mapping[Any, Any], d2: Mapping[Any, Any]
) -> Iterator[Tuple[Any, Any, Any, Any, Any]]:
    """Walk two dictionaries in step, following ``d1``'s structure: yield ``(dict1, dict2, key, value1, value2)``
    for every leaf of ``d1``.

    Every key of ``d1`` (at every level) must exist in ``d2``; ``d2`` may have more.

    Raises:
        KeyError: a key of ``d1`` is missing from ``d2``.
    """
    for key, value in d1.items():
        if key not in d2:
            raise KeyError(f"key {key!r} of the first dictionary is missing from the second (keys: {list(d2.keys())})")
        if isinstance(value, dict):
            yield from iter_dicts_recursively(value, d2[key])
        else:
            yield d1, d2, key, value, d2[key]


def list_of_dicts_to_dict_of_lists(list_of_dicts: List[Mapping[Any, Any]]) -> Dict[Any, Any]:
    """Turn ``[{"a": 1, "b": {"c": 2}}, {"a": 3, "b": {"c": 4}}]`` into ``{"a": [1, 3], "b": {"c": [2, 4]}}``.

    The structure (and dictionary types) of the result follows the first dictionary; the keys of every other
    dictionary must also be keys of the first (a key some dictionaries lack gets a shorter list). An empty list
    gives ``{}``.
    """
    if not list_of_dicts:
        return dict()
    result = copy_dict_structure(list_of_dicts[0])
    for d in list_of_dicts:
        for _, target, key, value, collected in iter_dicts_recursively(d, result):
            if collected is None:
                target[key] = [value]
            else:
                collected.append(value)
    return result


def get_first_present(d: Mapping[Any, Any], keys: Iterable[Any], default: Optional[Any] = None) -> Optional[Any]:
    """``d[key]`` for the first of ``keys`` that ``d`` contains, else ``default``."""
    for key in keys:
        if key in d:
            return d[key]
    return default
