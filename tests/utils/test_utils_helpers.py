"""pysf.utils.utils: Sample Factory's general helpers (the ones pysf adds for drop-in use)."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import threading
import types

import numpy as np
import psutil
import pytest

import pysf.utils.utils as utils_module
from pysf.utils.attr_dict import AttrDict
from pysf.utils.utils import (
    ensure_contigious,
    figure_to_numpy,
    get_free_disk_space_mb,
    has_file_handler,
    join_or_kill,
    kill_processes,
    list_child_processes,
    log,
    max_with_idx,
    memory_consumption_mb,
    min_with_idx,
    numpy_all_the_way,
    numpy_flatten,
    op_with_idx,
    retry,
    safe_get,
    scale_to_range,
    set_attr_if_exists,
    set_process_cpu_affinity,
)


def test_sf_examples_imports_resolve():
    """Every name Sample Factory's examples import from sample_factory.utils.utils."""
    names = [
        "log", "str2bool", "is_module_available", "static_vars", "project_tmp_dir", "experiment_dir",
        "ensure_dir_exists", "safe_ensure_dir_exists", "debug_log_every_n", "get_free_disk_space_mb", "AttrDict",
    ]  # fmt: skip
    assert [n for n in names if not hasattr(utils_module, n)] == []
    assert utils_module.AttrDict is AttrDict
    assert set(utils_module.__all__) <= set(dir(utils_module))


def test_set_attr_if_exists():
    obj = types.SimpleNamespace(a=1)
    set_attr_if_exists(obj, "a", 2)
    set_attr_if_exists(obj, "b", 3)
    assert obj.a == 2 and not hasattr(obj, "b")


