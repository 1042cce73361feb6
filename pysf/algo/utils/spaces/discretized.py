"""``Discretized``: a continuous action range offered to the policy as ``n`` discrete choices."""

from __future__ import annotations

from typing import Any

from gymnasium.spaces import Discrete

__all__ = ["Discretized"]


class Discretized(Discrete):
    """A ``Discrete(n)`` space whose actions ``0 .. n-1`` stand for ``n`` evenly spaced values from
    ``min_action`` to ``max_action`` (both included).

    To the policy it is an ordinary ``Discrete(n)`` (categorical distribution, integer actions, ``start`` 0),
    so it works anywhere a Discrete space does, including inside a Tuple action space. The env converts the
    chosen index back with :meth:`to_continuous`, e.g. ``Discretized(11, -10.0, 10.0)`` maps action 3 to -4.0.
    """

    def __init__(self, n: int, min_action: float, max_action: float):
        super().__init__(n)
        self.min_action = min_action
        self.max_action = max_action

    def to_continuous(self, discrete_action: Any) -> Any:
        """The value of ``discrete_action`` (an int, or an integer numpy array / tensor, elementwise):
        ``min_action + discrete_action * (max_action - min_action) / (n - 1)``."""
        if self.n < 2:
            raise ValueError(
                f"Discretized with n={self.n} has no step between min_action and max_action; use n >= 2"
            )
        step = (self.max_action - self.min_action) / (self.n - 1)
        return self.min_action + discrete_action * step

    def __repr__(self) -> str:
        return f"Discretized({self.n}, min_action={self.min_action}, max_action={self.max_action})"
