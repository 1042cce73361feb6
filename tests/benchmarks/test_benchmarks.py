"""Smoke tests of the benchmark scripts in benchmarks/ (short runs; numbers are not checked, only shapes)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

MODULES = ["compare", "inference", "multi_policy", "native_envs", "sampling", "soak", "suites", "torch_threads", "train_cartpole"]


def load_benchmark(name: str):
    """``benchmarks.<name>`` (the repository root is on sys.path: tests/conftest.py)."""
    return importlib.import_module(f"benchmarks.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_every_benchmark_imports_as_a_module_of_the_benchmarks_package(name):
    assert callable(load_benchmark(name).main)


def test_make_bench_runs_the_driver_as_a_module():
    """``python -m benchmarks.compare`` from the repository root, as ``make bench`` and the README run it."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.compare", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "usage:" in result.stdout and "--smoke" in result.stdout


def test_inference_benchmark_smoke():
    inference = load_benchmark("inference")
    result = inference.run(smoke=True)

    rows = result["rows"]
    assert rows
    for row in rows:
        assert set(row) >= {"model", "batch", "path", "median_us", "p90_us", "per_sample_us"}
        assert row["median_us"] > 0 and row["p90_us"] > 0 and row["per_sample_us"] > 0, row
        assert row["p90_us"] >= row["median_us"], row
    cells = {(r["model"], r["batch"], r["path"]) for r in rows}
    cpp_paths = [inference.PATH_CPP, inference.PATH_CPP_PY, inference.PATH_SERVER, inference.PATH_SERVER_1CORE]
    eager_paths = [inference.PATH_EAGER, inference.PATH_EAGER_IM]
    for model in (inference.MODEL_CARTPOLE, inference.MODEL_SF):
        for batch in (1, 64, 1024):
            for path in cpp_paths + eager_paths:
                assert (model, batch, path) in cells, (model, batch, path)
    assert any("AOTInductor: not a pysf backend" in note for note in result["notes"])

    text = inference.markdown(result)
    assert "| model | batch | path |" in text and inference.PATH_SERVER in text


def test_soak_trend_reads_growth_and_slope():
    soak = load_benchmark("soak")
    # 100 MB growing 1 MB per minute for 10 minutes, one sample every 10 s, with +-0.5 MB of alternating noise.
    points = [(t, 100.0 + t / 60.0 + (0.5 if i % 2 else -0.5)) for i, t in enumerate(range(0, 601, 10))]
    found = soak.trend(points, end_window=30.0)
    assert found.slope_mb_per_hour == pytest.approx(60.0, rel=0.02)
    assert found.start_mb == pytest.approx(100.25, abs=0.5) and found.end_mb == pytest.approx(109.75, abs=0.5)
    assert found.growth_percent == pytest.approx(9.5, abs=0.6) and found.samples == len(points)
    flat = soak.trend([(t, 500.0) for t in range(0, 100, 2)], end_window=10.0)
    assert flat.growth_percent == 0.0 and flat.slope_mb_per_hour == pytest.approx(0.0, abs=1e-9)
    assert soak.trend([(0.0, 1.0), (1.0, 2.0)], end_window=1.0) is None  # too few points to call a trend


@pytest.mark.slow
def test_soak_benchmark_smoke(tmp_path):
    soak = load_benchmark("soak")
    output = tmp_path / "soak.json"
    status = soak.main(["--smoke", "--minutes", "0.25", "--interval", "1", "--output", str(output)])
    result = json.loads(output.read_text())
    checks = result["checks"]
    assert set(checks) == {"exit status 0", "no error in output", "result.json written", "tree RSS growth < 2%"}
    for name in ("exit status 0", "no error in output", "result.json written"):
        assert checks[name]["ok"], (name, checks[name], result["output_tail"])
    assert status == (0 if result["ok"] else 1)  # growth over 30 s is not judged here, only reported
    assert result["config"]["num_envs_per_worker"] == 16 and result["config"]["env_backend"] == "gym"
    assert result["train_result"]["env_steps"] > 0 and result["train_result"]["steady_state_fps"] > 0

    window = result["window"]
    assert 0 < window["training_started_s"] <= window["start_s"] < window["end_s"]
    memory = result["memory"]
    workers = [name for name in memory if name.startswith("env worker")]
    assert "tree" in memory and "main" in memory and len(workers) == 2, list(memory)
    for name, metrics in memory.items():
        for metric in ("rss", "pss", "uss"):
            figures = metrics[metric]
            assert figures["start_mb"] > 0 and figures["end_mb"] > 0 and figures["samples"] >= 3, (name, metric, figures)
            assert all(key in figures for key in ("growth_percent", "slope_mb_per_hour")), figures
    tree = memory["tree"]["rss"]
    assert tree["end_mb"] > memory["main"]["rss"]["end_mb"] and result["peak_tree_rss_mb"] >= tree["end_mb"] * 0.9
    assert len(result["samples"]) >= 10 and len(result["load"]["loadavg_start"]) == 3

    markdown = soak.results_markdown(result)
    assert "| **tree** |" in markdown and "check: tree RSS growth < 2%" in markdown
