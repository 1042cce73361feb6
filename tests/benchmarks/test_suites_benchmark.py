"""The Pong/HalfCheetah benchmark against Sample Factory (benchmarks/suites.py): same settings on both sides,
the stage limit, the targets, and runs of a trainer that ignores its time limit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import compare, suites  # the repository root is on sys.path (tests/conftest.py)


@pytest.mark.parametrize("workload", list(suites.WORKLOADS))
def test_both_systems_get_the_same_settings_and_sample_factory_runs_its_own_example(workload, tmp_path):
    spec = suites.WORKLOADS[workload]
    systems = suites.make_systems(spec, tmp_path / "peers")
    assert set(systems) == {*spec.systems, "sample-factory"}
    for name, system in systems.items():
        argv = system.command(3, 1000, 60.0, tmp_path / "run")
        for flag in spec.shared_flags:
            assert flag in argv or flag.split("=")[0] in {f.split("=")[0] for f in spec.systems.get(name, [])}, (name, flag)
        assert "--seed=3" in argv and "--train_for_seconds=60" in argv and f"--env={spec.env_name}" in argv
        names = [arg.split("=")[0] for arg in argv if arg.startswith("--")]
        assert len(names) == len(set(names)), (name, argv)  # a variant's own flags replace the shared ones
    sf = systems["sample-factory"]
    argv = sf.command(0, 1000, 60.0, tmp_path / "run")
    assert argv[1].endswith("benchmarks/peers/sf_train.py") and argv[2] == spec.sf_example
    assert sf.ignores_time_limit and not systems["pysf"].ignores_time_limit
    assert sf.missing() is not None  # no peer venv under tmp_path


def test_pong_dataset_is_a_whole_number_of_rollouts_of_all_envs():
    """Sync mode trains on whole rollouts of every env (pysf's and Sample Factory's rule)."""
    example = suites.load_example("examples/train_atari.py")
    for extra in suites.WORKLOADS["pong"].systems.values():
        cfg = example.parse_atari_args(["--env=atari_pong", *suites.WORKLOADS["pong"].shared_flags, *extra])
        envs = cfg.num_workers * cfg.num_envs_per_worker * max(1, cfg.atari_vector_envs)
        dataset = cfg.batch_size * cfg.num_batches_per_epoch
        assert dataset % (envs * cfg.rollout) == 0, extra


def test_the_limit_adds_the_stages_cpu_costs_over_the_cores(monkeypatch):
    monkeypatch.setattr(suites.os, "cpu_count", lambda: 2)
    stages = dict(env=0.3, env_vector=0.1, inference=0.2, learner=1.5)
    assert suites.stage_limit(stages, "env") == pytest.approx(2000 / 2.0)
    assert suites.stage_limit(stages, "env_vector") == pytest.approx(2000 / 1.8)


def run(system: str, fps: float) -> compare.TrainingRun:
    return compare.TrainingRun(system=system, rep=0, seed=0, ok=True, steady_fps=fps, peak_rss_mb=1000.0)


def test_targets_take_pysf_s_best_variant(monkeypatch):
    monkeypatch.setattr(suites.os, "cpu_count", lambda: 2)
    spec = suites.WORKLOADS["pong"]
    result = dict(
        workload=spec, systems=suites.make_systems(spec, Path("/nonexistent")), unavailable={},
        runs=[run("pysf", 700.0), run("pysf-vector", 900.0), run("sample-factory", 400.0)],
        stages=dict(env=0.4, env_vector=0.2, inference=0.2, learner=1.6, inference_batch=8, learner_samples=1024,
                    num_epochs=4, trainer_threads=2),
    )
    verdicts = suites.verdicts(result)
    assert verdicts[0] == "pysf-vector >= 2x Sample Factory: 2.25x, met"
    assert verdicts[1] == "pysf-vector >= 60% of the stage limit: 90%, met"  # 900 of 2 cores / 2.0 ms = 1,000
    rows = suites.summary_rows(result)
    assert [row[0] for row in rows] == ["pysf", "pysf-vector", "sample-factory"]
    assert rows[0][3] == "77%"  # 700 of 2 cores / 2.2 ms = 909
    assert rows[1][4] == "2.25x" and rows[2][4] == "1.00x"


def test_a_run_that_ignores_its_time_limit_is_ended_and_read(monkeypatch, tmp_path):
    """Sample Factory 2.1.1 never stops on --train_for_seconds: the benchmark ends it and keeps its figures."""
    monkeypatch.setattr(compare, "SECONDS_PAST_TIME_LIMIT", 1.5)
    console = ("import time\n"
               "for frames in (1000, 3000, 5000):\n"
               "    print(f'Fps is (10 sec: 1.0, 60 sec: 1.0, 300 sec: 1.0). Total num frames: {frames}.', flush=True)\n"
               "    time.sleep(0.2)\n"
               "time.sleep(60)\n")
    system = compare.System("sample-factory", Path(sys.executable), "fake", lambda *a: [sys.executable, "-c", console],
                            compare.parse_sample_factory_console, ignores_time_limit=True)
    result = compare.train_once(system, 0, 0, 10**9, 0.5, tmp_path)
    assert result.ok and result.stopped_at_time_limit and result.wall_seconds < 30
    assert result.progress[-1][1] == 5000 and result.steady_fps == pytest.approx(4000 / (result.progress[-1][0] - result.progress[0][0]))
