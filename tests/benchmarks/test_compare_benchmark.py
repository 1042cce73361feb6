"""The side-by-side benchmark driver (benchmarks/compare.py): output parsing, figures, and a smoke run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import compare  # the repository root is on sys.path (tests/conftest.py)
from benchmarks.process_monitor import ProcessRun

SF_CONSOLE = """\
\x1b[36m[2026-11-25 16:25:56,041][03706] Fps is (10 sec: nan, 60 sec: nan, 300 sec: nan). Total num frames: 31744. Throughput: 0: nan. Samples: 0. Policy #0 lag: (min: 1.0, avg: 2.9, max: 7.0)\x1b[0m
\x1b[36m[2026-11-25 16:25:56,041][03706] Avg episode reward: [(0, '128.240')]\x1b[0m
[2026-11-25 16:26:01,041][03706] Fps is (10 sec: 13107.3, 60 sec: 13107.3, 300 sec: 13107.3). Total num frames: 97280. Throughput: 0: 14525.0.
[2026-11-25 16:26:01,041][03706] Avg episode reward: [(0, '455.000')]
[2026-11-25 16:26:06,041][03706] Fps is (10 sec: 13209.7, 60 sec: 13209.7, 300 sec: 13209.7). Total num frames: 163840. Throughput: 0: 15240.1.
[2026-11-25 16:26:06,041][03706] Avg episode reward: [(0, '495.000')]
[2026-11-25 16:26:10,012][03706] Collected {0: 200704}, FPS: 9175.2
"""


def test_sample_factory_console_is_parsed_into_curve_and_progress():
    lines = [(10.0 + 5 * (i // 2), line) for i, line in enumerate(SF_CONSOLE.splitlines())]
    run = compare.TrainingRun(system="sample-factory", rep=0, seed=0, ok=False)
    compare.parse_sample_factory_console(ProcessRun(returncode=0, wall_seconds=30.0, lines=lines), Path("."), run)
    assert run.curve == [(10.0, 31744, 128.24), (15.0, 97280, 455.0), (20.0, 163840, 495.0)]
    assert run.progress == [(10.0, 31744), (15.0, 97280), (20.0, 163840)]
    assert run.env_steps == 200704
    assert run.steady_fps == pytest.approx((163840 - 31744) / 10.0)
    assert run.threshold_seconds == pytest.approx(17.5) and run.threshold_steps == 130560  # interpolated
    assert run.final_reward == 495.0


def test_sb3_json_lines_are_parsed():
    lines = [
        (1.0, "Using cpu device"),
        (2.0, json.dumps({"t": 1.9, "steps": 256, "reward": None})),
        (3.0, json.dumps({"t": 2.9, "steps": 512, "reward": 20.5})),
        (3.5, json.dumps({"done": True, "t": 3.4, "steps": 512, "stopped_at_time_limit": True})),
    ]
    run = compare.TrainingRun(system="sb3", rep=0, seed=0, ok=False)
    compare._parse_sb3(ProcessRun(returncode=0, wall_seconds=4.0, lines=lines), Path("."), run)
    assert run.progress == [(2.0, 256), (3.0, 512)] and run.curve == [(3.0, 512, 20.5)]
    assert run.env_steps == 512 and run.stopped_at_time_limit
    assert run.steady_fps == pytest.approx(256.0) and run.threshold_seconds is None and run.final_reward == 20.5


def test_first_crossing_interpolates_between_reports():
    curve = [(10.0, 1000, 400.0), (15.0, 2000, 450.0), (20.0, 3000, 500.0)]
    seconds, steps = compare.first_crossing(curve, 475.0)
    assert seconds == pytest.approx(17.5) and steps == 2500
    assert compare.first_crossing(curve, 600.0) == (None, None)
    assert compare.first_crossing([(3.0, 10, 480.0)], 475.0) == (3.0, 10)


def test_systems_alternate_between_repetitions():
    names = ["a", "b", "c"]
    orders = [compare.alternating_order(names, rep) for rep in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert all(sorted(o) == names for o in orders)


def test_ratios_and_verdicts_follow_the_medians():
    def run(system, fps, seconds, rss):
        return compare.TrainingRun(system=system, rep=0, seed=0, ok=True, steady_fps=fps, threshold_seconds=seconds, peak_rss_mb=rss)

    runs = [run("pysf-native", 500_000, 3.0, 300), run("pysf-gym", 100_000, 8.0, 700), run("sample-factory", 10_000, 30.0, 1500),
            run("sb3", 5_000, 8.0, 320)]
    r = compare.ratios(runs)
    assert r["native_fps_vs_sf"] == pytest.approx(50) and r["native_time_vs_sb3"] == pytest.approx(8 / 3)
    verdicts = dict(compare.verdicts(r))
    assert verdicts[f"{compare.RATIO_LABELS['native_time_vs_sb3']} >= 3x"] == "MISSED"
    assert verdicts[f"{compare.RATIO_LABELS['native_fps_vs_sf']} >= 20x"] == "met"


@pytest.mark.slow
def test_smoke_run_trains_pysf_reports_missing_peers_and_plots(tmp_path):
    status = compare.main([
        "--smoke", "--systems", "pysf-native", "sb3", "--peers_dir", str(tmp_path / "no_peers"),
        "--skip", "sampling", "inference", "--out_dir", str(tmp_path / "out"),
    ])
    assert status == 0
    result = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert result["unavailable"]["sb3"].startswith("not installed")
    (native,) = result["runs"]
    assert native["system"] == "pysf-native" and native["ok"] and native["env_steps"] >= 30_000
    assert native["steady_fps"] > 0 and native["peak_rss_mb"] > 50 and len(native["curve"]) >= 2
    for name in ("compare_reward_vs_time.png", "compare_reward_vs_steps.png", "compare_fps.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
