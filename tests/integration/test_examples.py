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


@pytest.mark.parametrize("vector_envs", [0, 4], ids=["one_game_per_env", "ale_vector_env"])
def test_atari_example_trains_pong_both_ways(tmp_path, vector_envs):
    pytest.importorskip("ale_py")
    workers = ["--num_workers", "1"] if vector_envs else ["--num_workers", "2", "--num_envs_per_worker", "1"]
    output = run_example(
        tmp_path, "train_atari.py", "--env", "atari_pong", "--atari_vector_envs", str(vector_envs), *workers,
        "--rollout", "32", "--batch_size", "128", "--num_batches_per_epoch", "1", "--num_epochs", "1",
        "--train_for_env_steps", "2048",
    )
    assert "encoder_conv_architecture=convnet_atari" in output and "obs_scale=255.0" in output
    assert f"batched_sampling={vector_envs > 0}" in output
