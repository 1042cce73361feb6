"""pysf.algo.utils.multiprocessing_utils: the children's context (a preloading forkserver), signals, locks."""

from __future__ import annotations

from pysf.algo.utils.multiprocessing_utils import FakeLock, get_lock, get_mp_ctx, get_mp_lock


def test_get_mp_ctx():
    assert get_mp_ctx(serial=True) is None
    ctx = get_mp_ctx(False)
    assert ctx.get_start_method() == "forkserver"
    assert get_mp_ctx(False) is ctx, "one context per process"
    assert get_mp_ctx.mp_ctx is ctx


def _non_reentrant(lock) -> None:
    assert lock.acquire(block=False) is True
    assert lock.acquire(block=False) is False, "a real lock: a second acquire does not succeed"
    lock.release()


def test_get_mp_lock():
    _non_reentrant(get_mp_lock())
    _non_reentrant(get_mp_lock(get_mp_ctx(False)))
    _non_reentrant(get_lock(serial=False, mp_ctx=get_mp_ctx(False)))


def test_fake_lock_in_serial_mode():
    lock = get_lock(serial=True)
    assert isinstance(lock, FakeLock)
    assert lock.acquire() and lock.acquire(), "never blocks"
    lock.release()
    with lock:
        pass


def _report_signal_handlers(queue) -> None:
    import signal as signals

    queue.put((signals.getsignal(signals.SIGINT), signals.getsignal(signals.SIGTERM)))


def test_children_ignore_ctrl_c_and_sigterm_from_their_start():
    import signal

    from pysf.algo.utils.multiprocessing_utils import start_child_process

    ctx = get_mp_ctx(False)
    queue = ctx.Queue()
    process = ctx.Process(target=_report_signal_handlers, args=(queue,))
    handler_before = signal.getsignal(signal.SIGINT)
    start_child_process(process)
    assert queue.get(timeout=60) == (signal.SIG_IGN, signal.SIG_IGN)  # inherited, before any of its imports
    process.join(timeout=60)
    assert signal.getsignal(signal.SIGINT) is handler_before  # this process's handler is back


def _report_environment_variable(queue, name) -> None:
    import os

    queue.put(os.environ.get(name))


def test_children_see_the_environment_at_their_start_not_the_forkservers(monkeypatch):
    from pysf.algo.utils.multiprocessing_utils import new_child_process, start_child_process

    queue = get_mp_ctx(False).Queue()
    for value in ("first", "second"):  # the forkserver runs from the first child on
        monkeypatch.setenv("PYSF_TEST_CHILD_VARIABLE", value)
        process = new_child_process(_report_environment_variable, (queue, "PYSF_TEST_CHILD_VARIABLE"), name="pysf-test")
        start_child_process(process)
        assert queue.get(timeout=60) == value
        process.join(timeout=60)


def _signals_ignored_by(pid: int) -> set:
    with open(f"/proc/{pid}/status") as status:
        mask = int(next(line for line in status if line.startswith("SigIgn:")).split()[1], 16)
    return {sig for sig in range(1, 64) if mask & (1 << (sig - 1))}


def test_the_forkserver_ignores_the_signals_the_parent_handles():
    import multiprocessing.forkserver
    import signal
    import sys

    import pytest

    from pysf.algo.utils.multiprocessing_utils import new_child_process, start_child_process

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    queue = get_mp_ctx(False).Queue()
    process = new_child_process(_report_signal_handlers, (queue,), name="pysf-test")
    start_child_process(process)
    queue.get(timeout=60)
    process.join(timeout=60)
    forkserver_pid = multiprocessing.forkserver._forkserver._forkserver_pid
    assert {signal.SIGINT, signal.SIGTERM} <= _signals_ignored_by(forkserver_pid)


def test_a_signal_during_the_start_reaches_this_process(monkeypatch):
    import signal

    import threading

    import pytest

    from pysf.algo.utils import multiprocessing_utils

    ctx = get_mp_ctx(False)
    process = ctx.Process(target=_report_signal_handlers, args=(ctx.Queue(),))
    original_start = type(process).start

    def start_and_interrupt(self):
        original_start(self)
        # Arrives while the signals are ignored and blocked (directed at this thread: a process-directed one
        # could also be taken by another thread of the test process, which does not block it).
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    monkeypatch.setattr(type(process), "start", start_and_interrupt)
    # Python's own handler, even when this process was started with SIGINT ignored (a background job of a script).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            multiprocessing_utils.start_child_process(process)
    finally:
        signal.signal(signal.SIGINT, previous)
    process.join(timeout=60)


def test_stop_signals_handled_by_installs_and_restores():
    import os
    import signal

    from pysf.algo.utils.multiprocessing_utils import signal_name, stop_signals_handled_by

    received = []
    before = signal.getsignal(signal.SIGTERM)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with stop_signals_handled_by(lambda signum, frame: received.append(signum)):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)
        assert received == [signal.SIGTERM, signal.SIGINT]
        assert signal.getsignal(signal.SIGTERM) is before
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ignored (a background job): left alone
        with stop_signals_handled_by(lambda signum, frame: received.append(signum)):
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous_int)
    assert signal_name(signal.SIGINT) == "SIGINT (Ctrl-C)" and signal_name(signal.SIGTERM) == "SIGTERM"
