"""Multiprocessing context and locks (Sample Factory's ``sample_factory.algo.utils.multiprocessing_utils``).

pysf starts its own worker processes with the ``spawn`` start method, as Sample Factory does; user code that
shares objects with them (e.g. a lock guarding a level cache, as Sample Factory's DMLab example does) should
create those objects from the same context, :func:`get_mp_ctx`.

Not provided: Sample Factory's ``get_queue``/``get_mp_queue``/``QueueWrapper`` (faster_fifo queues of its
event-loop architecture; pysf's components talk through shared-memory channels of the native core).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext
from typing import Any, Optional

from pysf.utils.typing import MpLock
from pysf.utils.utils import static_vars

__all__ = ["get_mp_ctx", "get_lock", "get_mp_lock", "FakeLock"]


@static_vars(mp_ctx=None)
def get_mp_ctx(serial: bool) -> Optional[BaseContext]:
    """The ``spawn`` multiprocessing context (created on first use and kept in ``get_mp_ctx.mp_ctx``), or
    ``None`` when ``serial`` (``--serial_mode``: everything runs in this process, so there is nothing to share)."""
    if serial:
        return None
    if get_mp_ctx.mp_ctx is None:
        get_mp_ctx.mp_ctx = multiprocessing.get_context("spawn")
    return get_mp_ctx.mp_ctx


def get_mp_lock(mp_ctx: Optional[BaseContext] = None) -> MpLock:
    """A new ``multiprocessing`` lock from ``mp_ctx`` (the default context when ``None``)."""
    return (multiprocessing if mp_ctx is None else mp_ctx).Lock()


def get_lock(serial: bool = False, mp_ctx: Optional[BaseContext] = None) -> MpLock:
    """A :class:`FakeLock` when ``serial``, else :func:`get_mp_lock` ``(mp_ctx)``."""
    if serial:
        return FakeLock()
    return get_mp_lock(mp_ctx)


class FakeLock:
    """A lock that never blocks, for code that runs in one process and thread (serial mode)."""

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def release(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> "FakeLock":
        return self

    def __exit__(self, *args: Any) -> None:
        pass
