"""``Timing``: named wall-clock measurements of code blocks (Sample Factory's ``sample_factory.utils.timing``).

.. code-block:: python

    timing = Timing("Learner profile")
    with timing.add_time("train"):          # accumulates over calls
        with timing.timeit("batch"):        # keeps the latest duration
            ...
        with timing.time_avg("step", 10):   # average of the last 10 durations
            ...
    log.info("%s", timing)                  # tree view, nesting as measured
    timing["train"]                         # seconds (a float), also timing.train

``Timing`` is a dict (an :class:`~pysf.utils.attr_dict.AttrDict`) from measurement name to its value: a float in
seconds, or an :class:`AvgTime` for ``time_avg``. A name measured inside another measurement's block also
appears as that one's child in the tree view (``str(timing)``); the dict itself is flat.

Differences from Sample Factory, on purpose: durations come from ``time.perf_counter`` (monotonic) rather than
``time.time``; the profile's own bookkeeping (its name, the stack of open blocks) is kept outside the dict, so
``timing.items()`` and ``flat_str()`` list measurements only; ``with ... as ctx`` binds the measurement's
context (Sample Factory binds ``None``). A ``Timing`` is not thread-safe: use one per thread.
"""

from __future__ import annotations

import collections
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

from pysf.algo.utils.misc import EPS
from pysf.utils.attr_dict import AttrDict
from pysf.utils.utils import log

__all__ = ["AvgTime", "TimingTreeNode", "TimingContext", "Timing", "init_global_profiler"]


class AvgTime:
    """The mean of the last ``num_values_to_avg`` durations (``values``); ``str()`` prints it with 4 decimals."""

    def __init__(self, num_values_to_avg: int):
        self.values: deque = deque([], maxlen=num_values_to_avg)

    def average(self) -> float:
        """Mean of the kept durations (0 before the first one)."""
        return sum(self.values) / max(1, len(self.values))

    def __str__(self) -> str:
        return f"{self.average():.4f}"

    def __repr__(self) -> str:
        return f"AvgTime({self.average():.4f}, last {len(self.values)} of at most {self.values.maxlen})"


@dataclass
class TimingTreeNode:
    """One measurement in the tree view: its value where it was measured, and the measurements nested in it."""

    self_time: Union[float, AvgTime] = 0
    timing: "collections.OrderedDict[str, TimingTreeNode]" = field(default_factory=collections.OrderedDict)


class TimingContext:
    """The context manager returned by ``Timing.timeit`` / ``add_time`` / ``time_avg`` for one block.

    ``additive``: add each duration to the total; ``average=n``: keep the mean of the last ``n``; neither: keep
    the latest duration. Durations are at least ``EPS`` seconds, so rates computed from them never divide by 0.
    """

    def __init__(self, timing: "Timing", key: str, additive: bool = False, average: Optional[int] = None):
        self.timing_tree_node: Optional[TimingTreeNode] = None
        self._timing = timing
        self._key = key
        self._additive = additive
        self._average = average
        self._time_enter: Optional[float] = None

    def set_tree_node(self, node: TimingTreeNode) -> None:
        """The tree node this block's durations are also recorded in."""
        self.timing_tree_node = node

    def initial_value(self) -> Union[float, AvgTime]:
        """Value of a measurement before its first block ends: ``0.0``, or an empty :class:`AvgTime`."""
        if self._average is not None:
            return AvgTime(num_values_to_avg=self._average)
        return 0.0

    def _record_measurement(self, key: str, value: float) -> None:
        node = self.timing_tree_node
        if self._additive:
            self._timing[key] += value
            node.self_time += value
        elif self._average is not None:
            self._timing[key].values.append(value)
            node.self_time.values.append(value)
        else:
            self._timing[key] = value
            node.self_time = value

    def __enter__(self) -> "TimingContext":
        self._time_enter = time.perf_counter()
        self._timing._open_contexts_stack.append(self)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        elapsed = max(time.perf_counter() - self._time_enter, EPS)
        self._record_measurement(self._key, elapsed)
        self._timing._open_contexts_stack.pop()


class Timing(AttrDict):
    """Named measurements of code blocks; see the module documentation.

    Args:
        name: title of the tree view (``str(timing)``).
        *args, **kwargs: initial dict contents, as for ``dict``.
    """

    def __init__(self, name: str = "Profile", *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Bookkeeping lives in the instance __dict__, not in the dict of measurements.
        object.__setattr__(self, "_name", name)
        root = TimingContext(self, "~")
        root.set_tree_node(TimingTreeNode())
        object.__setattr__(self, "_root_context", root)
        object.__setattr__(self, "_open_contexts_stack", [root])

    def _init_context(self, key: str, additive: bool = False, average: Optional[int] = None) -> TimingContext:
        ctx = TimingContext(self, key, additive=additive, average=average)
        if key not in self:
            self[key] = ctx.initial_value()
        parent_node = self._open_contexts_stack[-1].timing_tree_node
        if key not in parent_node.timing:
            parent_node.timing[key] = TimingTreeNode(ctx.initial_value())
        ctx.set_tree_node(parent_node.timing[key])
        return ctx

    def timeit(self, key: str) -> TimingContext:
        """Measure a block; ``self[key]`` becomes its duration (the latest one when measured repeatedly)."""
        return self._init_context(key)

    def add_time(self, key: str) -> TimingContext:
        """Measure a block and add its duration to ``self[key]`` (total time over all blocks)."""
        return self._init_context(key, additive=True)

    def time_avg(self, key: str, average: int = 10) -> TimingContext:
        """Measure a block; ``self[key]`` is an :class:`AvgTime` of the last ``average`` durations."""
        return self._init_context(key, average=average)

    @staticmethod
    def _time_str(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    def flat_str(self) -> str:
        """``"key: value, key: value"`` for every measurement, in the order they were first started."""
        return ", ".join(f"{key}: {self._time_str(value)}" for key, value in self.items())

    @classmethod
    def _tree_str_func(cls, node: TimingTreeNode, depth: int) -> List[str]:
        indent = " " * 2 * depth
        lines: List[str] = []
        # Measurements without children share one line; each one with children gets its own, then its subtree.
        leaves = [f"{key}: {cls._time_str(child.self_time)}" for key, child in node.timing.items() if not child.timing]
        if leaves:
            lines.append(indent + ", ".join(leaves))
        for key, child in node.timing.items():
            if child.timing:
                lines.append(f"{indent}{key}: {cls._time_str(child.self_time)}")
                lines.extend(cls._tree_str_func(child, depth + 1))
        return lines

    def tree_str(self) -> str:
        """Multi-line view: the title, then the measurements nested as measured (two spaces per level)."""
        lines = [f"{self._name} tree view:"]
        lines.extend(self._tree_str_func(self._root_context.timing_tree_node, 0))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.tree_str()

    def __repr__(self) -> str:
        return f"Timing({self._name!r}, {self.flat_str()})"


TIMING: Optional[Timing] = None


def init_global_profiler(t: Timing) -> None:
    """Make ``t`` this process's global profile, ``pysf.utils.timing.TIMING`` (for debugging; prefer passing a
    ``Timing`` to the code that measures)."""
    global TIMING
    log.info("Setting global profiler in process %d", os.getpid())
    TIMING = t
