"""pysf.utils.timing.Timing against Sample Factory's behaviour (timeit / add_time / time_avg, flat and tree views)."""

from __future__ import annotations

import pickle
import types

import pytest

import pysf.utils.timing as timing_module
from pysf.algo.utils.misc import EPS
from pysf.utils.attr_dict import AttrDict
from pysf.utils.timing import AvgTime, Timing, init_global_profiler


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter: each call returns the next of the scripted instants."""
    instants = []

    def perf_counter():
        return instants.pop(0)

    monkeypatch.setattr(timing_module, "time", types.SimpleNamespace(perf_counter=perf_counter))
    return instants


def test_timeit_keeps_the_latest_duration(clock):
    t = Timing()
    clock.extend([0.0, 2.0, 10.0, 10.5])
    with t.timeit("step"):
        pass
    assert t["step"] == 2.0
    with t.timeit("step"):
        pass
    assert t["step"] == 0.5


def test_add_time_accumulates(clock):
    t = Timing()
    clock.extend([0.0, 1.5, 5.0, 5.25])
    for _ in range(2):
        with t.add_time("total"):
            pass
    assert t["total"] == pytest.approx(1.75)


def test_time_avg_averages_the_last_n(clock):
    t = Timing()
    clock.extend([0.0, 1.0, 0.0, 2.0, 0.0, 6.0])  # durations 1, 2, 6
    for _ in range(3):
        with t.time_avg("avg", average=2):
            pass
    assert isinstance(t["avg"], AvgTime)
    assert list(t["avg"].values) == [2.0, 6.0]  # only the last 2 kept
    assert str(t["avg"]) == "4.0000"


def test_durations_are_at_least_eps(clock):
    t = Timing()
    clock.extend([3.0, 3.0])
    with t.timeit("instant"):
        pass
    assert t["instant"] == EPS


def test_value_before_the_block_ends_and_key_order(clock):
    t = Timing()
    ctx = t.timeit("a")
    assert t["a"] == 0.0, "the key exists (0.0) as soon as the measurement is created"
    t.time_avg("b")
    assert isinstance(t["b"], AvgTime) and str(t["b"]) == "0.0000", "an empty average prints as 0"
    clock.extend([0.0, 1.0])
    with ctx:
        pass
    assert list(t.keys()) == ["a", "b"]


def test_tree_and_flat_views(clock):
    t = Timing("Prof")
    # total: 0 -> 10; inside it a: 1 -> 3, b (avg): 3 -> 4; then c: 20 -> 20.5
    clock.extend([0.0, 1.0, 3.0, 3.0, 4.0, 10.0, 20.0, 20.5])
    with t.add_time("total"):
        with t.timeit("a"):
            pass
        with t.time_avg("b", 3):
            pass
    with t.timeit("c"):
        pass
    # Sample Factory's layout: childless measurements of a level share its first line, then each measurement
    # with children gets a line followed by its children, indented by two spaces.
    assert str(t) == "Prof tree view:\nc: 0.5000\ntotal: 10.0000\n  a: 2.0000, b: 1.0000"
    assert t.tree_str() == str(t)
    assert t.flat_str() == "total: 10.0000, a: 2.0000, b: 1.0000, c: 0.5000"


def test_same_key_under_two_parents(clock):
    t = Timing()
    clock.extend([0.0, 1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 9.0])
    with t.timeit("outer1"):  # 0 -> 3
        with t.timeit("x"):  # 1 -> 2
            pass
    with t.timeit("outer2"):  # 4 -> 9
        with t.timeit("x"):  # 7 -> 8
            pass
    assert t["x"] == 1.0, "the flat dict has one entry per name (the latest)"
    assert str(t) == "Profile tree view:\nouter1: 3.0000\n  x: 1.0000\nouter2: 5.0000\n  x: 1.0000"


def test_exception_in_block_is_recorded_and_propagates(clock):
    t = Timing()
    clock.extend([0.0, 4.0, 5.0, 6.0])
    with pytest.raises(RuntimeError):
        with t.timeit("failing"):
            raise RuntimeError("boom")
    assert t["failing"] == 4.0
    with t.timeit("after"):  # the stack was unwound: "after" is not a child of "failing"
        pass
    assert str(t) == "Profile tree view:\nfailing: 4.0000, after: 1.0000"


def test_is_an_attr_dict_of_measurements_only(clock):
    t = Timing("Named")
    clock.extend([0.0, 0.25])
    with t.timeit("x") as ctx:
        pass
    assert ctx is not None
    assert isinstance(t, AttrDict) and isinstance(t, dict)
    assert t.x == 0.25
    assert dict(t) == {"x": 0.25}, "bookkeeping (name, open blocks) is not part of the dict"
    restored = pickle.loads(pickle.dumps(t))
    assert dict(restored) == {"x": 0.25} and str(restored) == str(t)


def test_real_clock_measures_sleep():
    import time

    t = Timing()
    with t.timeit("sleep"):
        time.sleep(0.02)
    assert 0.015 < t["sleep"] < 1.0


def test_init_global_profiler(monkeypatch):
    monkeypatch.setattr(timing_module, "TIMING", None)
    t = Timing()
    init_global_profiler(t)
    assert timing_module.TIMING is t
