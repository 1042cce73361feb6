"""benchmarks/multi_policy.py: its systems and tables, without training (the runs themselves are the benchmark)."""

from __future__ import annotations

import sys

from benchmarks import multi_policy
from benchmarks.compare import TrainingRun


def _runs(system: str, *fps: float):
    return [TrainingRun(system=system, rep=rep, seed=rep, ok=True, steady_fps=value) for rep, value in enumerate(fps)]


def test_mixing_runs_pysf_on_connect_four_with_each_number_of_policies(tmp_path):
    systems = multi_policy.mixing_systems([1, 4])
    assert list(systems) == ["1 policy", "4 policies"]
    argv = systems["4 policies"].command(3, 1000, 20, tmp_path)
    assert argv[:3] == [sys.executable, "-m", "pysf.train"]
    for flag, value in (("--env", "ConnectFour-v0"), ("--num_policies", "4"), ("--seed", "3"), ("--train_for_seconds", "20")):
        assert argv[argv.index(flag) + 1] == value


def test_the_table_gives_each_systems_median_and_its_ratio_to_the_baseline():
    systems = multi_policy.mixing_systems([1, 4])
    result = dict(systems=systems, unavailable={}, runs=_runs("1 policy", 100, 120) + _runs("4 policies", 90, 100))
    headers, rows = multi_policy.table(result, "1 policy", "vs 1 policy")
    assert headers[-1] == "vs 1 policy"
    assert rows == [["1 policy", "100, 120", "110", "1.00"], ["4 policies", "90, 100", "95", "0.86"]]
    assert abs(multi_policy.ratio_of(result, "4 policies", "1 policy") - 95 / 110) < 1e-12


def test_side_by_side_needs_the_sample_factory_peer_venv_for_both_sides(tmp_path):
    systems, unavailable = multi_policy.side_by_side_systems(tmp_path / "no_peers", tmp_path / "scratch")
    assert set(systems) == {"pysf", "sample-factory"}
    assert "peer venv" in unavailable["pysf"]
    assert systems["sample-factory"].missing() is not None


def test_side_by_side_runs_sample_factorys_example_renamed_on_pysf(tmp_path):
    """A fake peer venv holding an sf_examples module: pysf's side runs a renamed copy with the shared flags."""
    site = tmp_path / "peers" / "sf" / "lib" / "python3.11" / "site-packages" / "sf_examples"
    site.mkdir(parents=True)
    (site / "train_custom_multi_env.py").write_text("from sample_factory.train import run_rl\n")
    systems, unavailable = multi_policy.side_by_side_systems(tmp_path / "peers", tmp_path / "scratch")
    assert unavailable == {}
    copied = tmp_path / "scratch" / "pysf_examples" / "sf_examples" / "train_custom_multi_env.py"
    assert copied.read_text() == "from pysf.train import run_rl\n"
    argv = systems["pysf"].command(0, 1000, 30, tmp_path / "run")
    assert all(flag in argv for flag in multi_policy.MULTI_ENV_FLAGS)
    assert "--num_policies=2" in argv