def test_scale_to_range():
    np.testing.assert_allclose(scale_to_range(np.array([2.0, 4.0, 6.0]), -1.0, 1.0), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(scale_to_range(np.array([[0, 5], [10, 5]]), 0, 255), [[0, 127.5], [255, 127.5]])


def test_min_max_with_idx():
    assert min_with_idx([3, 1, 2, 1]) == (1, 1), "first occurrence"
    assert max_with_idx([3, 7, 7, 2]) == (7, 1)
    assert op_with_idx(["bb", "a", "ccc"], lambda x, y: len(x) > len(y)) == ("ccc", 2)
    with pytest.raises(ValueError):
        min_with_idx([])


def test_numpy_helpers():
    arrays = [np.arange(6).reshape(2, 3) + 10 * i for i in range(4)]
    stacked = numpy_all_the_way(arrays)
    assert stacked.shape == (4, 2, 3)
    np.testing.assert_array_equal(stacked, np.stack(arrays))
    flat = numpy_flatten(arrays)
    assert flat.shape == (8, 3)
    np.testing.assert_array_equal(flat[2:4], arrays[1])
    c = np.zeros((3, 4))
    assert ensure_contigious(c) is c
    strided = c[:, ::2]
    fixed = ensure_contigious(strided)
    assert fixed.flags["C_CONTIGUOUS"] and fixed is not strided
    np.testing.assert_array_equal(fixed, strided)


def test_retry(monkeypatch):
    sleeps = []
    monkeypatch.setattr(utils_module, "time", types.SimpleNamespace(sleep=sleeps.append))
    calls = []

    @retry(3, (ValueError, KeyError))
    def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise ValueError("not yet")
        return x * 2

    assert flaky(5) == 10
    assert calls == [5, 5, 5] and sleeps == [1, 2]

    @retry(2, ValueError)
    def always_fails():
        calls.append("f")
        raise ValueError("never")

    calls.clear()
    sleeps.clear()
    with pytest.raises(ValueError, match="never"):
        always_fails()
    assert calls == ["f"] * 3, "times attempts, then one last call whose exception propagates"
    assert sleeps == [1, 2]

    @retry(5, ValueError)
    def other_error():
        raise TypeError("not retried")

    with pytest.raises(TypeError):
        other_error()


def test_safe_get_waits_through_timeouts(caplog):
    q = queue.Queue()
    threading.Timer(0.15, q.put, args=("item",)).start()
    with caplog.at_level(logging.INFO, logger="rl"):
        assert safe_get(q, timeout=0.05, msg="test queue") == "item"
    assert any("test queue" in r.getMessage() for r in caplog.records)


def test_has_file_handler(tmp_path):
    baseline = has_file_handler()
    handler = logging.FileHandler(tmp_path / "log.txt")
    log.addHandler(handler)
    try:
        assert has_file_handler() is True
    finally:
        log.removeHandler(handler)
        handler.close()
    assert has_file_handler() is baseline


def test_free_disk_space_and_memory(tmp_path):
    cfg = AttrDict(train_dir=str(tmp_path / "train_dir"), experiment="x")
    free = get_free_disk_space_mb(cfg)
    st = os.statvfs(tmp_path)
    assert os.path.isdir(cfg.train_dir), "creates train_dir, as Sample Factory does"
    assert free == pytest.approx(st.f_frsize * st.f_bfree / 2**20, rel=0.05)
    rss = psutil.Process().memory_info().rss / 2**20
    assert memory_consumption_mb() == pytest.approx(rss, rel=0.2)


def test_child_process_helpers():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pids = [p.pid for p in list_child_processes()]
        assert child.pid in pids
        kill_processes([psutil.Process(child.pid)])
        assert child.wait(timeout=10) != 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.pid not in [p.pid for p in list_child_processes()]


def test_kill_processes_spares_trackers():
    class FakeProcess:
        def __init__(self, name, cmdline):
            self.pid, self._name, self._cmdline, self.killed = 1, name, cmdline, False

        def name(self):
            return self._name

        def cmdline(self):
            return self._cmdline

        def exe(self):
            return "python"

        def is_running(self):
            return True

        def kill(self):
            self.killed = True

    tracker = FakeProcess("python", ["python", "-c", "from multiprocessing.resource_tracker import main"])
    shm = FakeProcess("torch_shm_manager", [])
    worker = FakeProcess("python", ["python", "worker.py"])
    kill_processes([tracker, shm, worker])
    assert (tracker.killed, shm.killed, worker.killed) == (False, False, True)


def test_join_or_kill():
    class FakeProcess:
        def __init__(self, stays_alive):
            self.alive, self.stays_alive, self.joined_with, self.killed = True, stays_alive, None, False

        def join(self, timeout):
            self.joined_with = timeout
            if not self.stays_alive:
                self.alive = False

        def is_alive(self):
            return self.alive

        def kill(self):
            self.killed, self.alive = True, False

    polite, stuck = FakeProcess(False), FakeProcess(True)
    join_or_kill(polite, timeout=0.5)
    join_or_kill(stuck)
    assert polite.joined_with == 0.5 and not polite.killed
    assert stuck.joined_with == 1.0 and stuck.killed


def test_set_process_cpu_affinity():
    process = psutil.Process()
    if not hasattr(process, "cpu_affinity"):
        pytest.skip("no CPU affinity on this OS")
    original = process.cpu_affinity()
    try:
        set_process_cpu_affinity(0, 1)  # one worker: all available cores
        assert process.cpu_affinity() == original
        if len(original) >= 2:
            set_process_cpu_affinity(1, len(original))  # as many workers as cores: one core each
            assert process.cpu_affinity() == [original[1]]
    finally:
        process.cpu_affinity(original)


def test_figure_to_numpy():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(3, 2), dpi=10, facecolor=(1.0, 0.0, 0.0))
    try:
        pixels = figure_to_numpy(figure)
    finally:
        plt.close(figure)
    assert pixels.shape == (20, 30, 4) and pixels.dtype == np.uint8  # [height, width, RGBA]
    assert (pixels[5, 5] == [255, 0, 0, 255]).all()
