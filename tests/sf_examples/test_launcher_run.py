"""End to end: Sample-Factory-style run descriptions (tests/sf_examples/experiments/) launched with
``python -m pysf.launcher.run --backend=processes``, training pysf's native CartPole-v1 for a few thousand steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent  # holds the ``experiments`` package, as a user's project would
REPO_ROOT = EXAMPLES_DIR.parents[1]


def _launch(run_module: str, train_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(EXAMPLES_DIR), str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pysf.launcher.run", f"--run={run_module}", "--backend=processes",
         "--max_parallel=1", "--pause_between=0", f"--train_dir={train_dir}"],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )


@pytest.mark.slow
def test_seed_sweep_trains_every_experiment_in_sample_factorys_layout(tmp_path):
    train_dir = tmp_path / "train_dir"
    result = _launch("experiments.cartpole_small", train_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stdout

    run_dir = train_dir / "cartpole_small" / "cartpole_small_"  # <run_name>/<experiment name>_<suffix>
    assert sorted(p.name for p in run_dir.iterdir()) == ["00_cartpole_small_see_1", "01_cartpole_small_see_2"]
    for seed, experiment in ((1, "00_cartpole_small_see_1"), (2, "01_cartpole_small_see_2")):
        folder = run_dir / experiment
        config = (folder / "config.json").read_text()
        assert f'"seed": {seed}' in config and f'"experiment": "{experiment}"' in config
        checkpoints = list((folder / "checkpoint_p0").glob("checkpoint_*_4096.pth"))
        assert checkpoints, f"no checkpoint in {folder}: {sorted(p.name for p in folder.rglob('*'))}"
    assert "2 experiment(s): 2 succeeded, 0 failed" in result.stdout


def test_a_failing_experiment_makes_the_launcher_exit_non_zero(tmp_path):
    result = _launch("experiments.cartpole_with_failure", tmp_path / "train_dir", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "Experiment 00_bad_env_env_NoSuchEnv-v0 FAILED" in result.stdout
    assert "Failed: cartpole_with_failure/bad_env_/00_bad_env_env_NoSuchEnv-v0 (exit code 1)" in result.stdout
