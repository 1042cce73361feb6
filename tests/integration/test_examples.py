"""The Sample-Factory-style example scripts run end to end (short runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO_ROOT


def run_example(tmp_path, script: str, *argv: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / script), "--train_dir", str(tmp_path), "--experiment", "ex", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Result:" in result.stdout
    assert list((tmp_path / "ex" / "checkpoint_p0").glob("checkpoint_*.pth"))
    return result.stdout


def test_custom_env_custom_model_example(tmp_path):
    run_example(
        tmp_path, "train_custom_env_custom_model.py", "--env", "my_custom_env_v1", "--train_for_env_steps", "10000",
        "--custom_env_episode_len", "50",
    )


def test_train_gym_env_example_then_export_it_to_onnx(tmp_path):
    output = run_example(tmp_path, "train_gym_env.py", "--env", "CartPole-v1", "--train_for_env_steps", "10000")
    assert "env=CartPole-v1" in output and "env_backend=auto" in output
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "export_onnx_gym_env.py"), "--env", "CartPole-v1", "--experiment", "ex",
         "--train_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "ex.onnx").is_file() and "inputs ['obs']" in result.stdout
