"""Multiprocessing context and locks (Sample Factory's ``sample_factory.algo.utils.multiprocessing_utils``).

pysf starts its own worker processes with the ``spawn`` start method, as Sample Factory does; user code that
shares objects with them (e.g. a lock guarding a level cache, as Sample Factory's DMLab example does) should
create those objects from the same context, :func:`get_mp_ctx`.

Every child process pysf starts goes through :func:`start_child_process` and calls :func:`die_with_parent` first
thing: the parent owns Ctrl-C and SIGTERM (it stops its children itself), and a child never outlives it.

Not provided: Sample Factory's ``get_queue``/``get_mp_queue``/``QueueWrapper`` (faster_fifo queues of its
event-loop architecture; pysf's components talk through shared-memory channels of the native core).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.resource_tracker
import os
import signal
import sys
import threading
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Callable, Iterator, Optional

from pysf.utils.typing import MpLock
from pysf.utils.utils import static_vars

__all__ = ["get_mp_ctx", "get_lock", "get_mp_lock", "FakeLock", "start_child_process", "die_with_parent",
           "stop_signals_handled_by", "signal_name"]

# Signals the parent handles for the whole process tree (a terminal's Ctrl-C and `timeout`/Slurm's SIGTERM reach
# every process of the group): children ignore them and are stopped by the parent, or killed with SIGKILL.
PARENT_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


def start_child_process(process: BaseProcess) -> None:
    """``process.start()``, the child ignoring SIGINT and SIGTERM from its first instruction on.

    A spawned child imports torch for seconds before its own code runs; a Ctrl-C in that time used to end it
    with a KeyboardInterrupt traceback and fail the run. Ignored dispositions survive exec, so the child is
    started while this process ignores them. This thread blocks them meanwhile, so one that arrives in the window
    (the few milliseconds of a fork and exec) stays pending and reaches the handler right after; only if another
    thread of this process that does not block it takes the signal first is it lost.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        process.start()  # the child ignores the signals once its own code runs
        return
    multiprocessing.resource_tracker.ensure_running()  # starting it later would unblock the signals mid-window
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_HANDLED_SIGNALS)
    try:
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in PARENT_HANDLED_SIGNALS}
        try:
            process.start()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def die_with_parent(parent_pid: int) -> None:
    """In a child process: be killed (SIGKILL) when the parent dies, whatever the child is doing then (stuck in
    an env's C code included); exit at once if the parent is already gone. Also ignores the signals the parent
    handles (see :func:`start_child_process`). Linux only (elsewhere only the latter).

    Linux sends the signal when the parent's *thread* that started the child exits: start children from a
    thread that lives as long as they should (pysf starts them from the thread that runs the sampler).
    """
    for sig in PARENT_HANDLED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


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


@contextlib.contextmanager
def stop_signals_handled_by(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM call ``handler(signum, frame)``; the previous handlers come back
    after it. A signal this process ignores stays ignored (a script's background job ignores Ctrl-C, as the shell
    intends). A no-op outside the main thread (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = [sig for sig in PARENT_HANDLED_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN]
    previous = {sig: signal.signal(sig, handler) for sig in handled}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def signal_name(signum: int) -> str:
    """``"SIGINT (Ctrl-C)"``, ``"SIGTERM"``, ... for messages."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
    return f"{name} (Ctrl-C)" if signum == signal.SIGINT else name
