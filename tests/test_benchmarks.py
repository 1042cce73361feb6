"""Smoke tests of the benchmark scripts in benchmarks/ (short runs; numbers are not checked, only shapes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """Import benchmarks/<name>.py (benchmarks/ is not a package) as module ``benchmarks_<name>``."""
    module_name = f"benchmarks_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


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
