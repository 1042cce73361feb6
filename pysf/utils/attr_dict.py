"""``AttrDict``: a dict whose keys can also be read and written as attributes (``cfg.batch_size``)."""

from __future__ import annotations

from typing import Any, List


class AttrDict(dict):
    """A ``dict`` with attribute access, used for configurations loaded from ``config.json`` and env configs.

    ``d.key`` reads ``d["key"]``, ``d.key = v`` writes ``d["key"]`` and ``del d.key`` deletes it. A missing key
    raises ``AttributeError`` (not ``KeyError``), so ``hasattr``/``getattr(d, k, default)``, ``copy``,
    ``pickle`` and multiprocessing behave as they do for ordinary objects.

    Unlike Sample Factory's version, ``dict``'s own methods take precedence over keys with the same name
    (``d.items`` is always the method), so a configuration key can never break code that iterates a config.
    """

    def __getattr__(self, name: str) -> Any:
        # Only called when normal attribute lookup fails, i.e. for anything that is not a dict method.
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute or key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute or key {name!r}") from None

    def __dir__(self) -> List[str]:
        # Lets interactive shells and debuggers tab-complete configuration keys.
        return sorted(set(super().__dir__()) | {key for key in self.keys() if isinstance(key, str)})
