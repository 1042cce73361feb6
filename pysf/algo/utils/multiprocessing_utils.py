"""Multiprocessing context and locks (Sample Factory's ``sample_factory.algo.utils.multiprocessing_utils``).

pysf starts its own child processes (env workers, the env-info process) from a ``forkserver`` that has imported
torch and pysf once (Sample Factory spawns each child, and each imports torch for seconds: 2-3 CPU-s here). Each
child is prepared as a spawned one would be (the parent's ``sys.path``, working directory, ``__main__`` module
and, unlike a plain forkserver child, its environment variables, stdout and stderr at the child's start). User
code that shares objects with them (e.g. a lock guarding a level cache, as Sample Factory's DMLab example does)
should create those objects from the same context, :func:`get_mp_ctx`. Where ``forkserver`` is not available,
``spawn``.

Every child process pysf starts is made by :func:`new_child_process`, started by :func:`start_child_process`
and calls :func:`die_with_parent` first thing: the parent owns Ctrl-C and SIGTERM (it stops its children
itself), and a child never outlives it.

Not provided: Sample Factory's ``get_queue``/``get_mp_queue``/``QueueWrapper`` (faster_fifo queues of its
event-loop architecture; pysf's components talk through shared-memory channels of the native core).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.reduction
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

__all__ = ["get_mp_ctx", "get_lock", "get_mp_lock", "FakeLock", "InheritedFd", "new_child_process",
           "start_child_process", "die_with_parent", "stop_signals_handled_by", "signal_name"]

# Signals the parent handles for the whole process tree (a terminal's Ctrl-C and `timeout`/Slurm's SIGTERM reach
# every process of the group): children ignore them and are stopped by the parent, or killed with SIGKILL.
PARENT_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1

# The forkserver imports what every child needs (torch, gymnasium, the extension) once; its children inherit it.
_FORKSERVER_PRELOAD = ["pysf.algo.utils.forkserver_preload"]


class InheritedFd:
    """A file descriptor that survives pickling into a child process, as multiprocessing Connections do.

    Pickling (``Process.start``) registers a duplicate for the child through ``multiprocessing.reduction.DupFd``;
    the child's copy owns the descriptor it receives. The parent's object still owns the original: close it
    after the child started.
    """

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self):
        return _rebuild_inherited_fd, (multiprocessing.reduction.DupFd(self.fd),)

    def detach(self) -> int:
        """The descriptor, which the caller now owns."""
        fd, self.fd = self.fd, -1
        return fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.detach())


def _rebuild_inherited_fd(dup_fd) -> InheritedFd:
    return InheritedFd(dup_fd.detach())


def new_child_process(target: Callable[..., Any], args: tuple, name: str) -> BaseProcess:
    """A daemon process of :func:`get_mp_ctx`'s context running ``target(*args)`` as a spawned child would: with
    this process's current environment variables, stdout and stderr (a forkserver child would otherwise have
    the forkserver's, from when it started). Start it with :func:`start_child_process`."""
    streams = [InheritedFd(fd) if _is_open(fd) else None for fd in (1, 2)]
    return get_mp_ctx(False).Process(target=_child_main, args=(dict(os.environ), streams, target, args),
                                     name=name, daemon=True)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _child_main(environment: dict, streams: list, target: Callable[..., Any], args: tuple) -> None:
    if environment != os.environ:
        os.environ.clear()
        os.environ.update(environment)
    for fd, stream in zip((1, 2), streams):
        if stream is not None:
            os.dup2(stream.fd, fd)
            stream.close()
    target(*args)


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
    # Both helper processes start here if they have not yet, inside the window: they then ignore the signals
    # too (a group SIGTERM would kill a forkserver, and with it every child it made), and starting them later
    # would unblock the signals mid-window.
    multiprocessing.resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, PARENT_HANDLED_SIGNALS)
    try:
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in PARENT_HANDLED_SIGNALS}
        try:
            if getattr(process, "_start_method", None) == "forkserver":
                multiprocessing.forkserver.ensure_running()
            process.start()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def die_with_parent(parent_pid: int) -> None:
    """In a child process: be killed (SIGKILL) when the parent ``parent_pid`` dies, whatever the child is doing
    then (stuck in an env's C code included); exit at once if the parent is already gone. Also ignores the signals
    the parent handles (see :func:`start_child_process`). Linux only (elsewhere only the latter).

    Linux sends the signal when the thread that forked the child exits. For a forkserver child that is the
    forkserver, which exits as soon as the parent process does. A spawned child (no forkserver) dies with the
    parent's *thread* that started it: start children from a thread that lives as long as they should.
    """
    for sig in PARENT_HANDLED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _release_the_forkserver()
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid and not _is_alive(parent_pid):  # it died before prctl took effect
        os._exit(1)


def _release_the_forkserver() -> None:
    """In a forkserver child: close its copy of the forkserver's "alive" pipe. A forkserver runs until every
    holder of that pipe has exited, and the children hold it so that they could start processes through it too;
    a child stuck in an env's C code would then keep the forkserver alive after the parent died, and the
    forkserver keep the child (whose death signal comes with the forkserver's exit)."""
    forkserver = multiprocessing.forkserver._forkserver
    alive_fd = getattr(forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None and multiprocessing.parent_process() is not None:
        forkserver._forkserver_alive_fd = None
        try:
            os.close(alive_fd)
        except OSError:
            pass


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's (a reused pid)
        return True
    return True


@static_vars(mp_ctx=None)
def get_mp_ctx(serial: bool) -> Optional[BaseContext]:
    """The multiprocessing context pysf's children come from (``forkserver``, preloading torch and pysf, else
    ``spawn``; created on first use and kept in ``get_mp_ctx.mp_ctx``), or ``None`` when ``serial``
    (``--serial_mode``: everything runs in this process, so there is nothing to share)."""
    if serial:
        return None
    if get_mp_ctx.mp_ctx is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_FORKSERVER_PRELOAD)
        else:
            ctx = multiprocessing.get_context("spawn")
        get_mp_ctx.mp_ctx = ctx
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
