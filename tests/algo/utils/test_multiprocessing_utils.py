"""pysf.algo.utils.multiprocessing_utils: Sample Factory's spawn context and lock helpers."""

from __future__ import annotations

from pysf.algo.utils.multiprocessing_utils import FakeLock, get_lock, get_mp_ctx, get_mp_lock


def test_get_mp_ctx():
    assert get_mp_ctx(serial=True) is None
    ctx = get_mp_ctx(False)
    assert ctx.get_start_method() == "spawn"
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
